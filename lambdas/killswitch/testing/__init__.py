"""Simulated AWS for the tests, the benchmarks and `killswitch demo` (builders meant for moto).

Not runtime code: the Lambda asset excludes this package (`infra/constructs/lambda_common.py`, `ASSET_EXCLUDE`).
"""
