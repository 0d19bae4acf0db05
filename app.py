#!/usr/bin/env python3
"""CDK app entry (`cdk.json` runs it): config → stacks → cdk-nag → synth. See infra/entry.py and docs/deploy.md."""

import sys

import infra  # noqa: F401  (first: quiets jsii's Node banner before aws_cdk loads)
from infra.entry import main

if __name__ == "__main__":
    sys.exit(main())
