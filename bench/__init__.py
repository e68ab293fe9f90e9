"""Benchmarks of the simulator (throughput, scaling, baselines); not part of the tests.

Run ``python -m bench.gaussian_throughput`` (see ``bench/README.md``).
"""
