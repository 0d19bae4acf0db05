"""What a fresh interpreter loads when it imports a handler: the cold-start import tests of the Lambda handlers."""

from __future__ import annotations

import json
import subprocess
import sys


def modules_after_import(module: str) -> list[str]:
    """Every module in `sys.modules` after `import <module>` in a new interpreter (nothing cached from the tests)."""
    code = f"import sys, json; import {module}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(proc.stdout))
