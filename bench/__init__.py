"""Benchmarks (`make bench`): speed as ratios within one run, cost as AWS calls per request."""
