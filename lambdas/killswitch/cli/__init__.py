"""`killswitch` command-line interface (typer + rich). Not part of the Lambda code path."""
