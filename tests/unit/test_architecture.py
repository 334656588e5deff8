"""The shape of linkbridge (docs/architecture.md): a small core with documented subpackages, and
the frame-type registry equal to its table in the docs. ruff, mypy and the layer contracts
(lint-imports) run as a step of their own before the tests (`./run.sh lint`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import linkbridge.plugin
from linkbridge.wire.fragment import is_fragment
from linkbridge.wire.frames import IPV4, IPV6, REGISTRY, SEND_ORDER, Layer, Status, classify
from linkbridge.wire.packet import packet_problem

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "linkbridge"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PLUGIN_GUIDE = ROOT / "docs" / "plugins.md"
NOT_PARTS = {"__init__.py", "__main__.py", "py.typed", "__pycache__"}
MAX_CORE_PARTS = 10
ROW = re.compile(r"^\| `0x([0-9A-F])0-0x\1F` \| (.+?) \| (.+?) \| (.+?) \|$", re.MULTILINE)


def test_core_has_few_parts() -> None:
    parts = sorted(path.name for path in CORE.iterdir()
                   if path.name not in NOT_PARTS and (path.is_dir() or path.suffix == ".py"))
    assert len(parts) <= MAX_CORE_PARTS, f"linkbridge/ holds {len(parts)} parts: {parts}"


@pytest.mark.parametrize("init", sorted(str(path.relative_to(ROOT))
                                        for path in CORE.rglob("__init__.py")))
def test_package_says_what_it_holds(init: str) -> None:
    assert ast.get_docstring(ast.parse((ROOT / init).read_text())), f"{init} has no docstring"


def test_plugin_api_is_documented() -> None:
    guide = PLUGIN_GUIDE.read_text()
    missing = [name for name in linkbridge.plugin.__all__ if f"`{name}`" not in guide]
    assert not missing, f"{PLUGIN_GUIDE.name} does not mention {missing}"


def test_frame_table_in_docs_matches_registry() -> None:
    rows = {int(nibble, 16): (name, layer, status)
            for nibble, name, layer, status in ROW.findall(ARCHITECTURE.read_text())}
    assert sorted(rows) == list(range(16)), f"{ARCHITECTURE.name} lacks rows of the frame table"
    registered = {kind.nibble: (kind.name, str(kind.layer), str(kind.status))
                  for kind in REGISTRY}
    free = {nibble: ("-", "-", "free") for nibble in range(16) if nibble not in registered}
    assert rows == {**registered, **free}


def test_layer_order_in_docs_matches_code() -> None:
    assert f"send:    {' -> '.join(SEND_ORDER)}\n" in ARCHITECTURE.read_text()


def test_registry_has_one_slot_per_nibble() -> None:
    nibbles = [kind.nibble for kind in REGISTRY]
    assert len(set(nibbles)) == len(nibbles) and all(0 <= nibble <= 0xF for nibble in nibbles)
    assert {kind.name for kind in REGISTRY if kind.status is Status.IN_USE} == {
        "IPv4 packet", "IPv6 packet", "fragment", "keepalive", "handshake initiation",
        "handshake response", "transport data", "compressed", "uncompressed", "context refresh",
        "offload chunk"}


def test_classify_agrees_with_the_codecs() -> None:
    for first in range(256):
        kind = classify(first)
        frame = bytes([first]) + bytes(63)
        is_ip = kind is not None and kind.nibble in (IPV4, IPV6)
        assert (packet_problem(frame) != "not_ip") == is_ip, hex(first)
        assert is_fragment(frame) == (kind is not None and kind.layer is Layer.FRAGMENT), hex(first)
        assert kind is None or kind.first <= first <= kind.last, hex(first)


@pytest.mark.parametrize("first", [-1, 256])
def test_classify_refuses_what_is_no_byte(first: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.255"):
        classify(first)
