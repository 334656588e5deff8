"""The kernel FOU+IPIP backend: the fou netlink family, device set-up and teardown, and the
records that outlive the process. May import `linkbridge.tunnel.netconf`/`setup` and below.
"""
