"""Drop reasons in status output: what each reason a tunnel counted means.

A tunnel adds to its status snapshot a `reasons` map, each reason counted anywhere in it (its
sides and the layers below them) to its description (the core's, or the one a plugin declares
in `Link.drop_reasons`); `linkbridge status` prints those under its table as a legend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

UNDECLARED = "(declared neither by linkbridge nor by an installed plugin)"


def counted_reasons(document: Mapping[str, Any]) -> set[str]:
    """Every drop reason counted in a snapshot, at any depth (`drops` maps by reason)."""
    found: set[str] = set()
    for key, value in document.items():
        if not isinstance(value, Mapping):
            continue
        if key == "drops":
            found.update(map(str, value))
        else:
            found |= counted_reasons(value)
    return found


def describe_reasons(document: Mapping[str, Any], known: Mapping[str, str]) -> dict[str, str]:
    """The `reasons` map of a snapshot: each reason it counted, with its description."""
    return {reason: known.get(reason, UNDECLARED) for reason in sorted(counted_reasons(document))}


def legend_lines(described: Iterable[Mapping[str, str]]) -> list[str]:
    """Under the status table: one line per drop reason the tunnels counted (each tunnel's
    `reasons` map), with its meaning."""
    reasons: dict[str, str] = {}
    for one in described:
        reasons.update(one)
    if not reasons:
        return []
    width = max(map(len, reasons))
    return ["drop reasons:", *(f"  {reason.ljust(width)}  {text}"
                               for reason, text in sorted(reasons.items()))]
