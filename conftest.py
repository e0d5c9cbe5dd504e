"""Pytest configuration for the whole repository (doctests run on lmu/ too)."""

collect_ignore = ["lmu/__main__.py", "docs/conf.py", "benchmarks"]
