"""CDK template tests. jsii prints a banner on an end-of-life Node unless told not to: set before aws_cdk loads."""

import os

for _name in ("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"):
    os.environ.setdefault(_name, "18,20")
