"""Smoke tests of the benchmarks (bench/): they run, on tiny sizes, and print their tables; no timed assertions."""
