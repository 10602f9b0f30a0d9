"""The engine tier: the program's objects, stack by stack, against a real kube-apiserver.

Opt-in like the rest of the tier (``ENGINE=1``; not collected otherwise): ``engine/smoke.sh`` starts
the control plane built from Go modules with the Istio and Traefik CRDs, and applies what the program
renders under mocks for each stack shape (the ALB flavours, ``apps`` with a custom domain,
``private-ca``, ``platform=generic``) with server-side apply: every object must be created and read
back, then deleted with its namespaces finalized.  A broken variant must be refused, so the check is
shown to be able to fail.  This is the API server's own validation (Ingress paths, TLS Secrets, the
CRDs' schemas), not ``pulumi up``: the Pulumi engine cannot run this program here (docs/engine.md).

The rendered Secrets hold throwaway keys made for this run: they are written only to a private
temporary folder (0700) that the test removes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import pki
from tests.support.cluster import CLUSTER, ROOT, standin
from tools import mock_program

pytestmark = [pytest.mark.engine]

SHOP = pki.self_signed_ca("Example Test Root").issue_leaf(["shop.example.com"])
APPS: list[dict[str, Any]] = [
    {"name": "web", "host": "web", "service": "frontend", "namespace": "web", "port": 8080, "createNamespace": True},
    {"name": "orders", "host": "api", "paths": ["/orders"], "service": "orders", "namespace": "shop", "port": 9000},
    {"name": "users", "host": "api", "paths": ["/users"], "service": "users", "namespace": "shop", "port": 9001},
    {"name": "shop", "host": "shop.example.com", "tlsSecret": "shop-tls", "service": "storefront", "namespace": "shop",
     "port": 80},
]
GENERIC = {"platform": "generic", "albDomain": "apps.example.com", "albSecret": "apps-tls", "ingressClassName": "traefik"}

#: stack name -> (config, the namespaces the cluster holds already)
STACKS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "01-default": ({"cluster": CLUSTER}, ("istio-system",)),
    "02-traefik": ({"cluster": CLUSTER, "albFlavor": "traefik"}, ("istio-system",)),
    "03-ibm-legacy": ({"cluster": CLUSTER, "albFlavor": "ibm-legacy"}, ("istio-system",)),
    "04-apps": ({"cluster": CLUSTER, "apps": APPS}, ("istio-system", "shop")),
    "05-private-ca": ({"cluster": CLUSTER, "gatewayCertSource": "private-ca"}, ("istio-system",)),
    "06-generic-traefik-apps": ({**GENERIC, "albFlavor": "traefik", "apps": APPS}, ("istio-system", "shop")),
}
SMOKE_TIMEOUT = 900.0


def _manifests(config: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = standin(
        namespaces=("default", "istio-system", "kube-system", "shop"),
        secrets={"istio-system/shop-tls": {"tls.crt": SHOP.chain_pem, "tls.key": SHOP.key_pem}},
    )
    r = mock_program.render(config, cluster)
    assert r.error is None, r.error
    return r.manifests()


def _write(folder: Path, manifests: list[dict[str, Any]], namespaces: tuple[str, ...], expect: str) -> None:
    folder.mkdir(mode=0o700)
    cluster = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces]
    (folder / "cluster.yaml").write_text(yaml.safe_dump_all(cluster), encoding="utf-8")
    (folder / "objects.yaml").write_text(yaml.safe_dump_all(manifests), encoding="utf-8")
    (folder / "expect").write_text(expect + "\n", encoding="utf-8")


def _broken(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The default stack with one Ingress path the API server refuses (not absolute)."""
    broken = [dict(m) for m in manifests]
    for obj in broken:
        if obj["kind"] == "Ingress":
            rule = obj["spec"]["rules"][0]
            rule["http"]["paths"][0] = {**rule["http"]["paths"][0], "path": "status"}
    return broken


@pytest.fixture(scope="module")
def stacks() -> Iterator[tuple[Path, dict[str, int]]]:
    """The stacks' folder, and how many objects each accepted stack has."""
    folder = Path(tempfile.mkdtemp(prefix="engine-stacks-"))  # mode 0700: the Secrets hold throwaway keys
    counts: dict[str, int] = {}
    try:
        for name, (config, namespaces) in STACKS.items():
            manifests = _manifests(config)
            counts[name] = len(manifests)
            _write(folder / name, manifests, namespaces, "accepted")
        _write(folder / "07-refused-relative-path", _broken(_manifests({"cluster": CLUSTER})), ("istio-system",),
               "refused")
        yield folder, counts
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_api_server_takes_every_stack_shape_and_refuses_a_broken_one(stacks: tuple[Path, dict[str, int]]) -> None:
    folder, counts = stacks
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    proc = subprocess.run(
        [str(ROOT / "engine" / "smoke.sh")],
        env={**os.environ, "SMOKE_STACKS_DIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    lines = proc.stdout.splitlines()
    assert lines[-1] == "smoke: ok", out
    for name in STACKS:
        (line,) = [x for x in lines if x.startswith(f"smoke: stack {name}: ")]
        found = re.fullmatch(rf"smoke: stack {name}: accepted (\d+) objects, read back (\d+), deleted", line)
        assert found, line
        assert found.group(1) == found.group(2) == str(counts[name]), line
    (refused,) = [x for x in lines if x.startswith("smoke: stack 07-refused-relative-path: ")]
    assert "refused as expected" in refused and "path" in refused, refused
