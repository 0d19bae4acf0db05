"""Exceptions the guard raises into the agent. All derive from `GuardError`."""

from __future__ import annotations

from decimal import Decimal


class GuardError(Exception):
    """Base class of every guard error."""


class UnknownModel(GuardError, KeyError):
    """The model is not in the price table and no explicit price was given: the guard refuses to guess."""

    def __init__(self, model: str):
        self.model = model
        super().__init__(
            f"model {model!r} is not in the price table; pass its price in USD per 1M tokens, e.g. "
            f"run.charge({model!r}, input_tokens, max_output_tokens, price=ModelPrice.of(input=3.0, output=15.0)) "
            "(input = USD per 1M input tokens, output = USD per 1M output tokens; optional cache_read=, "
            "cache_write=; take the figures from your provider's price list)"
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def cap_field(scope: str, key: str) -> str:
    """The config field (`killswitch.yaml`, agent entry) that sets the cap of `scope`/`key`."""
    if scope == "run":
        return "caps.per_run_usd"
    if scope == "agent":
        # One field for the agent's period cap, whatever the period (a UTC day, or a month with Guard(period=...)).
        return "caps.per_day_usd"
    if scope == "workflow":
        return f"caps.per_workflow_usd.{key.rsplit('#', 1)[0]}"
    if scope == "outcome":
        return f"caps.per_outcome_usd.{key}"
    return f"{scope} cap"


def way_forward(scope: str, key: str) -> str:
    """What the developer or operator can do about a refusal of this cap."""
    field = cap_field(scope, key)
    if scope == "run":
        return f"Start a new run (the cap is per run) or raise {field}."
    if scope == "outcome":
        return (
            f"Record the outcome with run.outcome({key!r}) once it is achieved (each one adds a cap's worth of "
            f"budget), start a new run, or raise {field}."
        )
    period = key.rsplit("#", 1)[-1]
    return (
        f"The agent is stopped until the period {period} (UTC) ends; to go on now, raise {field} and call "
        "Guard.resume() (or restart the process)."
    )


class BudgetExceeded(GuardError):
    """Raised BEFORE the call when reserving its worst case would cross a cap. Nothing was charged."""

    def __init__(  # noqa: PLR0917
        self,
        agent: str,
        scope: str,
        key: str,
        cap_usd: Decimal | None,
        used_usd: Decimal | None,
        requested_usd: Decimal,
        reason: str | None = None,
        *,
        hint: str | None = None,
    ):
        self.agent = agent
        self.scope = scope  # run | agent | workflow | outcome
        self.key = key
        self.cap_usd = cap_usd
        self.used_usd = used_usd  # committed + reserved at the time of the refusal, when known
        self.requested_usd = requested_usd
        self.cap_field = cap_field(scope, key)  # the config field that sets this cap
        # True when other runs' unspent leases (not spend) held the headroom: the agent was not stopped.
        self.contended = False
        cap = "no cap" if cap_usd is None else f"${cap_usd:.4f}"
        if reason:
            msg = reason
        elif used_usd is None:
            msg = f"agent {agent!r}: ${requested_usd:.4f} requested exceeds {self.cap_field} ({key}) of {cap}"
        else:
            msg = (
                f"agent {agent!r}: {self.cap_field} ({key}) of {cap} would be crossed: "
                f"${used_usd:.4f} used or reserved + ${requested_usd:.4f} requested"
            )
        super().__init__(f"{msg}. {hint or way_forward(scope, key)}")


class LoopDetected(GuardError):
    """A loop pattern tripped (identical calls, ping-pong, depth, step cap). The run is frozen afterwards."""

    def __init__(self, kind: str, message: str, run_id: str | None = None):
        self.kind = kind  # identical_calls | ping_pong | depth | steps | frozen
        self.run_id = run_id
        super().__init__(message)


class RunFrozen(LoopDetected):
    """A charge was attempted in a run that an earlier loop trip (or budget stop) froze."""

    def __init__(self, run_id: str, cause: str):
        super().__init__("frozen", f"run {run_id} is frozen ({cause}); start a new run", run_id=run_id)
        self.cause = cause


class DuplicateCharge(GuardError):
    """A charge id was reused for a different charge (a genuine retry of the same charge is not an error)."""
