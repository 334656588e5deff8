"""Byte-stream framing codecs without I/O: SLIP (RFC 1055) and the CRC-16 trailer,
a 2-byte length prefix (length_prefix.py), KISS (kiss.py); the byte stuffing SLIP and KISS
share is in stuffing.py.

Pure logic: imports nothing from linkbridge but `linkbridge.errors` and `linkbridge.wire`
(its drop reasons); plugins reach it through `linkbridge.plugin`.
"""
