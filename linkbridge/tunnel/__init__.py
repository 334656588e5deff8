"""Tunnel backends and their set-up: the userspace TUN device with netlink addresses/routes and
the foreground session (here), the kernel FOU+IPIP backend (`kernel/`). May import ops and below.
"""
