"""Agent Kill Switch: stop AI agents that overspend on AWS.

The package is the Lambda asset (``lambdas/``) and the CLI. Handlers are thin; logic lives in plain modules.
"""

__version__ = "0.1.0"
