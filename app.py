#!/usr/bin/env python3
"""CDK app entry (`cdk.json` runs it): config → stacks → cdk-nag → synth. See infra/entry.py and docs/deploy.md."""

import sys

from infra.entry import main

if __name__ == "__main__":
    sys.exit(main())
