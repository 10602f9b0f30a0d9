"""``rehearse``: the stack's hop on loopback, driven as a user would run it.

Needs nginx and Envoy like test_dataplane.py (skipped without them, failed with ``CI=true``),
except the tests that are about their absence or about a refusal before the data plane.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from tests.support.cluster import ROOT
from tests.support.dataplane import require_tools as _require_tools
from tools import dataplane, rehearse

pytestmark = pytest.mark.dataplane


def run(raw: dict[str, Any], **kwargs: Any) -> tuple[int, list[str]]:
    lines: list[str] = []
    status = rehearse.rehearse({"cluster": "mycluster", **raw}, out=lines.append, **kwargs)
    return status, lines


def checks(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("check")]


@pytest.mark.parametrize(("flavor", "alb_line"), [
    ("nginx", "verify on (depth 3)"),
    ("ibm-legacy", "verify on (depth 3)"),
    ("traefik", "TLS VersionTLS12-VersionTLS13"),
])
def test_rehearsal_passes_the_recipe_checks(flavor: str, alb_line: str) -> None:
    _require_tools(*(("traefik", "envoy") if flavor == "traefik" else ("nginx", "envoy")))
    status, lines = run({"albFlavor": flavor, "routes": ["/status", "/headers"]})
    assert status == 0, "\n".join(lines)
    assert len(checks(lines)) == 4 and all(line.startswith("check      ok ") for line in checks(lines)), "\n".join(lines)
    alb = "configured Traefik" if flavor == "traefik" else "configured nginx"
    assert any(line.startswith(alb) and alb_line in line for line in lines), "\n".join(lines)
    assert any(line.startswith("configured Envoy") and "MUTUAL TLS, min TLSV1_2" in line for line in lines)
    assert lines[-1].startswith("stopped")
    assert not any("PRIVATE KEY" in line for line in lines)


def test_alb_mode_shows_the_preflight_refusal_without_starting_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_start(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the data plane must not start after the preflight refused")

    monkeypatch.setattr(dataplane.LoopbackDataPlane, "start", no_start)
    status, lines = run({"clientCertSource": "alb"})
    assert status == 1
    refused = [line for line in lines if line.startswith("program    refused")]
    assert len(refused) == 1 and "no clientAuth extended key usage" in refused[0]
    assert "clientCertSource=private-ca" in refused[0]
    assert "--without-preflight" in lines[-1]


def test_alb_mode_without_preflight_shows_envoy_refusing() -> None:
    _require_tools()
    status, lines = run({"clientCertSource": "alb"}, without_preflight=True)
    assert status == 1, "\n".join(lines)
    results = checks(lines)
    assert results[0].startswith("check      FAIL ALB") and "-> 502" in results[0], results
    assert results[1].startswith("check      FAIL gateway") and "refused" in results[1], results
    assert any("preflight skipped on request" in line for line in lines)


def test_missing_tools_say_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataplane, "find_tool", lambda name: (_ for _ in ()).throw(dataplane.ToolMissing("envoy")))
    status, lines = run({})
    assert status == 2
    assert lines[-1] == f"rehearse: envoy not found: {dataplane.INSTALL_HINTS['envoy']}"


def test_bad_config_is_named() -> None:
    status, lines = run({"routes": ["status"]})
    assert status == 2
    assert lines == ["rehearse: config iks-alb-istio-mtls:routes: entry 'status' is not an absolute path such as /status"]


def test_the_command_rehearses_the_dev_stack() -> None:
    _require_tools()
    proc = subprocess.run(
        [sys.executable, "-m", "tools.rehearse", "--stack", "dev"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("check      ok") == 4, proc.stdout
    assert proc.stderr.strip() == "" or "Traceback" not in proc.stderr, proc.stderr


def test_the_command_names_a_missing_stack() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.rehearse", "--stack", "nosuchstack"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "Pulumi.nosuchstack.yaml does not exist" in proc.stdout
