"""Pure packet logic: IP packet checks, the link fragmentation codec, GSO/GRO segment runs, the
registry of first-byte frame types and the drop reasons. Imports only `linkbridge.errors`; no I/O.
"""
