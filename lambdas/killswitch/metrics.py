"""The one CloudWatch metrics namespace: the Lambdas (EMF through Powertools), the guard SDK (EMF lines), the
stack's `POWERTOOLS_METRICS_NAMESPACE` and the dashboard's SEARCH expressions all use it."""

METRICS_NAMESPACE = "AgentKillSwitch"
