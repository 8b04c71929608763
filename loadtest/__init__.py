"""Benchmarks and load tests: locust scenarios and the contention benchmark. Figures are ratios
against a baseline measured in the same run, with absolute numbers for context."""

__all__: list[str] = []
