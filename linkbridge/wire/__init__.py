"""Pure packet logic: IP packet checks, the link fragmentation codec, GSO/GRO segment runs and
the registry of first-byte frame types. Imports only `linkbridge.errors`; no I/O.
"""
