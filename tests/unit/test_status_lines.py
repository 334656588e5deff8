"""The one-line summaries `linkbridge status` prints from the tunnels' JSON documents."""

from __future__ import annotations

from linkbridge.ops.status import encryption_lines


def test_encryption_line_shows_state_cipher_handshake_and_drops() -> None:
    encryption = {"state": "established", "cipher": "aes-256-gcm", "handshakes": 3,
                  "last_handshake": 1000.0}
    below_compression = {"device": "lbt1", "link_side": {"frames": {
        "encryption": {"state": "handshaking", "cipher": None}, "drops": {}}}}
    documents = [{"device": "lbt0", "link_side": {"encryption": encryption,
                                                  "drops": {"auth": 2, "replay": 1}}},
                 below_compression, {"device": "lbt2", "link_side": {"drops": {}}}]
    assert encryption_lines(documents, now=1012.0) == [
        "lbt0: encryption established (aes-256-gcm), last handshake 12s ago (3 so far), "
        "drops auth=2 replay=1",
        "lbt1: encryption handshaking, no handshake yet",
    ]
