"""Byte-stream framing codecs without I/O: SLIP (RFC 1055) and the CRC-16 trailer,
a 2-byte length prefix (length_prefix.py), KISS (kiss.py); the byte stuffing SLIP and KISS
share is in stuffing.py. A decoder yields frames and, in stream order among them, `Lost`
marks where a frame was lost or damaged (events.py); each codec names its own drop reasons.

Pure logic: imports nothing from linkbridge but `linkbridge.errors` and `linkbridge.wire`;
plugins reach it through `linkbridge.plugin`.
"""
