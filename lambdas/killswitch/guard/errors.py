"""Exceptions the guard raises into the agent. All derive from `GuardError`."""

from __future__ import annotations

from decimal import Decimal


class GuardError(Exception):
    """Base class of every guard error."""


class UnknownModel(GuardError, KeyError):
    """The model is not in the price table and no explicit price was given: the guard refuses to guess."""

    def __init__(self, model: str):
        self.model = model
        super().__init__(f"model {model!r} is not in the price table; pass price=ModelPrice(...) to charge it")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


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
    ):
        self.agent = agent
        self.scope = scope  # run | agent | workflow
        self.key = key
        self.cap_usd = cap_usd
        self.used_usd = used_usd  # committed + reserved at the time of the refusal, when known
        self.requested_usd = requested_usd
        if reason:
            msg = reason
        elif used_usd is None:
            msg = f"agent {agent!r}: ${requested_usd:.4f} requested exceeds the {scope} cap {key!r} of ${cap_usd:.4f}"
        else:
            msg = (
                f"agent {agent!r}: {scope} cap {key!r} of ${cap_usd:.4f} would be crossed "
                f"(${used_usd:.4f} used or reserved + ${requested_usd:.4f} requested)"
            )
        super().__init__(msg)


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
