"""The Python-versions tier: the program runs, under mocks, on both ends of the supported range.

The floor is the pinned Pulumi SDK's (pulumi 3.272 requires Python 3.10); the top is the newest
Python on these machines (3.13).  ``tests/pythons.sh`` (run by tests/run.sh) makes a virtualenv
per version with only requirements.txt; each run here renders the same stacks as this
interpreter does and must register the same resources with the same inputs, and refuse bad
config with the same one-line message.  Without an interpreter the case skips on a laptop and
fails with ``CI=true``.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.support.cluster import ROOT

pytestmark = pytest.mark.pythons

VERSIONS = ("3.10", "3.13")

#: Stacks rendered on every interpreter: the three flavours, apps, a generic private-ca stack, and
#: config that must be refused.
STACKS: dict[str, dict[str, Any]] = {
    "default": {},
    "traefik": {"albFlavor": "traefik"},
    "ibm-legacy": {"albFlavor": "ibm-legacy", "routes": ["/status", "/headers"]},
    "bad-route": {"routes": ["/v1.0"]},
    "apps": {"apps": [
        {"name": "web", "host": "web", "service": "web", "namespace": "web", "port": 8080, "createNamespace": True},
        {"name": "api", "host": "api", "paths": ["/v1"], "service": "api", "namespace": "default", "port": 80},
    ]},
    "generic-private-ca": {"platform": "generic", "albDomain": "apps.example.com", "albSecret": "apps-tls",
                           "ingressClassName": "traefik", "albFlavor": "traefik"},
    "bad-apps": {"apps": [{"name": "web", "host": "web", "service": "web", "namespace": "web", "port": 70000}]},
    "blank-cluster": {"cluster": "   "},
}

_SCRIPT = """
import json, sys
from tests.support.cluster import render
out = {}
for name, config in json.loads(sys.argv[1]).items():
    r = render(config)
    out[name] = {
        "version": list(sys.version_info[:2]),
        "error": None if r.error is None else str(r.error),
        "resources": sorted(
            [x.urn, json.dumps(x.inputs, sort_keys=True, default=str) if x.type.startswith("kubernetes:") else ""]
            for x in r.resources
        ),
    }
print(json.dumps(out))
"""


def _run(python: str) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-c", _SCRIPT, json.dumps(STACKS)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _interpreter(version: str) -> str:
    python = ROOT / f".venv-py{version}" / "bin" / "python"
    if not python.exists():
        message = f"no {python.relative_to(ROOT)}: run tests/pythons.sh (needs pyenv's Python {version})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the Python-versions tier cannot run: {message}")
        pytest.skip(message)
    return str(python)


@pytest.fixture(scope="module")
def here() -> dict[str, Any]:
    """The same stacks on the interpreter running the tests (3.11 in CI)."""
    return _run(str(ROOT / ".venv-test" / "bin" / "python"))


@pytest.mark.parametrize("version", VERSIONS)
def test_the_program_renders_the_same_on(version: str, here: dict[str, Any]) -> None:
    there = _run(_interpreter(version))
    for name in STACKS:
        assert there[name]["version"] == [int(p) for p in version.split(".")], "the venv runs another Python"
        assert there[name]["error"] == here[name]["error"], name
        urns = [urn for urn, _ in there[name]["resources"]]
        assert urns == [urn for urn, _ in here[name]["resources"]], name
        # Kubernetes objects carry identical inputs, except what pulumi-tls stand-ins make fresh
        # (keys and certificates differ every run): compare the objects without secret data.
        objects = {urn: body for urn, body in there[name]["resources"] if body and "Secret::" not in urn}
        expected = {urn: body for urn, body in here[name]["resources"] if body and "Secret::" not in urn}
        assert objects == expected, name
    assert there["default"]["error"] is None and len(there["default"]["resources"]) > 15
    assert there["bad-route"]["error"].startswith("config iks-alb-istio-mtls:routes: entry '/v1.0'")
    assert there["apps"]["error"] is None and there["generic-private-ca"]["error"] is None
    assert there["bad-apps"]["error"].startswith("config iks-alb-istio-mtls:apps: entry 1 ('web') port")
    assert there["blank-cluster"]["error"].endswith("cluster: is only whitespace: give it a value, or remove the key to use its default")
