"""Benchmark tooling: generate.py makes synthetic workspaces (also used by the tests)."""
