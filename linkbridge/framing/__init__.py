"""Byte-stream framing codecs without I/O: SLIP (RFC 1055) and the CRC-16 trailer.

Pure logic: imports nothing from linkbridge but `linkbridge.errors` and `linkbridge.wire`
(its drop reasons); plugins reach it through `linkbridge.plugin`.
"""
