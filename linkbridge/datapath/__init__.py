"""Moving packets: endpoints and their declared capabilities, counters, the UDP datagram
endpoint, the bridge's pollers and lean loop, local RX/TX ports, fragmentation glue and pcap.
May import `linkbridge.errors`, `linkbridge.wire` and `linkbridge.framing`.
"""
