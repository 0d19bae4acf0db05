"""How one run's charges meet their caps: the cap limits a charge draws on (built once per period and hour) and
what a refusal does (count it; a crossed agent or workflow cap stops that scope and publishes the kill)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from killswitch.guard.caps import Caps
    from killswitch.guard.errors import BudgetExceeded
    from killswitch.guard.guard import Guard
    from killswitch.guard.ledger import CapLimit


class RunCaps:
    """The caps of one run (`Guard.cap_limits`), and the guard's reaction when one of them refuses a charge."""

    def __init__(self, guard: Guard, run_id: str, workflow: str | None):
        self.guard = guard
        self.run_id = run_id
        self.workflow = workflow
        self._cache: tuple[Caps, str, int, list[CapLimit]] | None = None

    def limits(self, now: float, period: str) -> list[CapLimit]:
        """`Guard.cap_limits` of this run, built once per period and hour (the items' TTL is weeks ahead)."""
        g, hour, cached = self.guard, int(now) // 3600, self._cache
        if cached is not None and cached[0] is g.caps and cached[1] == period and cached[2] == hour:
            return cached[3]
        limits = g.cap_limits(self.run_id, self.workflow, now)
        self._cache = (g.caps, period, hour, limits)
        return limits

    def refused(self, exc: BudgetExceeded) -> None:
        """A cap really refused a charge: count the denial; an agent or workflow cap stops its scope and publishes
        the kill (a run cap only with `kill_on_run_cap`)."""
        g = self.guard
        g.metric("GuardDenials", 1)
        if exc.scope in ("agent", "workflow"):
            g.stop_scope(exc.scope, exc.key)
            g.publish_kill(
                ("cap", exc.scope, exc.key),
                f"{exc.scope} cap {exc.key} crossed: {exc}",
                self.run_id,
                exc.used_usd,
                exc.cap_usd,
            )
        elif exc.scope == "run" and g.kill_on_run_cap:
            g.publish_kill(
                ("cap", "run", self.run_id), f"run cap crossed: {exc}", self.run_id, exc.used_usd, exc.cap_usd
            )
