"""The one config file (`killswitch.yaml`): typed models, loading, and errors that name file, line and field.

Validation happens once, on load. Every mistake becomes a `ConfigIssue` with the file, the line/column of the
offending YAML node, the field path (`agents[1].budget.warn_at_pct`) and what is wrong, so `killswitch validate`
and `cdk synth` print the same precise message.

The Lambda never reads YAML: the CDK app serialises the validated model to JSON in an environment variable and
`KillSwitchConfig.from_json` reads it back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from killswitch.periods import Period

DEFAULT_CONFIG_FILE = "killswitch.yaml"
CONFIG_PATH_ENV = "KILLSWITCH_CONFIG"

ACCOUNT_ID_RE = r"^\d{12}$"
REGION_RE = r"^(us|eu|ap|sa|ca|me|af|il|mx|cn|us-gov)-[a-z]+-\d{1,2}$"
# IAM role ARNs, with `*` allowed for the account and inside the role path/name (break-glass patterns).
ROLE_ARN_RE = r"^arn:aws[a-z-]*:iam::(\d{12}|\*):role/[\w+=,.@*/-]+$"
EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
OU_ID_RE = r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$"
ROOT_ID_RE = r"^r-[0-9a-z]{4,32}$"
ORG_ID_RE = r"^o-[a-z0-9]{10,32}$"
# An STS external id: 2-1224 characters of [\w+=,.@:/-] (the length is checked separately).
EXTERNAL_ID_RE = r"^[A-Za-z0-9_+=,.@:/-]+$"
# A tag value that is also safe inside a budget name and a cost filter.
AGENT_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.+=@-]{0,99}$"

AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT_ID_RE)]
Region = Annotated[str, StringConstraints(pattern=REGION_RE)]
RoleArn = Annotated[str, StringConstraints(pattern=ROLE_ARN_RE)]
Email = Annotated[str, StringConstraints(pattern=EMAIL_RE)]
Usd = Annotated[float, Field(gt=0, le=10_000_000)]


class Action(StrEnum):
    STOP_EC2 = "stop_ec2"
    SCALE_ECS = "scale_ecs"
    STOP_ECS_TASKS = "stop_ecs_tasks"
    SCALE_ASG = "scale_asg"
    APPLY_SCP = "apply_scp"
    DENY_IAM = "deny_iam"
    STOP_LAMBDA = "stop_lambda"
    STOP_RDS = "stop_rds"
    STOP_SAGEMAKER = "stop_sagemaker"
    SCALE_EKS = "scale_eks"
    STOP_BATCH = "stop_batch"


ALL_ACTIONS: tuple[Action, ...] = tuple(Action)


class Approval(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class FieldError(ValueError):
    """A cross-field error that knows which field (relative to the model being validated) is at fault."""

    def __init__(self, loc: tuple[str | int, ...], message: str):
        self.loc = loc
        super().__init__(message)


class _Strict(BaseModel):
    # defer_build: the Lambdas read the synth-validated config with `killswitch.runtime_config` and never validate,
    # so they never pay for building these schemas (the CLI and synth build them on their first validation).
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, defer_build=True)


class BudgetConfig(_Strict):
    amount_usd: Usd
    period: Period = Period.MONTHLY
    warn_at_pct: float = Field(default=80, gt=0, le=1000)
    kill_at_pct: float = Field(default=100, gt=0, le=1000)
    # FORECASTED alerts need ~5 weeks of history and can fire repeatedly: they kill only when asked to.
    forecasted: bool = False
    kill_on_forecast: bool = False
    # With `accounts:`: the amount of the agent's linked-account budget for each `accounts.account_ids` entry, made
    # in the management account (`killswitch.org_budgets`).
    per_account_usd: Usd | None = None

    @model_validator(mode="after")
    def _warn_below_kill(self) -> BudgetConfig:
        if self.warn_at_pct >= self.kill_at_pct:
            raise FieldError(
                ("warn_at_pct",), f"warn_at_pct ({self.warn_at_pct:g}) must be below kill_at_pct ({self.kill_at_pct:g})"
            )
        if self.kill_on_forecast and not self.forecasted:
            raise FieldError(
                ("kill_on_forecast",), "kill_on_forecast needs forecasted: true (no FORECASTED alert would arrive)"
            )
        return self


class CapsConfig(_Strict):
    """Real-time caps enforced in the agent's process by the guard SDK."""

    per_run_usd: Usd | None = None
    per_day_usd: Usd | None = None
    per_workflow_usd: dict[str, Usd] = Field(default_factory=dict)
    # Per run: what one business outcome (`run.outcome("ticket_resolved")`) may cost.
    per_outcome_usd: dict[str, Usd] = Field(default_factory=dict)


class ThrottleConfig(_Strict):
    """Step-down near the cap: past `from_pct` of `caps.per_day_usd`, at most N charges a minute per process."""

    from_pct: float = Field(default=90, gt=0, le=100)
    max_calls_per_minute: int = Field(ge=1, le=1_000_000)


class EscalateConfig(_Strict):
    """Pause a run that calls a costly tool more than `after_calls` times until a person approves it."""

    tool: str = Field(min_length=1)
    after_calls: int = Field(ge=1, le=1_000_000)
    over_usd: Usd | None = None


class ModelsConfig(_Strict):
    """Thrift-mode routing: past the warn percentage the guard routes to the cheap model."""

    cheap: str = Field(min_length=1)
    premium: str = Field(min_length=1)


class LoopConfig(_Strict):
    max_identical_calls: int = Field(default=5, ge=2, le=1000)
    max_depth: int = Field(default=4, ge=1, le=100)
    max_steps_per_run: int = Field(default=200, ge=1, le=1_000_000)


class BurnRateConfig(_Strict):
    """Meter rule: kill when spend inside the last `window_minutes` passes `max_pct_of_budget` of the budget."""

    window_minutes: int = Field(default=60, ge=5, le=1440)
    max_pct_of_budget: float = Field(default=50, gt=0, le=1000)


class MeterConfig(_Strict):
    """The meter (Bedrock invocation logs + running compute → per-agent estimate). Off when the section is absent."""

    # Adopt an existing invocation-log group; when absent the stack creates `/<prefix>/bedrock-invocations`.
    log_group_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_#/.-]+$", max_length=512)] | None = None
    # Turn on Bedrock model invocation logging to that group (one setting per account and region).
    enable_invocation_logging: bool = True
    compute: bool = True  # price running tagged compute every `tick_minutes`
    tick_minutes: int = Field(default=5, ge=1, le=60)
    caller_cache_seconds: int = Field(default=300, ge=0, le=86_400)


class AgentConfig(_Strict):
    name: Annotated[str, StringConstraints(pattern=AGENT_NAME_RE)]
    budget: BudgetConfig
    budget_name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^:\\]+$")] | None = None
    actions: list[Action] = Field(default_factory=lambda: list(ALL_ACTIONS))
    approval: Approval = Approval.AUTOMATIC
    sandbox_accounts: list[AccountId] = Field(default_factory=list)
    caps: CapsConfig = Field(default_factory=CapsConfig)
    models: ModelsConfig | None = None
    loop: LoopConfig = Field(default_factory=LoopConfig)
    throttle: ThrottleConfig | None = None
    escalate: EscalateConfig | None = None
    # What a guard-fired kill stops: only the offending run's resources, or everything of the agent.
    kill_scope: Literal["run", "agent"] = "run"
    max_resources_per_kill: int | None = Field(default=None, ge=1)
    burn_rate: BurnRateConfig | None = None  # meter rule, off by default

    @model_validator(mode="after")
    def _unique_lists(self) -> AgentConfig:
        for field_name in ("actions", "sandbox_accounts"):
            values = getattr(self, field_name)
            for i, v in enumerate(values):
                if v in values[:i]:
                    raise FieldError((field_name, i), f"{field_name} lists {v!s} more than once")
        return self


class NotifyConfig(_Strict):
    emails: list[Email] = Field(default_factory=list, max_length=10)


class SandboxConfig(_Strict):
    break_glass_role_arns: list[RoleArn] = Field(min_length=1)
    scp: str = "scp_policies/deny-agent-compute.json"
    management_account_id: AccountId | None = None
    # Account of the workload stack (kill Lambda). When set, the management stack creates a role that this
    # account's kill Lambda assumes to attach/detach the deny SCP; otherwise both stacks share one account.
    workload_account_id: AccountId | None = None


class AccountsConfig(_Strict):
    """Hub and spokes: the organization accounts the kill reaches through a `<prefix>-spoke` role, which the
    management stack deploys to them as a service-managed StackSet (new accounts of an OU get it automatically)."""

    organizational_units: list[Annotated[str, StringConstraints(pattern=OU_ID_RE)]] = Field(default_factory=list)
    account_ids: list[AccountId] = Field(default_factory=list)
    # A service-managed StackSet reaches single accounts only through an OU: they are taken from the root.
    organization_root_id: Annotated[str, StringConstraints(pattern=ROOT_ID_RE)] | None = None
    # Account of the kill Lambda (the hub); default sandbox.workload_account_id, else the management account.
    hub_account_id: AccountId | None = None
    external_id: Annotated[str, StringConstraints(min_length=2, max_length=1224, pattern=EXTERNAL_ID_RE)] | None = None
    # Hub kill: accounts × regions discovered and acted on at once (a bounded thread pool in the kill Lambda).
    max_parallel: int = Field(default=16, ge=1, le=64)
    # Roles of the hub account that ops run `killswitch restore|approve|status` with: the spoke role trusts them next
    # to the kill Lambda's role, so a restore reaches every account the kill reached. Exact ARNs, no wildcards.
    ops_role_arns: list[RoleArn] = Field(default_factory=list)
    # Organization budgets (`killswitch.org_budgets`): the management account, where they and their alerts topic live
    # (default sandbox.management_account_id; needed when the hub is another account), whether each agent gets an
    # org-wide budget, and how many `<prefix>-org-budgets-N` stacks hold them (stable hash, like `budget_stacks`).
    management_account_id: AccountId | None = None
    org_wide_budgets: bool = True
    budget_stacks: int = Field(default=1, ge=1, le=100)
    # The organization (o-...): pins the hub bus policy that admits the spokes' watch events to this organization.
    organization_id: Annotated[str, StringConstraints(pattern=ORG_ID_RE)] | None = None

    @model_validator(mode="after")
    def _targets(self) -> AccountsConfig:
        if not self.organizational_units and not self.account_ids:
            raise FieldError(("organizational_units",), "list at least one OU id (ou-...) or account id")
        if self.account_ids and not self.organization_root_id:
            raise FieldError(
                ("organization_root_id",),
                "account_ids need organization_root_id (r-...): a service-managed StackSet reaches single "
                "accounts only through an organizational unit",
            )
        for i, arn in enumerate(self.ops_role_arns):
            if "*" in arn:
                raise FieldError(
                    ("ops_role_arns", i),
                    f"{arn}: the spoke role trusts these roles; name each one exactly (no wildcards), "
                    "in the hub account",
                )
        for field_name in ("organizational_units", "account_ids"):
            values = getattr(self, field_name)
            for i, v in enumerate(values):
                if v in values[:i]:
                    raise FieldError((field_name, i), f"{field_name} lists {v} more than once")
        return self


class KillSwitchConfig(_Strict):
    prefix: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,30}$")] = "killswitch"
    regions: list[Region] = Field(min_length=1)
    home_region: Region | None = None
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    agents: list[AgentConfig] = Field(min_length=1)
    sandbox: SandboxConfig | None = None
    max_resources_per_kill: int = Field(default=1000, ge=1)
    ledger_retention_days: int = Field(default=400, ge=1, le=3650)
    # Budgets are spread over this many stacks by a hash of the agent name (see infra/budget_stacks.py).
    budget_stacks: int = Field(default=1, ge=1, le=100)
    accounts: AccountsConfig | None = None
    meter: MeterConfig | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> KillSwitchConfig:
        from killswitch.budget_names import ambiguous_bases, base_name

        names = [a.name for a in self.agents]
        # Deployed names are `<base cut to 91>-<hash>`: the cut bases must be unique and unambiguous too.
        budget_names = [base_name(self, a) for a in self.agents]
        clash = ambiguous_bases(budget_names)
        if clash:
            raise FieldError(
                ("agents", clash[0], "budget_name"),
                f"budget name {budget_names[clash[0]]!r} reads as agents[{clash[1]}]'s budget name plus a "
                "hash suffix: alerts could not tell the two apart",
            )
        for i, a in enumerate(self.agents):
            if a.name in names[:i]:
                raise FieldError(
                    ("agents", i, "name"), f"agent name {a.name!r} is already used by agents[{names.index(a.name)}]"
                )
            if budget_names[i] in budget_names[:i]:
                raise FieldError(
                    ("agents", i, "budget_name"),
                    f"budget name {budget_names[i]!r} is already used by agents[{budget_names.index(budget_names[i])}]",
                )
        for i, r in enumerate(self.regions):
            if r in self.regions[:i]:
                raise FieldError(("regions", i), f"region {r} is listed more than once")
        mgmt = self.sandbox.management_account_id if self.sandbox else None
        if mgmt and self.accounts and mgmt in self.accounts.account_ids:
            raise FieldError(
                ("accounts", "account_ids", self.accounts.account_ids.index(mgmt)),
                f"{mgmt} is the management account: StackSets never deploy to it",
            )
        hub = self.accounts.hub_account_id if self.accounts else None
        if hub and self.sandbox is not None:
            # The spoke trust, the org alerts subscription and the bus policy name the hub; the workload stack (the
            # kill Lambda) deploys where the sandbox section says. Both must be the same account.
            workload = self.sandbox.workload_account_id
            if workload and hub != workload:
                raise FieldError(
                    ("accounts", "hub_account_id"),
                    f"{hub} is not sandbox.workload_account_id ({workload}), the account the kill Lambda deploys to: "
                    "make them the same account or drop accounts.hub_account_id",
                )
            if not workload and mgmt and hub != mgmt:
                raise FieldError(
                    ("accounts", "hub_account_id"),
                    f"{hub}: without sandbox.workload_account_id the kill Lambda deploys into the management account "
                    f"{mgmt} (shared-account mode); set sandbox.workload_account_id: {hub} or drop "
                    "accounts.hub_account_id",
                )
        for i, a in enumerate(self.agents):
            if a.sandbox_accounts and self.sandbox is None:
                raise FieldError(
                    ("agents", i, "sandbox_accounts"),
                    "sandbox_accounts needs a top-level sandbox section (break_glass_role_arns)",
                )
            if mgmt and mgmt in a.sandbox_accounts:
                raise FieldError(
                    ("agents", i, "sandbox_accounts", a.sandbox_accounts.index(mgmt)),
                    f"{mgmt} is the management account; SCPs never apply to the management account",
                )
        from killswitch.org_budgets import org_budget_errors

        for loc, message in org_budget_errors(self):
            raise FieldError(loc, message)
        return self

    # -- derived values -------------------------------------------------------------------------------------
    @property
    def deploy_region(self) -> str:
        return self.home_region or self.regions[0]

    def budget_name_for(self, agent: AgentConfig) -> str:
        return agent.budget_name or f"{self.prefix}-{agent.name}"

    def agent(self, name: str) -> AgentConfig:
        for a in self.agents:
            if a.name == name:
                return a
        raise KeyError(f"agent {name!r} is not in the config (known: {', '.join(self.agent_names())})")

    def agent_names(self) -> list[str]:
        return [a.name for a in self.agents]

    def agent_for_budget(self, budget_name: str) -> AgentConfig | None:
        """Budget name (plain or hashed, see `killswitch.budget_names`) → agent: the config is the source of truth."""
        from killswitch.budget_names import agent_for_budget

        return agent_for_budget(self, budget_name)

    def scp_policy_name(self) -> str | None:
        """Organizations name of the deny SCP the tag-path kill attaches: `<prefix>-<file stem>`."""
        return f"{self.prefix}-{Path(self.sandbox.scp).stem}" if self.sandbox else None

    def spoke_role_name(self) -> str:
        return f"{self.prefix}-spoke"

    def spoke_external_id(self) -> str:
        return (self.accounts.external_id if self.accounts else None) or f"{self.prefix}-hub"

    def max_resources_for(self, agent: AgentConfig) -> int:
        return agent.max_resources_per_kill or self.max_resources_per_kill

    # -- serialisation for Lambda environment ---------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_defaults=True), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> KillSwitchConfig:
        return cls.model_validate_json(text)


# ----------------------------------------------------------------------------------------------------
# Errors with positions
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int
    col: int
    code: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.file}:{self.line}:{self.col}: {self.code} {where}{self.message}"


class ConfigError(Exception):
    def __init__(self, issues: list[ConfigIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


Loc = tuple[str | int, ...]


if TYPE_CHECKING:
    import yaml


@cache
def _strict_loader() -> type[yaml.SafeLoader]:
    """A SafeLoader that refuses duplicate keys (YAML silently keeps the last one).

    PyYAML is imported lazily: the Lambda runtime has no PyYAML and handlers read the config from JSON.
    """
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first})", key_node.start_mark
                )
            seen[key] = key_node
        return loader.construct_mapping(node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictLoader


def _positions(node: yaml.Node | None, loc: Loc = ()) -> dict[Loc, tuple[int, int]]:
    """Map every field path to the (line, col) of its YAML node; for mapping keys, the key's position."""
    out: dict[Loc, tuple[int, int]] = {}
    import yaml

    if node is None:
        return out
    out.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*loc, str(key_node.value))
            out[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            for sub, pos in _positions(value_node, child).items():
                if sub != child:
                    out[sub] = pos
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(_positions(item, (*loc, i)))
    return out


def field_positions(text: str) -> dict[Loc, tuple[int, int]]:
    """(line, col) of every field path of a config text, for checks made after loading (files the config names)."""
    import yaml

    return _positions(yaml.compose(text, Loader=_strict_loader()))


def _field_path(loc: Loc) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + p)
    return "".join(parts)


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    # pydantic adds pseudo-locations for enum/literal/union branches (e.g. 'float', 'function-after[...]').
    return tuple(p for p in loc if isinstance(p, int) or not (("[" in p and "]" in p) or p in {"float", "str"}))


_CODES = {
    "extra_forbidden": "KS101",
    "missing": "KS102",
    "string_pattern_mismatch": "KS103",
    "enum": "KS104",
    "literal_error": "KS104",
    "greater_than": "KS105",
    "greater_than_equal": "KS105",
    "less_than_equal": "KS105",
    "too_short": "KS106",
    "too_long": "KS106",
    "value_error": "KS107",
}


def _message(err: Any) -> str:
    kind = err["type"]
    loc = _clean_loc(err["loc"])
    name = str(next((p for p in reversed(loc) if isinstance(p, str)), "value"))
    got = err.get("input")
    if kind == "extra_forbidden":
        return f"unknown key {name!r}"
    if kind == "missing":
        return f"required key {name!r} is missing"
    if kind == "string_pattern_mismatch":
        hints = {
            "sandbox_accounts": "an AWS account id is 12 digits, quoted",
            "management_account_id": "an AWS account id is 12 digits, quoted",
            "account_ids": "an AWS account id is 12 digits, quoted",
            "hub_account_id": "an AWS account id is 12 digits, quoted",
            "organizational_units": "not an organizational unit id like ou-ab12-cd34ef56",
            "organization_root_id": "not an organization root id like r-ab12",
            "organization_id": "not an organization id like o-a1b2c3d4e5",
            "external_id": "2-1224 letters, digits or _+=,.@:/-",
            "regions": "not an AWS region name like us-east-1",
            "home_region": "not an AWS region name like us-east-1",
            "break_glass_role_arns": "not an IAM role ARN like arn:aws:iam::*:role/BreakGlass",
            "emails": "not an email address",
            "name": "agent names are 1-100 letters, digits or _.+=@- and start with a letter or digit",
            "prefix": "lowercase letters, digits and '-', starting with a letter, 2-31 characters",
        }
        field = next((p for p in reversed(loc) if isinstance(p, str)), "")
        return f"{got!r} is invalid: {hints.get(field, err['msg'])}"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal"):
        return f"{got!r} is out of range: {_lower_first(err['msg'])}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind in ("enum", "literal_error"):
        return f"{got!r} is not allowed: {_lower_first(err['msg'])}"
    suffix = f" (got {got!r})" if got is not None and not isinstance(got, dict | list) else ""
    return f"{_lower_first(err['msg'])}{suffix}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _error_loc(err: Any) -> Loc:
    """Field path of a pydantic error, extended by a FieldError's own location for cross-field checks."""
    loc = _clean_loc(err["loc"])
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        loc = (*loc, *cause.loc)
    return loc


def parse_config(text: str, file: str = DEFAULT_CONFIG_FILE) -> KillSwitchConfig:
    """Parse YAML text; raise ConfigError with every problem found, each with its position."""
    import yaml

    loader = _strict_loader()
    try:
        node = yaml.compose(text, Loader=loader)
        data = yaml.load(text, Loader=loader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError([ConfigIssue(file, line, col, "KS100", "", f"YAML: {exc.problem or exc}")]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(file, 1, 1, "KS100", "", f"YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(file, 1, 1, "KS100", "", "the config must be a YAML mapping")])
    positions = _positions(node)
    try:
        return KillSwitchConfig.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = _error_loc(err)
            probe = loc
            while probe not in positions and probe:
                probe = probe[:-1]
            line, col = positions.get(probe, (1, 1))
            issues.append(
                ConfigIssue(file, line, col, _CODES.get(err["type"], "KS199"), _field_path(loc), _message(err))
            )
        raise ConfigError(issues) from exc


def resolve_config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Explicit path, else `$KILLSWITCH_CONFIG`, else `killswitch.yaml` in the working directory."""
    return Path(path or os.environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_FILE)


def load_config(path: str | os.PathLike[str] | None = None) -> KillSwitchConfig:
    p = resolve_config_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(str(p), 1, 1, "KS000", "", f"cannot read config: {exc.strerror}")]) from exc
    return parse_config(text, str(p))
