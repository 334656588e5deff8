"""A link program written for the original udp-tunnel.sh, using nothing but the standard library.

It listens on 127.0.0.1:TX_PORT for packets from the tunnel and sends each to the peer's link
over UDP; what the peer's link sends arrives on LINK_PORT and goes to the tunnel's
127.0.0.1:RX_PORT.

usage: seed_link_program.py RX_PORT TX_PORT LINK_PORT PEER_HOST
"""

import selectors
import socket
import sys


def main() -> None:
    rx_port, tx_port, link_port = (int(arg) for arg in sys.argv[1:4])
    peer = (sys.argv[4], link_port)
    from_tunnel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    from_tunnel.bind(("127.0.0.1", tx_port))
    over_link = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    over_link.bind(("0.0.0.0", link_port))
    selector = selectors.DefaultSelector()
    selector.register(from_tunnel, selectors.EVENT_READ)
    selector.register(over_link, selectors.EVENT_READ)
    print("seed link ready", flush=True)
    while True:
        for key, _ in selector.select():
            payload = key.fileobj.recv(65535)
            if key.fileobj is from_tunnel:
                over_link.sendto(payload, peer)
            else:
                from_tunnel.sendto(payload, ("127.0.0.1", rx_port))


if __name__ == "__main__":
    main()
