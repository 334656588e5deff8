"""Benchmarks: `python -m benchmarks [SUBCOMMAND] [ARGS]` (see `python -m benchmarks --help`)."""
