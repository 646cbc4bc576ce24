"""Helpers shared by the tests, `bench/` and `scripts/`: processes, tools, expositions."""
