"""The meter: Bedrock model invocation logs and running compute → per-agent spend estimate → the kill path.

- `records`: CloudWatch Logs subscription events → `InvocationRecord`s (bad lines counted with a reason, skipped);
- `pricing`: a record's dollar cost from the guard's price table (application inference profiles resolved);
- `callers`: the caller's IAM role/user → its `agent-name` tag (TTL cache);
- `compute`: running tagged compute → hourly prices (snapshot or Price List API) → accrual per tick;
- `estimate`: pure rules: period-to-date estimate without double counting, level decision, burn rate;
- `service`: the `Meter` that ties them together and raises decisions into the kill engine in-process.
"""
