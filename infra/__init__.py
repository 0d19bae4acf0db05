"""CDK infrastructure of the Agent Kill Switch: one stack per deployment unit, one construct per feature.

- `infra.workload_stack.WorkloadStack` — per workload account: topics, ledger, kill + spend Lambdas, budgets,
  alarms, dashboard, guard-publisher policy.
- `infra.management_stack.ManagementStack` — management account (only with a `sandbox` section): SCPs, budget
  actions that apply the deny SCP, and the cross-account `<prefix>-org-kill` role.
- `infra.app_builder.build_app` — builds the whole app from a validated config (used by `app.py`, tests, summary).
"""

import os

# jsii prints a large banner on every start under an end-of-life Node; it is noise in synth and test output.
# The variables take a comma-separated list of Node major versions.
for _name in ("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"):
    os.environ.setdefault(_name, "18,20")
