"""Single-table layout of the DynamoDB ledger. Every feature keeps its items under its own key prefix, and every
key is built here (the ledgers read and write through `killswitch.items.ItemTable`).

Table: partition key `pk` (S), sort key `sk` (S), TTL attribute `expires_at` (N, epoch seconds).

| item | pk | sk | owner |
|---|---|---|---|
| agent state (OK/THRIFT/KILLED)| `AGENT#<agent>` | `STATE` | kill engine|
| kill record | `AGENT#<agent>` | `KILL#<kill_id>` | kill engine|
| kill pointer (agent of a kill id) | `KILL#<kill_id>` | `RECORD` | kill engine|
| kill resource (prior state) | `KILL#<kill_id>` | `RES#[<account>#]<region>#<resource_id>` | kill engine|
| alert dedupe marker | `DEDUPE#<sha256 of alert identity>` | `DEDUPE` | kill engine|
| rejected event (dead letter) | `REJECTED#<yyyy-mm-dd>` | `<timestamp>#<message id>` | kill engine|
| spend per day, budget / Cost Explorer | `SPEND#<agent>` | `DAY#<yyyy-mm-dd>#<source>#<detail>` | spend |
| spend per day, guard charges | `GUARD#<agent>` | `DAY#<yyyy-mm-dd>#guard#<charge_id>` | guard |
| guard headroom per cap | `GUARD#<agent>` | `CAP#<scope>#<key>` | guard |
| guard charge (idempotency) | `GUARD#<agent>` | `CHARGE#<charge_id>` | guard |
| guard lease | `GUARD#<agent>` | `LEASE#<lease_id>` | guard |
| business outcome (`run.outcome`) | `GUARD#<agent>` | `OUTCOME#<yyyy-mm-dd>#<outcome id>` | guard |
| spend per day, meter estimates | `SPEND#<agent>` | `DAY#<yyyy-mm-dd>#meter#<detail>` | meter |
| last compute tick | `METER#STATE` | `TICK` | meter |
| cached hourly price | `METER#PRICE` | `<region>#<item>` | meter |
| run approval (`killswitch approve-run`) | `APPROVAL#<agent>` | `RUN#<run_id>` | ops (CLI); the guard only reads |

Agent access: an agent role (the `<prefix>-guard-publisher` policy) may read and write only items whose partition key
is exactly `GUARD#<its agent-name principal tag>` (IAM `dynamodb:LeadingKeys`; DynamoDB cannot condition on sort
keys). So everything the guard SDK writes lives in that one partition, including its spend facts, and the budget /
Cost Explorer facts under `SPEND#<agent>`, which decide a kill, stay out of an agent's reach. Approvals of paused
runs live in their own partition `APPROVAL#<agent>`: ops write them (`killswitch approve-run`), an agent may only
GetItem in its own (a second LeadingKeys statement without any write action), so no agent approves itself.

Spend items (one item per fact, so a re-read day or a retried event overwrites instead of adding):
- pk `SPEND#<agent>` (sources `budget`, `cost_explorer`) or `GUARD#<agent>` (source `guard`, written by the agent's
  guard SDK), sk `DAY#<yyyy-mm-dd>#<source>#<detail>` where source is `budget` | `cost_explorer` | `guard`;
  detail: budget → `<budget name>#<ACTUAL|FORECASTED>#<threshold>`, cost_explorer → `<service>` (or
  `run:<run_id>#<service>`), guard → `<charge_id>`.
- attributes: `agent`, `day`, `source`, `amount_usd` (N), `currency` = USD, `recorded_at` (ISO-8601);
  guard adds `run_id`, `workflow`, `kind` (llm|tool), `name`/`model`, `gen_ai.usage.input_tokens`,
  `gen_ai.usage.output_tokens`, `estimated_usd` (N, the reservation); budget adds `budget_name`, `alert_type`,
  `threshold_usd`, `budgeted_usd`; cost_explorer adds `service`, `run_id` (optional).
Amounts are stored as DynamoDB numbers (Decimal), never floats.
"""

PK = "pk"
SK = "sk"
TTL_ATTR = "expires_at"


def agent_pk(agent: str) -> str:
    return f"AGENT#{agent}"


def spend_pk(agent: str) -> str:
    return f"SPEND#{agent}"


DAY_PREFIX = "DAY#"


def spend_sk(day: str, source: str, detail: str) -> str:
    return f"{spend_day_prefix(day, source)}{detail}"


def spend_day_prefix(day: str | None = None, source: str | None = None) -> str:
    """`DAY#`, `DAY#<day>#` or `DAY#<day>#<source>#`: the sort-key prefix of spend facts (all, one day, one source)."""
    if day is None:
        return DAY_PREFIX
    return f"{DAY_PREFIX}{day}#" + (f"{source}#" if source else "")


def guard_pk(agent: str) -> str:
    return f"GUARD#{agent}"


def spend_fact_pk(agent: str, source: str) -> str:
    """Partition of one spend fact: guard charges live in the agent's guard partition (the only one it may write)."""
    return guard_pk(agent) if source == "guard" else spend_pk(agent)


def kill_pk(kill_id: str) -> str:
    return f"KILL#{kill_id}"


# -- kill engine: agent state, kill records and their resources, dedupe markers, rejected inputs ----------------
AGENT_STATE_SK = "STATE"
KILL_PREFIX = "KILL#"
KILL_POINTER_SK = "RECORD"  # under kill_pk: the agent of a kill, so a kill id alone finds its record
RESOURCE_PREFIX = "RES#"
DEDUPE_SK = "DEDUPE"


def kill_sk(kill_id: str) -> str:
    return f"{KILL_PREFIX}{kill_id}"


def resource_sk(region: str, resource_id: str, account: str = "") -> str:
    """`RES#<region>#<id>`; a hub kill's resource in an organization account: `RES#<account>#<region>#<id>`."""
    return (
        f"{RESOURCE_PREFIX}{account}#{region}#{resource_id}" if account else f"{RESOURCE_PREFIX}{region}#{resource_id}"
    )


def dedupe_pk(key: str) -> str:
    return f"DEDUPE#{key}"


def rejected_pk(day: str) -> str:
    return f"REJECTED#{day}"


def rejected_sk(timestamp: str, message_id: str | None) -> str:
    return f"{timestamp}#{message_id or '-'}"


# -- guard: caps, holds, outcomes (partition guard_pk) --------------------------------------------------------
CHARGE_PREFIX = "CHARGE#"
LEASE_PREFIX = "LEASE#"
OUTCOME_PREFIX = "OUTCOME#"


def cap_sk(scope: str, key: str) -> str:
    return f"CAP#{scope}#{key}"


def hold_sk(kind: str, hold_id: str) -> str:
    """A guard hold: `LEASE#<id>` for a lease, `CHARGE#<id>` for a charge."""
    return f"{LEASE_PREFIX if kind == 'lease' else CHARGE_PREFIX}{hold_id}"


def outcome_prefix(day: str | None = None) -> str:
    return OUTCOME_PREFIX if day is None else f"{OUTCOME_PREFIX}{day}#"


def outcome_sk(day: str, outcome_id: str) -> str:
    return f"{outcome_prefix(day)}{outcome_id}"


# -- meter: last compute tick, cached prices -------------------------------------------------------------------
METER_STATE_PK = "METER#STATE"
METER_TICK_SK = "TICK"
METER_PRICE_PK = "METER#PRICE"  # sk `<region>#<item>`


def approval_pk(agent: str) -> str:
    return f"APPROVAL#{agent}"


def approval_sk(run_id: str) -> str:
    return f"RUN#{run_id}"
