"""Helpers shared by the test tiers (fixtures live in tests/conftest.py): reading a namespace's
state, running `linkbridge status`, and programs the tests start by path or with `-m`
(`*_program.py`, `vm_guest_checks`)."""
