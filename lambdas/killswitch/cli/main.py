"""Entry point of the `killswitch` console script. Each feature registers its commands from its own module."""

from __future__ import annotations

import typer

from killswitch.cli import approve_run, demo, local, meter, ops, report, validate

app = typer.Typer(
    name="killswitch",
    help="Serverless AWS kill switch for AI agents that overspend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: flags read as `--dry-run`, not `--dry-run <bool>`, and lines wrap at word boundaries.
    rich_markup_mode=None,
    context_settings={"max_content_width": 200},  # help follows the terminal width instead of stopping at 80
)


@app.callback()
def root() -> None:
    """Serverless AWS kill switch for AI agents that overspend."""


for module in (validate, ops, approve_run, report, demo, meter, local):
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
