"""The house's three rooms stay apart: the program (components/) never reaches into the
operator's tools (tools/) or the tests' support (tests/), and Pulumi's private internals are
used in one adapter only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cluster import ROOT

PACKAGES = ("components", "tools", "tests")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative ones resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_the_scan_sees_relative_and_absolute_imports() -> None:
    """The scanner itself: a relative import of a sibling resolves to its package."""
    modules = _imports(ROOT / "components" / "program.py")
    assert "components.settings" in modules and "pulumi" in modules
    assert "tools.render" in _imports(ROOT / "tools" / "rehearse.py")


@pytest.mark.parametrize("path", _modules("components"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_program_imports_neither_tools_nor_tests(path: Path) -> None:
    bad = sorted(m for m in _imports(path) if m.split(".")[0] in ("tools", "tests"))
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", _modules("tools"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_tools_never_import_the_tests(path: Path) -> None:
    bad = sorted(m for m in _imports(path) if m.split(".")[0] == "tests")
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


def test_private_pulumi_internals_only_in_the_adapter() -> None:
    """``pulumi.runtime``'s undocumented modules are imported by tools/pulumi_internals.py alone."""
    private = ("pulumi.runtime.rpc", "pulumi.runtime.settings", "pulumi.runtime.sync_await", "pulumi.runtime.stack")
    users = sorted(
        str(path.relative_to(ROOT))
        for package in ("components", "tools")
        for path in _modules(package)
        if any(m == p or m.startswith(p + ".") for m in _imports(path) for p in private)
    )
    assert users == ["tools/pulumi_internals.py"]


_PROGRAM_UNDER_PUBLIC_MOCKS = """
import json, sys
import pulumi

class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        state = dict(args.inputs)
        if args.typ == "kubernetes:core/v1:Service" and args.resource_id:
            state = {"spec": {"ports": [{"port": 443, "targetPort": 8443}]},
                     "status": {"loadBalancer": {"ingress": [{"ip": "169.46.7.10"}]}}}
        if args.typ == "command:local:Command":
            state["stdout"] = json.dumps({"hostname": "gw.example.com", "secretName": "gw", "secretNamespace": "istio-system"})
        return (args.resource_id or args.name + "-id", state)

    def call(self, args):
        return {}

pulumi.runtime.set_mocks(Mocks(), project="iks-alb-istio-mtls", stack="dev", preview=False)
pulumi.runtime.set_all_config({"iks-alb-istio-mtls:cluster": "mycluster",
                               "iks-alb-istio-mtls:albDomain": "mycluster-0000.us-south.containers.appdomain.cloud",
                               "iks-alb-istio-mtls:albSecret": "mycluster-0000"})
from components import program
program.run()
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tools", "tests"))
print("LOADED", json.dumps(loaded))
print("PROGRAM", "components.program" in sys.modules, "components.alb_ingress" in sys.modules)
"""


def test_running_the_program_loads_no_tool_or_test_module() -> None:
    """The program, imported and run under Pulumi's public mocks in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM_UNDER_PUBLIC_MOCKS], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "PROGRAM True True" in done.stdout, done.stdout
    assert "LOADED []" in done.stdout, done.stdout
