"""A medium's topology: which stations hear which, and how well (hidden stations). Pure logic.

The file names stations by the names they join with (`sim:?station=NAME`), one link a line;
`#` starts a comment:

    A B                  # A and B hear each other
    B C loss=10%         # ... and lose 10% of each other's frames
    C > D level=-6       # one way: D hears C at -6 dB, C does not hear D

A pair the file does not link does not hear each other (hidden stations); a station the file
does not name may not join. `loss=` is the receiver's share of the sender's frames lost on the
way (it replaces the receiver's rxloss), `level=` the sender's level at the receiver in dB
(for capture).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from linkbridge_sim.params import decibels, percent
from linkbridge_sim.reception import Pair, Reception

ONE_WAY, BOTH_WAYS = ">", ""


@dataclass(frozen=True)
class Topology:
    """Stations by name and the pairs (sender, receiver) that hear each other."""

    stations: frozenset[str]
    pairs: Mapping[tuple[str, str], Pair]

    def reception(self, keys: Mapping[str, str]) -> Reception:
        """Who hears whom among the joined stations, by their keys on the channel (`keys`:
        name -> key): every pair of them not linked is deaf."""
        pairs = {(keys[s], keys[r]): self.pairs.get((s, r), Pair(heard=False))
                 for s in keys for r in keys if s != r}
        return Reception(pairs)

    def neighbours(self, name: str) -> list[str]:
        """The stations `name` hears and is heard by (both ways: an IP neighbour), sorted."""
        return sorted(s for s, r in self.pairs if r == name and (name, s) in self.pairs)


def parse_topology(text: str) -> Topology:
    """A topology from its text (module docstring); ValueError names the line at fault."""
    stations: set[str] = set()
    pairs: dict[tuple[str, str], Pair] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        try:
            for pair, value in _line(words).items():
                if pair in pairs:
                    raise ValueError(f"{pair[0]} -> {pair[1]} is given twice")
                pairs[pair] = value
                stations.update(pair)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    if not pairs:
        raise ValueError("no links between stations (a line such as `A B`)")
    return Topology(frozenset(stations), pairs)


def read_topology(path: str) -> Topology:
    """The topology in file `path`; ValueError (with the path) when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as file:
            return parse_topology(file.read())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"topology {path}: {exc}") from None


def _line(words: list[str]) -> dict[tuple[str, str], Pair]:
    names = [word for word in words if "=" not in word]
    settings = dict(word.split("=", 1) for word in words if "=" in word)
    way = BOTH_WAYS
    if len(names) == 3 and names[1] == ONE_WAY:
        names, way = [names[0], names[2]], ONE_WAY
    if len(names) != 2 or names[0] == names[1] or ONE_WAY in names:
        raise ValueError("expected `A B` or `A > B` with two station names, then options")
    unknown = sorted(set(settings) - {"loss", "level"})
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (loss=, level=)")
    loss = percent(settings["loss"]) if "loss" in settings else None
    level = decibels(settings["level"]) if "level" in settings else None
    pair = Pair(loss=loss, level=level)
    a, b = names
    return {(a, b): pair} if way == ONE_WAY else {(a, b): pair, (b, a): pair}
