"""The shape of linkbridge (docs/architecture.md): a small core with documented subpackages, a
plugin facade of few documented names, and the frame-type registry (with the extension subtypes)
equal to its tables in the docs. ruff, mypy and the layer contracts (lint-imports) run as a step
of their own before the tests (`./run.sh lint`)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import linkbridge.plugin
from linkbridge.wire.drops import NOT_IP, UNKNOWN_EXTENSION
from linkbridge.wire.fragment import is_fragment
from linkbridge.wire.frames import (
    EXTENSION,
    EXTENSION_BYTE,
    EXTENSIONS,
    IPV4,
    IPV6,
    REGISTRY,
    SEND_ORDER,
    Layer,
    Status,
    classify,
    extension_header,
    extension_subtype,
    frame_byte,
    low_nibble,
    type_nibble,
)
from linkbridge.wire.packet import drop_reason, packet_problem

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "linkbridge"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PLUGIN_GUIDE = ROOT / "docs" / "plugins.md"
NOT_PARTS = {"__init__.py", "__main__.py", "py.typed", "__pycache__"}
MAX_CORE_PARTS = 10
PUBLIC_PLUGIN_MODULES = ("linkbridge.plugin", "linkbridge.plugin.lab", "linkbridge.plugin.codecs")
MAX_FACADE_NAMES = 35
API_MODULE = re.compile(r"^### (?=`linkbridge\.plugin)", re.MULTILINE)
API_ENTRY = re.compile(r"^- `([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
ROW = re.compile(r"^\| `0x([0-9A-F])0-0x\1F` \| (.+?) \| (.+?) \| (.+?) \|$", re.MULTILINE)
SUBTYPE_ROW = re.compile(r"^\| `0x([0-9A-F]{2})` \| (.+?) \| (.+?) \| (.+?) \|$", re.MULTILINE)


def test_core_has_few_parts() -> None:
    parts = sorted(path.name for path in CORE.iterdir()
                   if path.name not in NOT_PARTS and (path.is_dir() or path.suffix == ".py"))
    assert len(parts) <= MAX_CORE_PARTS, f"linkbridge/ holds {len(parts)} parts: {parts}"


@pytest.mark.parametrize("init", sorted(str(path.relative_to(ROOT))
                                        for path in CORE.rglob("__init__.py")))
def test_package_says_what_it_holds(init: str) -> None:
    assert ast.get_docstring(ast.parse((ROOT / init).read_text())), f"{init} has no docstring"


def api_reference() -> dict[str, set[str]]:
    """The names docs/plugins.md's API reference lists (`- `name`...` lines), by module."""
    guide = PLUGIN_GUIDE.read_text()
    start = guide.index("\n## API reference\n")
    end = guide.find("\n## ", start + 1)
    listed: dict[str, set[str]] = {}
    for section in API_MODULE.split(guide[start:end if end >= 0 else None])[1:]:
        module, _, body = section.partition("\n")
        listed[module.strip("`")] = set(API_ENTRY.findall(body))
    return listed


def test_core_imports_private_modules_not_the_facade() -> None:
    """The facade and its re-exporting codecs module are for plugins: the core imports where
    a name is defined, so that what the facade exports can change without touching it."""
    reexporting = {"linkbridge.plugin", "linkbridge.plugin.codecs"}
    found = []
    for path in sorted(CORE.rglob("*.py")):
        if path == CORE / "plugin" / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in reexporting:
                names = [alias.name for alias in node.names
                         if not (CORE / "plugin" / f"{alias.name}.py").exists()]
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {name}" for name in names]
            elif isinstance(node, ast.Import):
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {alias.name}"
                          for alias in node.names if alias.name in reexporting]
    assert not found, f"the core imports from the plugin facade: {found}"


def test_plugin_facade_is_narrow() -> None:
    assert len(linkbridge.plugin.__all__) <= MAX_FACADE_NAMES, sorted(linkbridge.plugin.__all__)


def test_plugin_api_reference_lists_every_public_name() -> None:
    listed = api_reference()
    assert set(PUBLIC_PLUGIN_MODULES) <= set(listed), f"API reference lacks {PUBLIC_PLUGIN_MODULES}"
    for name, documented in listed.items():
        exported = set(importlib.import_module(name).__all__)
        assert documented == exported, (f"{PLUGIN_GUIDE.name}, {name}: undocumented "
                                        f"{sorted(exported - documented)}, not exported "
                                        f"{sorted(documented - exported)}")


def test_frame_table_in_docs_matches_registry() -> None:
    rows = {int(nibble, 16): (name, layer, status)
            for nibble, name, layer, status in ROW.findall(ARCHITECTURE.read_text())}
    assert sorted(rows) == list(range(16)), f"{ARCHITECTURE.name} lacks rows of the frame table"
    registered = {kind.nibble: (kind.name, str(kind.layer), str(kind.status))
                  for kind in REGISTRY}
    free = {nibble: ("-", "-", "free") for nibble in range(16) if nibble not in registered}
    assert rows == {**registered, **free}


def test_extension_table_in_docs_matches_registry() -> None:
    rows = [(int(subtype, 16), name, owner, status)
            for subtype, name, owner, status in SUBTYPE_ROW.findall(ARCHITECTURE.read_text())]
    assert rows, f"{ARCHITECTURE.name} lacks the extension subtype table"
    assert rows == [(kind.subtype, kind.name, kind.owner, str(kind.status))
                    for kind in EXTENSIONS]


def test_extension_subtypes_are_distinct_bytes() -> None:
    subtypes = [kind.subtype for kind in EXTENSIONS]
    assert len(set(subtypes)) == len(subtypes) and all(0 < value <= 0xFF for value in subtypes)


def test_extension_frames_name_their_subtype_in_the_second_byte() -> None:
    for kind in EXTENSIONS:
        frame = extension_header(kind.subtype) + b"body"
        assert classify(frame[0]) == next(t for t in REGISTRY if t.nibble == EXTENSION)
        assert low_nibble(frame[0]) == 0 and extension_subtype(frame) == kind.subtype
    assert extension_subtype(bytes((EXTENSION_BYTE,))) is None  # no subtype byte
    assert extension_subtype(bytes((frame_byte(EXTENSION, 1), 0x01))) is None  # a later version
    assert extension_subtype(bytes((frame_byte(IPV4, 5), 0x01))) is None


def test_the_tunnel_layer_counts_every_extension_frame_it_gets() -> None:
    frames = [extension_header(kind.subtype) + b"x" for kind in EXTENSIONS]
    frames += [extension_header(0xFF), bytes((frame_byte(EXTENSION, 0xF),)),
               bytes((EXTENSION_BYTE,))]
    assert {packet_problem(frame) for frame in frames} == {UNKNOWN_EXTENSION}
    assert drop_reason(UNKNOWN_EXTENSION) == UNKNOWN_EXTENSION  # not malformed_: a valid type


def test_nibbles_split_and_join() -> None:
    for first in range(256):
        assert frame_byte(type_nibble(first), low_nibble(first)) == first


def test_layer_order_in_docs_matches_code() -> None:
    assert f"send:    {' -> '.join(SEND_ORDER)}\n" in ARCHITECTURE.read_text()


def test_registry_has_one_slot_per_nibble() -> None:
    nibbles = [kind.nibble for kind in REGISTRY]
    assert len(set(nibbles)) == len(nibbles) and all(0 <= nibble <= 0xF for nibble in nibbles)
    assert {kind.name for kind in REGISTRY if kind.status is Status.IN_USE} == {
        "IPv4 packet", "IPv6 packet", "fragment", "keepalive", "handshake initiation",
        "handshake response", "transport data", "compressed", "uncompressed", "context refresh",
        "offload chunk", "compressed, sequential", "compressed, sequential, ACK"}


def test_classify_agrees_with_the_codecs() -> None:
    for first in range(256):
        kind = classify(first)
        frame = bytes([first]) + bytes(63)
        is_ip = kind is not None and kind.nibble in (IPV4, IPV6)
        assert (packet_problem(frame) not in (NOT_IP, UNKNOWN_EXTENSION)) == is_ip, hex(first)
        assert (packet_problem(frame) == UNKNOWN_EXTENSION) == (
            kind is not None and kind.nibble == EXTENSION), hex(first)
        assert is_fragment(frame) == (kind is not None and kind.layer is Layer.FRAGMENT), hex(first)
        assert kind is None or kind.first <= first <= kind.last, hex(first)


@pytest.mark.parametrize("first", [-1, 256])
def test_classify_refuses_what_is_no_byte(first: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.255"):
        classify(first)
