"""Commands registered by their feature (filled in by that feature's change)."""

import typer


def register(app: typer.Typer) -> None:
    """No commands yet."""
