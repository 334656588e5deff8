"""The lab: two hosts in network namespaces joined by veth, for demos, tests and benchmarks."""
