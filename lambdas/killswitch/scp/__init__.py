"""Service control policies: offline validator, evaluator and IAM catalogue access (see scp_policies/README.md)."""
