"""One agent state and one kill report status. The values are the wire format (the ledger's `AGENT#<agent>`/`STATE`
item, result events, JSON output) and do not change; the report and the CLI show the lower-case `label`."""

from __future__ import annotations

from enum import StrEnum


class AgentState(StrEnum):
    """What an agent may do now. The kill engine stores it per agent; the guard SDK derives it from its period cap
    (`Guard.mode`), where crossing the cap stops the agent like a kill."""

    OK = "OK"
    THRIFT = "THRIFT"  # past the warn percentage: cheap models only
    KILLED = "KILLED"
    STOPPED = "KILLED"  # the guard's word for the same state (an alias: `AgentState.STOPPED is AgentState.KILLED`)

    @classmethod
    def parse(cls, value: object) -> AgentState | None:
        """The state of a stored value in any case (`"killed"`, `"KILLED"`); None when absent or unknown."""
        if not isinstance(value, str):
            return None
        try:
            return cls(value.strip().upper())
        except ValueError:
            return None

    @property
    def label(self) -> str:
        """Lower-case, as the report and the CLI print it (`ok`, `thrift`, `killed`)."""
        return self.value.lower()


class ReportStatus(StrEnum):
    """`KillReport.status`: what one alert or command ended with (the `status` of the result event)."""

    NONE = ""
    NO_ACTION = "no_action"
    DRY_RUN = "dry_run"
    THRIFT = "thrift"  # a warn alert put the agent in thrift mode
    KILLED = "killed"  # a warn alert for an agent already killed
    COLLAPSED = "collapsed"  # a flood of guard kill events collapsed into one kill
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    REFUSED = "refused"
    APPROVAL_REQUESTED = "approval_requested"  # a guard's paused run, forwarded to ops (`killswitch approve-run`)
    # the kill record's status after a kill, approve or restore (`KillStatus`)
    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    DONE = "done"
    PARTIAL = "partial"
    RESTORED = "restored"
