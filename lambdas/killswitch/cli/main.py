"""Entry point of the `killswitch` console script. Each feature registers its commands from its own module."""

from __future__ import annotations

import typer

from killswitch.cli import demo, meter, ops, report, validate

app = typer.Typer(
    name="killswitch",
    help="Serverless AWS kill switch for AI agents that overspend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """Serverless AWS kill switch for AI agents that overspend."""


for module in (validate, ops, report, demo, meter):
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
