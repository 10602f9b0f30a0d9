"""``python -m tools.verify``: its verdicts and its refusals of bad input, on 127.0.0.1 only.

Three promises are tested here.  Bad input — an argument, an input file of the wrong shape, an
out-of-range number — ends the run with exit status 2 and one line on stderr that names the
argument or file, never a traceback (Ctrl-C: 130).  And the check "without a client certificate
-> refused" passes only when the address that answered the client certificate then refuses a
client without one at the TLS layer; a closed port, a plain-HTTP port, a name that does not
resolve or a server that lets everyone in is a FAIL, and a FAIL makes the exit status 1.  And the
two other stack shapes are checked as they are served: an ``apps`` stack on each of its ``urls``
(an answer that is the ALB's or the gateway's failure is a FAIL), the gateway with the first app
host as HTTP Host; a ``gatewayCertSource=private-ca`` stack's gateway against the program's CA from
``alb-certs`` (``ca.crt``) and never against the ALB's trust store, with a one-line FAIL saying
what to do when its cluster-internal name does not resolve.

The servers are small Python ``ssl`` servers (tests/support/tls_servers.py); the data-plane tier
(tests/test_dataplane.py) runs the same command against real nginx and Envoy.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import documented, pki
from tests.support.cluster import ROOT
from tests.support.tls_servers import (
    Material,
    Request,
    closed_port,
    make_pki,
    plain_http_server,
    private_dir,
    silent_server,
    tls_server,
)
from tools import verify

ALB_HOST = "httpbin.alb.test"
GATEWAY = "gateway.test"
OUTPUTS = {"albHost": ALB_HOST, "gatewayDomain": GATEWAY, "albCertsSecret": "istio-system/alb-certs"}
TIMEOUT = 5.0
TLS13 = ssl.TLSVersion.TLSv1_3
TLS12 = ssl.TLSVersion.TLSv1_2
REFUSAL_LINE = 2  # the report's third line: "without a client certificate"
# An apps stack: two hosts, three URLs (components/specs.py app_urls), no albHost, no appNamespace.
WEB = "web.alb.test"
API = "api.alb.test"
APP_URLS = [f"https://{WEB}", f"https://{API}/orders", f"https://{API}/payments"]
APPS_OUTPUTS = {"gatewayDomain": GATEWAY, "gatewaySecret": "gateway", "gatewayNamespace": "istio-system",
                "albCertsSecret": "istio-system/alb-certs", "urls": APP_URLS}
#: What each app URL answers through the ALB stand-in: an app's 200 and 404 pass, a 503 does not.
APP_STATUS = {"/": 200, "/orders": 404, "/payments": 503}
APP_WANT = "(want the app's answer: not 500, 502, 503 or 504)"
# A private-ca stack: the gateway's cluster-internal name, its certificate from the program's CA.
PRIVATE_GATEWAY = "istio-ingressgateway.istio-system.svc"
PRIVATE_NAMES = [PRIVATE_GATEWAY, f"{PRIVATE_GATEWAY}.cluster.local"]


@pytest.fixture(scope="module")
def material() -> Material:
    return make_pki([ALB_HOST, GATEWAY, WEB, API])


@pytest.fixture(scope="module")
def identity(material: Material) -> verify.ClientIdentity:
    return verify.ClientIdentity(material.client.chain_pem, material.client.key_pem)


@pytest.fixture(scope="module")
def alb(material: Material) -> Iterator[int]:
    """The ALB stand-in: TLS without client certificates, answering 418 (check 1 passes)."""
    with tls_server(material, require_client_cert=False) as server:
        yield server.port


@pytest.fixture
def tmp() -> Iterator[Path]:
    with private_dir() as path:
        yield path


def _checks(material: Material, identity: verify.ClientIdentity, alb_port: int, port: int | None, *,
            gateway: str = GATEWAY) -> verify.Report:
    """The four checks: the ALB's host sent to ``alb_port``, the gateway's to ``port`` (None: its DNS name)."""
    targets = [verify.Target(ALB_HOST, 443, "127.0.0.1", alb_port)]
    if port is not None:
        targets.append(verify.Target(gateway, 443, "127.0.0.1", port))
    return verify.run_checks(
        {"albHost": ALB_HOST, "gatewayDomain": gateway}, identity, ca_pem=material.anchors_pem,
        connect_to=targets, timeout=TIMEOUT,
    )


def _refusal_line(report: verify.Report) -> tuple[bool, str]:
    ok, text = report.lines[REFUSAL_LINE]
    assert "without a client certificate" in text, report.render()
    return ok, text


# --- the refusal check's verdicts ------------------------------------------------------------------


@pytest.mark.parametrize(("version", "why"), [
    (TLS13, "refused (TLS 1.3 alert certificate required)"),
    (TLS12, "refused (TLS 1.2 handshake failure after the server's hello)"),
])
def test_a_server_that_demands_a_client_certificate_passes(
    material: Material, identity: verify.ClientIdentity, alb: int, version: ssl.TLSVersion, why: str
) -> None:
    with tls_server(material, require_client_cert=True, version=version) as server:
        report = _checks(material, identity, alb, server.port)
    assert report.ok, report.render()
    ok, text = _refusal_line(report)
    assert ok and f"-> {why} (want refused)" in text, text
    assert any("PEER_DID_NOT_RETURN_A_CERTIFICATE" in e for e in server.errors), server.errors  # the server did refuse


@pytest.mark.parametrize("version", [TLS13, TLS12])
def test_a_server_that_lets_clients_in_without_a_certificate_fails(
    material: Material, identity: verify.ClientIdentity, alb: int, version: ssl.TLSVersion
) -> None:
    with tls_server(material, require_client_cert=False, version=version) as server:
        report = _checks(material, identity, alb, server.port)
    assert [ok for ok, _ in report.lines] == [True, True, False, True], report.render()
    assert "-> not refused: answered 418 (want refused)" in _refusal_line(report)[1]


def test_a_plain_http_port_fails(material: Material, identity: verify.ClientIdentity, alb: int) -> None:
    with plain_http_server() as server:
        report = _checks(material, identity, alb, server.port)
        probe = verify.request_without_certificate(
            verify.Target(GATEWAY, 443, "127.0.0.1", server.port), "/", verify.tls_context(ca_pem=material.anchors_pem, identity=None),
            timeout=TIMEOUT,
        )
    ok, text = _refusal_line(report)
    assert not ok and "not proven" in text, text
    assert not report.ok
    assert not probe.refused and "failed before the server's hello" in probe.detail, probe


def test_a_closed_port_fails(material: Material, identity: verify.ClientIdentity, alb: int) -> None:
    with closed_port() as port:
        report = _checks(material, identity, alb, port)
        probe = verify.request_without_certificate(
            verify.Target(GATEWAY, 443, "127.0.0.1", port), "/", verify.tls_context(ca_pem=None, identity=None), timeout=TIMEOUT
        )
    ok, text = _refusal_line(report)
    assert not ok and f"-> not checked: the request with the client certificate did not connect (cannot connect to 127.0.0.1:{port}" in text, text
    assert [ok for ok, _ in report.lines] == [True, False, False, False], report.render()
    assert not probe.refused and probe.detail.startswith(f"cannot connect to 127.0.0.1:{port}: "), probe


def test_a_name_that_does_not_resolve_fails(material: Material, identity: verify.ClientIdentity, alb: int) -> None:
    report = _checks(material, identity, alb, None, gateway="gateway.verify-test.invalid")
    ok, text = _refusal_line(report)
    assert not ok and "not checked" in text and "cannot connect to gateway.verify-test.invalid:443" in text, text
    probe = verify.request_without_certificate(
        verify.Target("gateway.verify-test.invalid"), "/", verify.tls_context(ca_pem=None, identity=None), timeout=TIMEOUT
    )
    assert not probe.refused and "cannot connect to gateway.verify-test.invalid:443" in probe.detail, probe


def test_a_refusal_where_the_certificate_is_refused_too_proves_nothing(
    material: Material, identity: verify.ClientIdentity, alb: int
) -> None:
    """A gateway that trusts another CA refuses everyone: check 2 fails, and so does check 3."""
    other = pki.private_ca("Test another client CA")
    with tls_server(material, require_client_cert=True, client_ca_pem=pki.pem(other.cert)) as server:
        report = _checks(material, identity, alb, server.port)
    assert [ok for ok, _ in report.lines] == [True, False, False, True], report.render()
    text = _refusal_line(report)[1]
    assert "-> not proven: the request with the client certificate failed too" in text, text
    assert "without one: refused (TLS 1.3 alert certificate required)" in text, text


def test_the_refusal_is_asked_of_the_address_that_accepted_the_certificate(material: Material) -> None:
    """Not of the name again: the refusing server is where the accepted request went, while the
    target itself now points at a closed port."""
    anonymous = verify.tls_context(ca_pem=material.anchors_pem, identity=None)
    with tls_server(material, require_client_cert=True) as server, closed_port() as port:
        accepted = verify.Answer(status=418, peer=("127.0.0.1", server.port))
        ok, outcome, _ = verify.refusal_check(
            accepted, verify.Target(GATEWAY, 443, "127.0.0.1", port), "/status/418", anonymous, timeout=TIMEOUT
        )
    assert ok and outcome == "refused (TLS 1.3 alert certificate required)", outcome


def test_a_tls_1_2_handshake_failure_before_the_servers_hello_is_not_a_refusal(material: Material) -> None:
    """No shared cipher: the server's handshake_failure alert comes before any hello of its own."""
    with tls_server(material, require_client_cert=True, version=TLS12, ciphers="ECDHE-ECDSA-AES128-SHA") as server:
        probe = verify.request_without_certificate(
            verify.Target(GATEWAY, 443, "127.0.0.1", server.port), "/",
            verify.tls_context(ca_pem=material.anchors_pem, identity=None), timeout=TIMEOUT,
        )
    assert not probe.refused, probe
    assert probe.detail == "the TLS handshake failed before the server's hello: sslv3 alert handshake failure", probe


def test_an_empty_ca_bundle_never_falls_back_to_the_system_store() -> None:
    for empty in ("", "\n", "not a certificate\n"):
        with pytest.raises(verify.VerifyError, match="the CA bundle holds no PEM certificate"):
            verify.tls_context(ca_pem=empty, identity=None)


def test_the_server_hello_parser_reads_the_chosen_version() -> None:
    def hello(version: bytes, extensions: bytes = b"") -> bytes:
        body = version + bytes(32) + b"\x00" + b"\x13\x01" + b"\x00" + len(extensions).to_bytes(2, "big") + extensions
        message = b"\x02" + len(body).to_bytes(3, "big") + body
        return b"\x16\x03\x03" + len(message).to_bytes(2, "big") + message

    assert verify._server_hello_version(hello(b"\x03\x03")) == "TLS 1.2"
    assert verify._server_hello_version(hello(b"\x03\x03", b"\x00\x2b\x00\x02\x03\x04")) == "TLS 1.3"
    assert verify._server_hello_version(b"HTTP/1.1 400 Bad Request\r\n\r\n") is None
    assert verify._server_hello_version(b"\x15\x03\x03\x00\x02\x02\x28") is None  # an alert, no hello
    assert verify._server_hello_version(hello(b"\x03\x03")[:20]) is None  # truncated


# --- the command: exit statuses ----------------------------------------------------------------------


def _cli(args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.verify", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@dataclass(frozen=True)
class Files:
    """Good inputs for the command, in a private directory."""

    outputs: Path
    ca: Path
    cert: Path
    key: Path

    def args(self, alb_port: int, port: int | None = None, *, timeout: float = TIMEOUT) -> list[str]:
        """Good arguments: the ALB's host sent to ``alb_port``, the gateway's to ``port``."""
        routed = ["--connect-to", f"{ALB_HOST}:443:127.0.0.1:{alb_port}"]
        if port is not None:
            routed += ["--connect-to", f"{GATEWAY}:443:127.0.0.1:{port}"]
        return ["--outputs-json", str(self.outputs), "--ca-file", str(self.ca), "--client-cert", str(self.cert),
                "--client-key", str(self.key), "--timeout", f"{timeout:g}", *routed]


@pytest.fixture
def files(tmp: Path, material: Material) -> Files:
    made = Files(tmp / "outputs.json", tmp / "ca.pem", tmp / "client.crt", tmp / "client.key")
    made.outputs.write_text(json.dumps(OUTPUTS))
    made.ca.write_text(material.anchors_pem)
    made.cert.write_text(material.client.chain_pem)
    made.key.touch(0o600)
    made.key.write_text(material.client.key_pem)
    return made


@pytest.mark.parametrize(("demand", "status"), [(True, 0), (False, 1)])
def test_the_exit_status_is_0_when_every_check_passes_and_1_when_one_fails(
    material: Material, alb: int, files: Files, demand: bool, status: int
) -> None:
    with tls_server(material, require_client_cert=demand) as server:
        run = _cli(files.args(alb, server.port))
    assert run.returncode == status, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 4 and run.stderr == "", run.stdout + run.stderr
    assert [line.startswith("ok ") for line in lines] == [True, True, demand, True], run.stdout
    assert "PRIVATE KEY" not in run.stdout + run.stderr


def test_ctrl_c_exits_130_with_one_line(files: Files) -> None:
    with silent_server() as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.verify", *files.args(server.port, timeout=30)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert server.accepted.wait(20), "verify never connected"
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, stdout + stderr
    assert stderr == "verify: interrupted\n" and stdout == "", stdout + stderr


# --- the command: bad input --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A command line that must be refused: its arguments (``{tmp}`` and the good files substituted),
    files to write first, and the words the one line must contain (the argument or file at fault)."""

    args: tuple[str, ...]
    names: str
    writes: tuple[tuple[str, bytes], ...] = ()
    env: tuple[tuple[str, str], ...] = ()


GOOD_OUT = ("--outputs-json", "{outputs}")
GOOD_CA = ("--ca-file", "{ca}")
GOOD_ID = ("--client-cert", "{cert}", "--client-key", "{key}")
GOOD = (*GOOD_OUT, *GOOD_CA, *GOOD_ID)
_KEY = pki.key_pem(pki.new_key())
_CERT = pki.pem(pki.private_ca("Test stray CA").cert)
_ENCRYPTED_KEY = pki.key_pem(pki.new_key(), b"secret")
_ON_PATH = (("PATH", "{tmp}/bin"),)  # only the fakes: the test needs no kubectl or pulumi


def _fake(tool: str, body: str, payload: bytes | None = None) -> tuple[tuple[str, bytes], ...]:
    """A fake ``tool`` on PATH running ``body`` (``/bin/sh``); ``payload`` is what ``cat`` prints."""
    if payload is None:
        return ((f"bin/{tool}", f"#!/bin/sh\n{body}\n".encode()),)
    return (("payload", payload), (f"bin/{tool}", b'#!/bin/sh\nexec /bin/cat "{tmp}/payload"\n'))


def _secret(**data: str) -> bytes:
    return json.dumps({"data": data}).encode()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _outputs(value: object) -> tuple[tuple[str, bytes], ...]:
    return (("o.json", json.dumps(value).encode()),)


_O = ("--outputs-json", "{tmp}/o.json")
_APPS = {k: v for k, v in APPS_OUTPUTS.items() if k != "urls"}  # an apps stack's outputs but urls
_PRIVATE = {**OUTPUTS, "gatewayDomain": PRIVATE_GATEWAY, "gatewayCertificateNotAfter": "2030-01-01T00:00:00Z"}
_PROGRAM_CA = pki.private_ca("Test program CA")
_ALB_CLIENT = _PROGRAM_CA.issue_client(["alb.test"])


def _alb_certs_secret(**extra: str) -> bytes:
    """alb-certs with a good client certificate and ``extra`` keys (base64-encoded as given)."""
    return _secret(**{"tls.crt": _b64(_ALB_CLIENT.chain_pem), "tls.key": _b64(_ALB_CLIENT.key_pem), **extra})

BAD: dict[str, Bad] = {
    # the command line
    "unknown-option": Bad((*GOOD, "--bogus"), "unrecognized arguments: --bogus"),
    "option-without-value": Bad((*GOOD, "--timeout"), "argument --timeout: expected one argument"),
    "timeout-zero": Bad((*GOOD, "--timeout", "0"), "argument --timeout"),
    "timeout-negative": Bad((*GOOD, "--timeout=-1"), "argument --timeout"),
    "timeout-too-long": Bad((*GOOD, "--timeout", "601"), "argument --timeout"),
    "timeout-nan": Bad((*GOOD, "--timeout", "nan"), "argument --timeout"),
    "timeout-inf": Bad((*GOOD, "--timeout", "inf"), "argument --timeout"),
    "timeout-words": Bad((*GOOD, "--timeout", "ten"), "argument --timeout"),
    "expect-low": Bad((*GOOD, "--expect", "99"), "argument --expect"),
    "expect-high": Bad((*GOOD, "--expect", "600"), "argument --expect"),
    "expect-words": Bad((*GOOD, "--expect", "teapot"), "argument --expect"),
    "path-relative": Bad((*GOOD, "--path", "status/418"), "argument --path"),
    "path-space": Bad((*GOOD, "--path", "/status/ 418"), "argument --path"),
    "path-newline": Bad((*GOOD, "--path", "/status/418\nX: y"), "argument --path"),
    "stack-empty": Bad(("--stack", ""), "argument --stack"),
    "stack-space": Bad(("--stack", "my stack"), "argument --stack"),
    "kube-context-empty": Bad(("--kube-context", "", *GOOD_OUT), "argument --kube-context"),
    "connect-to-shape": Bad((*GOOD, "--connect-to", f"{GATEWAY}:443:127.0.0.1"), "argument --connect-to"),
    "connect-to-port-0": Bad((*GOOD, "--connect-to", f"{GATEWAY}:443:127.0.0.1:0"), "argument --connect-to"),
    "connect-to-port-high": Bad((*GOOD, "--connect-to", f"{GATEWAY}:443:127.0.0.1:65536"), "argument --connect-to"),
    "connect-to-port-not-443": Bad((*GOOD, "--connect-to", f"{GATEWAY}:8443:127.0.0.1:8443"), "argument --connect-to"),
    "connect-to-address": Bad((*GOOD, "--connect-to", f"{GATEWAY}:443:not an address:8443"), "argument --connect-to"),
    "connect-to-host": Bad((*GOOD, "--connect-to", "https://x:443:127.0.0.1:8443"), "argument --connect-to"),
    "connect-to-other-host": Bad((*GOOD, "--connect-to", "other.test:443:127.0.0.1:8443"),
                                 "argument --connect-to: host other.test"),
    "connect-to-twice": Bad((*GOOD, "--connect-to", f"{GATEWAY}:443:127.0.0.1:8443", "--connect-to", f"{GATEWAY}:443:[::1]:8443"),
                            f"argument --connect-to: host {GATEWAY}"),
    "client-cert-alone": Bad((*GOOD_OUT, "--client-cert", "{cert}"), "--client-cert and --client-key"),
    # --outputs-json
    "outputs-missing": Bad(("--outputs-json", "{tmp}/nothing.json"), "--outputs-json {tmp}/nothing.json: cannot be read: no such file"),
    "outputs-directory": Bad(("--outputs-json", "{tmp}"), "--outputs-json {tmp}: cannot be read: it is a directory"),
    "outputs-empty": Bad(_O, "--outputs-json {tmp}/o.json: is empty", (("o.json", b""),)),
    "outputs-list": Bad(_O, "--outputs-json {tmp}/o.json: holds a JSON array", _outputs([OUTPUTS])),
    "outputs-string": Bad(_O, "--outputs-json {tmp}/o.json: holds a JSON string", _outputs("albHost")),
    "outputs-broken-json": Bad(_O, "--outputs-json {tmp}/o.json: is not JSON", (("o.json", b'{"albHost": '),)),
    "outputs-not-utf8": Bad(_O, "--outputs-json {tmp}/o.json: is not UTF-8", (("o.json", b'{"albHost": "\xff"}'),)),
    "outputs-no-alb-host": Bad(_O, "--outputs-json {tmp}/o.json: stack output albHost is missing", _outputs({"gatewayDomain": GATEWAY})),
    "outputs-no-gateway": Bad(_O, "--outputs-json {tmp}/o.json: stack output gatewayDomain is missing", _outputs({"albHost": ALB_HOST})),
    "outputs-alb-host-number": Bad(_O, "--outputs-json {tmp}/o.json: stack output albHost must be a string",
                                   _outputs({**OUTPUTS, "albHost": 42})),
    "outputs-alb-host-url": Bad(_O, "--outputs-json {tmp}/o.json: stack output albHost is not a DNS name",
                                _outputs({**OUTPUTS, "albHost": f"https://{ALB_HOST}/"})),
    "outputs-secret-ref": Bad(_O, "--outputs-json {tmp}/o.json: stack output albCertsSecret",
                              _outputs({**OUTPUTS, "albCertsSecret": "alb certs"})),
    # --ca-file
    "ca-missing": Bad((*GOOD_OUT, "--ca-file", "{tmp}/none.pem", *GOOD_ID), "--ca-file {tmp}/none.pem: cannot be read: no such file"),
    "ca-directory": Bad((*GOOD_OUT, "--ca-file", "{tmp}", *GOOD_ID), "--ca-file {tmp}: cannot be read: it is a directory"),
    "ca-zero-bytes": Bad((*GOOD_OUT, "--ca-file", "{tmp}/e.pem", *GOOD_ID), "--ca-file {tmp}/e.pem is empty", (("e.pem", b""),)),
    "ca-no-certificate": Bad((*GOOD_OUT, "--ca-file", "{tmp}/t.pem", *GOOD_ID), "--ca-file {tmp}/t.pem contains no PEM certificate",
                             (("t.pem", b"# my CAs\n"),)),
    "ca-a-key": Bad((*GOOD_OUT, "--ca-file", "{tmp}/k.pem", *GOOD_ID), "--ca-file {tmp}/k.pem holds a private key",
                    (("k.pem", _KEY.encode()),)),
    "ca-binary": Bad((*GOOD_OUT, "--ca-file", "{tmp}/b.der", *GOOD_ID), "--ca-file {tmp}/b.der is binary",
                     (("b.der", bytes(range(256))),)),
    # --client-cert / --client-key
    "cert-missing": Bad((*GOOD_OUT, *GOOD_CA, "--client-cert", "{tmp}/none.crt", "--client-key", "{key}"),
                        "--client-cert {tmp}/none.crt: cannot be read: no such file"),
    "cert-directory": Bad((*GOOD_OUT, *GOOD_CA, "--client-cert", "{tmp}", "--client-key", "{key}"), "--client-cert {tmp}: cannot be read: it is a directory"),
    "cert-empty": Bad((*GOOD_OUT, *GOOD_CA, "--client-cert", "{tmp}/e.crt", "--client-key", "{key}"), "--client-cert {tmp}/e.crt is empty",
                      (("e.crt", b""),)),
    "cert-is-a-key": Bad((*GOOD_OUT, *GOOD_CA, "--client-cert", "{key}", "--client-key", "{key}"), "--client-cert {key} holds a private key"),
    "key-missing": Bad((*GOOD_OUT, *GOOD_CA, "--client-cert", "{cert}", "--client-key", "{tmp}/none.key"),
                       "--client-key {tmp}/none.key: cannot be read: no such file"),
    "key-is-a-cert": Bad((*GOOD_OUT, *GOOD_CA, "--client-cert", "{cert}", "--client-key", "{cert}"), "--client-key {cert} holds a certificate"),
    "key-encrypted": Bad((*GOOD_OUT, *GOOD_CA, "--client-cert", "{cert}", "--client-key", "{tmp}/x.key"),
                         "--client-key {tmp}/x.key: is an encrypted key", (("x.key", _ENCRYPTED_KEY.encode()),)),
    "key-of-another-cert": Bad((*GOOD_OUT, *GOOD_CA, "--client-cert", "{cert}", "--client-key", "{tmp}/o.key"),
                               "--client-key {tmp}/o.key does not belong to the certificate in --client-cert {cert}",
                               (("o.key", _KEY.encode()),)),
    # the cluster (kubectl) and the stack (pulumi)
    "kubectl-missing": Bad((*GOOD_OUT, *GOOD_CA), "kubectl not found", env=_ON_PATH),
    "kubectl-fails": Bad((*GOOD_OUT, *GOOD_CA), "kubectl get secret istio-system/alb-certs failed: error: line one line two",
                         _fake("kubectl", "printf 'error: line one\\nline two\\n' >&2; exit 1"), _ON_PATH),
    "kubectl-list": Bad((*GOOD_OUT, *GOOD_CA), "secret istio-system/alb-certs has no client certificate",
                        _fake("kubectl", "", b"[]"), _ON_PATH),
    "kubectl-not-json": Bad((*GOOD_OUT, *GOOD_CA), "kubectl get secret istio-system/alb-certs did not print JSON",
                            _fake("kubectl", "", b"Error"), _ON_PATH),
    "kubectl-not-base64": Bad((*GOOD_OUT, *GOOD_CA), "secret istio-system/alb-certs key tls.crt is not base64-encoded",
                              _fake("kubectl", "", _secret(**{"tls.crt": "!!", "tls.key": "!!"})), _ON_PATH),
    "kubectl-key-is-a-cert": Bad((*GOOD_OUT, *GOOD_CA), "secret istio-system/alb-certs key tls.key holds a certificate",
                                 _fake("kubectl", "", _secret(**{"tls.crt": _b64(_CERT), "tls.key": _b64(_CERT)})), _ON_PATH),
    "kubectl-cannot-run": Bad((*GOOD_OUT, *GOOD_CA), "kubectl get secret istio-system/alb-certs cannot run: No such file or directory",
                              (("bin/kubectl", b"#!/nonexistent/interpreter\n"),), _ON_PATH),
    "pulumi-missing": Bad((), "pulumi not found", env=_ON_PATH),
    "pulumi-fails": Bad(("--stack", "prod"), "pulumi stack output --json --stack prod failed: error: no stack named prod",
                        _fake("pulumi", "printf 'error: no stack named prod\\n' >&2; exit 255"), _ON_PATH),
    "pulumi-list": Bad((), "pulumi stack output --json --stack dev: holds a JSON array", _fake("pulumi", "", b"[1]"), _ON_PATH),
    "pulumi-no-outputs": Bad((), "stack output albHost is missing: has pulumi up completed for stack dev?",
                             _fake("pulumi", "", b"{}"), _ON_PATH),
    # an apps stack (urls, no albHost)
    "apps-without-urls": Bad(_O, "--outputs-json {tmp}/o.json: stack output albHost is missing, and so is urls", _outputs(_APPS)),
    "apps-urls-null": Bad(_O, "stack output albHost is missing, and so is urls", _outputs({**_APPS, "urls": None})),
    "apps-pulumi-without-urls": Bad((), "stack output albHost is missing, and so is urls: the httpbin sample has albHost, apps have urls (stack dev)",
                                    _fake("pulumi", "", json.dumps(_APPS).encode()), _ON_PATH),
    "apps-urls-string": Bad(_O, "--outputs-json {tmp}/o.json: stack output urls must be a list of https:// URLs; got a JSON string",
                            _outputs({**_APPS, "urls": f"https://{WEB}"})),
    "apps-urls-object": Bad(_O, "stack output urls must be a list of https:// URLs; got a JSON object",
                            _outputs({**_APPS, "urls": {"web": f"https://{WEB}"}})),
    "apps-urls-http": Bad(_O, f"--outputs-json {{tmp}}/o.json: stack output urls item 2 is not an https://<host>[/<path>] URL: 'http://{API}/orders'",
                          _outputs({**_APPS, "urls": [f"https://{WEB}", f"http://{API}/orders"]})),
    "apps-urls-number": Bad(_O, "stack output urls item 1 is not an https://<host>[/<path>] URL: a JSON number", _outputs({**_APPS, "urls": [443]})),
    "apps-urls-port": Bad(_O, "stack output urls item 1 is not", _outputs({**_APPS, "urls": [f"https://{WEB}:8443/"]})),
    "apps-urls-space": Bad(_O, "stack output urls item 1 is not", _outputs({**_APPS, "urls": [f"https://{WEB}/a b"]})),
    "apps-urls-host": Bad(_O, "stack output urls item 1 is not", _outputs({**_APPS, "urls": ["https://-web.alb.test/"]})),
    "apps-urls-bare-host": Bad(_O, "stack output urls item 1 is not", _outputs({**_APPS, "urls": [WEB]})),
    "apps-path": Bad((*_O, *GOOD_CA, *GOOD_ID, "--path", "/status/418"), "argument --path: applies to the httpbin sample's albHost",
                     _outputs(APPS_OUTPUTS)),
    "apps-connect-to-other-host": Bad((*_O, *GOOD_CA, *GOOD_ID, "--connect-to", f"{ALB_HOST}:443:127.0.0.1:8443"),
                                      f"argument --connect-to: host {ALB_HOST} is neither a host of urls ({WEB}, {API}) nor gatewayDomain ({GATEWAY})",
                                      _outputs(APPS_OUTPUTS)),
    # a private-ca stack (gatewayCertificateNotAfter)
    "private-ca-not-after-words": Bad(_O, "--outputs-json {tmp}/o.json: stack output gatewayCertificateNotAfter is not an RFC 3339 time: 'next year'",
                                      _outputs({**_PRIVATE, "gatewayCertificateNotAfter": "next year"})),
    "private-ca-not-after-number": Bad(_O, "stack output gatewayCertificateNotAfter is not an RFC 3339 time: a JSON number",
                                       _outputs({**_PRIVATE, "gatewayCertificateNotAfter": 1893456000})),
    "private-ca-not-after-no-zone": Bad(_O, "stack output gatewayCertificateNotAfter is not an RFC 3339 time",
                                        _outputs({**_PRIVATE, "gatewayCertificateNotAfter": "2030-01-01T00:00:00"})),
    "private-ca-files-without-gateway-ca": Bad((*_O, *GOOD_CA, *GOOD_ID), "pass --gateway-ca-file with ca.crt of alb-certs", _outputs(_PRIVATE)),
    "private-ca-no-ca-crt": Bad((*_O, *GOOD_CA), "secret istio-system/alb-certs has no ca.crt: with gatewayCertSource=private-ca",
                                (*_outputs(_PRIVATE), *_fake("kubectl", "", _alb_certs_secret())), _ON_PATH),
    "private-ca-ca-crt-not-base64": Bad((*_O, *GOOD_CA), "secret istio-system/alb-certs key ca.crt is not base64-encoded",
                                        (*_outputs(_PRIVATE), *_fake("kubectl", "", _alb_certs_secret(**{"ca.crt": "!!"}))), _ON_PATH),
    "private-ca-ca-crt-a-key": Bad((*_O, *GOOD_CA), "secret istio-system/alb-certs key ca.crt holds a private key",
                                   (*_outputs(_PRIVATE), *_fake("kubectl", "", _alb_certs_secret(**{"ca.crt": _b64(_KEY)}))), _ON_PATH),
    "gateway-ca-missing": Bad((*GOOD, "--gateway-ca-file", "{tmp}/none.pem"), "--gateway-ca-file {tmp}/none.pem: cannot be read: no such file"),
    "gateway-ca-a-key": Bad((*GOOD, "--gateway-ca-file", "{tmp}/k.pem"), "--gateway-ca-file {tmp}/k.pem holds a private key",
                            (("k.pem", _KEY.encode()),)),
}


def _fill(text: str, tmp: Path, files: Files) -> str:
    return text.format(tmp=tmp, outputs=files.outputs, ca=files.ca, cert=files.cert, key=files.key)


def _run_bad(case: Bad, tmp: Path, files: Files) -> subprocess.CompletedProcess[str]:
    (tmp / "bin").mkdir(mode=0o700, exist_ok=True)
    for name, data in case.writes:
        target = tmp / name
        if name.startswith("bin/"):
            target.write_text(_fill(data.decode(), tmp, files))
            target.chmod(0o700)
        else:
            target.write_bytes(data)
    env = {key: _fill(value, tmp, files) for key, value in case.env}
    return _cli([_fill(a, tmp, files) for a in case.args], env=env)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(name: str, tmp: Path, files: Files) -> None:
    """Exit 2, nothing on stdout, one documented line on stderr naming the argument or file."""
    case = BAD[name]
    run = _run_bad(case, tmp, files)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout == "", run.stdout
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and run.stderr.endswith("\n"), run.stderr
    assert lines[0].startswith("verify: ") and _fill(case.names, tmp, files) in lines[0], (case.names, lines[0])
    assert "PRIVATE KEY" not in run.stderr
    assert documented.undocumented([(name, lines[0].removeprefix("verify: "))]) == []


def test_every_report_line_is_documented(material: Material, identity: verify.ClientIdentity, alb: int) -> None:
    """docs/troubleshooting.md lists each check line (``…`` for what varies), as it lists messages."""
    records: list[tuple[str, str]] = []
    for version in (TLS13, TLS12):
        for demand in (True, False):
            with tls_server(material, require_client_cert=demand, version=version) as server:
                report = _checks(material, identity, alb, server.port)
            records += [(f"{version.name}-{'mtls' if demand else 'open'}", line) for line in report.render().splitlines()]
    other = pki.private_ca("Test another client CA")
    with tls_server(material, require_client_cert=True, client_ca_pem=pki.pem(other.cert)) as server:
        records += [("other-ca", line) for line in _checks(material, identity, alb, server.port).render().splitlines()]
    with plain_http_server() as server:
        records += [("plain-http", line) for line in _checks(material, identity, alb, server.port).render().splitlines()]
    with closed_port() as port:
        records += [("closed", line) for line in _checks(material, identity, alb, port).render().splitlines()]
    assert documented.undocumented(records) == []


def test_a_broken_stdout_is_one_line_and_exit_2(material: Material, alb: int, files: Files) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # writing to the other end is a broken pipe
    try:
        with tls_server(material, require_client_cert=True) as server:
            run = subprocess.run(
                [sys.executable, "-m", "tools.verify", *files.args(alb, server.port)],
                cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
            )
    finally:
        os.close(write_end)
    assert run.returncode == 2, run.stderr
    assert run.stderr == "verify: cannot write the report to standard output: Broken pipe\n", run.stderr


# --- an apps stack: each URL through the ALB, the gateway with the first app host ----------------------


def _app_status(request: Request) -> int:
    return APP_STATUS[request.path]


def _apps_checks(material: Material, identity: verify.ClientIdentity, alb_port: int, gateway_port: int, *,
                 expect: int | None = None) -> verify.Report:
    return verify.run_checks(
        APPS_OUTPUTS, identity, ca_pem=material.anchors_pem, expect=expect, timeout=TIMEOUT,
        connect_to=[verify.Target(WEB, 443, "127.0.0.1", alb_port), verify.Target(API, 443, "127.0.0.1", alb_port),
                    verify.Target(GATEWAY, 443, "127.0.0.1", gateway_port)],
    )


def test_an_apps_stack_checks_every_url_and_a_proxy_failure_fails(material: Material, files: Files, tmp: Path) -> None:
    """Each URL as listed: the app's 200 and 404 pass, 503 (what Envoy answers for a Service
    without endpoints) is a FAIL and exit 1; the gateway is asked with SNI gatewayDomain and the
    first app host as Host, as the ALB asks it, and still has to refuse a client without a certificate."""
    outputs = tmp / "apps.json"
    outputs.write_text(json.dumps(APPS_OUTPUTS))
    with tls_server(material, require_client_cert=False, status=_app_status) as alb, \
            tls_server(material, require_client_cert=True) as gateway:
        run = _cli(["--outputs-json", str(outputs), "--ca-file", str(files.ca), "--client-cert", str(files.cert),
                    "--client-key", str(files.key), "--timeout", f"{TIMEOUT:g}",
                    "--connect-to", f"{WEB}:443:127.0.0.1:{alb.port}", "--connect-to", f"{API}:443:127.0.0.1:{alb.port}",
                    "--connect-to", f"{GATEWAY}:443:127.0.0.1:{gateway.port}"])
    assert run.returncode == 1 and run.stderr == "", run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[:5] == [
        f"ok   ALB       https://{WEB} -> 200 {APP_WANT}",
        f"ok   ALB       https://{API}/orders -> 404 {APP_WANT}",
        f"FAIL ALB       https://{API}/payments -> 503 {APP_WANT}",
        f"ok   gateway   https://{GATEWAY}/ (Host {WEB}) with the ALB client certificate -> 418 {APP_WANT}",
        f"ok   gateway   https://{GATEWAY}/ (Host {WEB}) without a client certificate -> refused (TLS 1.3 alert certificate required) (want refused)",
    ], run.stdout
    assert len(lines) == 6 and lines[5].startswith("ok   gateway   certificate expires "), run.stdout
    assert alb.requests == [Request(WEB, WEB, "/"), Request(API, API, "/orders"), Request(API, API, "/payments")]
    assert gateway.requests == [Request(GATEWAY, WEB, "/")]  # the request without a certificate never got that far
    assert any("PEER_DID_NOT_RETURN_A_CERTIFICATE" in e for e in gateway.errors), gateway.errors


@pytest.mark.parametrize(("statuses", "expect", "verdicts"), [
    ({"/": 200, "/orders": 401, "/payments": 302}, None, [True, True, True, True, True, True]),
    ({"/": 200, "/orders": 500, "/payments": 504}, None, [True, False, False, True, True, True]),
    ({"/": 200, "/orders": 502, "/payments": 200}, None, [True, False, True, True, True, True]),
    # --expect pins one status for every URL and the gateway (whose stand-in answers 418)
    ({"/": 200, "/orders": 200, "/payments": 404}, 200, [True, True, False, False, True, True]),
    ({"/": 418, "/orders": 418, "/payments": 418}, 418, [True, True, True, True, True, True]),
])
def test_an_app_url_passes_on_the_apps_answer_or_the_pinned_status(
    material: Material, identity: verify.ClientIdentity, statuses: dict[str, int], expect: int | None, verdicts: list[bool]
) -> None:
    with tls_server(material, require_client_cert=False, status=lambda r: statuses[r.path]) as alb, \
            tls_server(material, require_client_cert=True) as gateway:
        report = _apps_checks(material, identity, alb.port, gateway.port, expect=expect)
    assert [ok for ok, _ in report.lines] == verdicts, report.render()
    if expect is not None:
        assert all(f"(want {expect})" in text for _, text in report.lines[:4]), report.render()


def test_an_apps_gateway_that_lets_clients_in_without_a_certificate_fails(
    material: Material, identity: verify.ClientIdentity
) -> None:
    with tls_server(material, require_client_cert=False, status=_app_status) as alb, \
            tls_server(material, require_client_cert=False) as gateway:
        report = _apps_checks(material, identity, alb.port, gateway.port)
    ok, text = report.lines[4]
    assert not ok and text.endswith(f"(Host {WEB}) without a client certificate -> not refused: answered 418 (want refused)"), text
    assert gateway.requests == [Request(GATEWAY, WEB, "/"), Request(GATEWAY, WEB, "/")]


def test_an_apps_url_that_cannot_be_reached_fails(material: Material, identity: verify.ClientIdentity) -> None:
    with closed_port() as port, tls_server(material, require_client_cert=True) as gateway:
        report = verify.run_checks(
            APPS_OUTPUTS, identity, ca_pem=material.anchors_pem, timeout=TIMEOUT,
            connect_to=[verify.Target(WEB, 443, "127.0.0.1", port), verify.Target(API, 443, "127.0.0.1", port),
                        verify.Target(GATEWAY, 443, "127.0.0.1", gateway.port)],
        )
    assert [ok for ok, _ in report.lines] == [False, False, False, True, True, True], report.render()
    assert f"-> refused (cannot connect to 127.0.0.1:{port}" in report.lines[0][1], report.render()


# --- a private-ca stack: the gateway verified against the program's CA from alb-certs ------------------


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def private_gateway(material: Material) -> Material:
    """The gateway stand-in's material with private-ca: its certificate from the program's CA (the
    one that issued the ALB's client certificate), for the Service's cluster DNS names."""
    return dataclasses.replace(material, server=material.client_ca.issue_leaf(PRIVATE_NAMES))


def _private_outputs(gateway_material: Material, *, shift: dt.timedelta = dt.timedelta()) -> dict[str, str]:
    return {"albHost": ALB_HOST, "gatewayDomain": PRIVATE_GATEWAY, "albCertsSecret": "istio-system/alb-certs",
            "gatewaySecret": "alb-mtls-gateway-cert", "appNamespace": "httptools",
            "gatewayCertificateNotAfter": _rfc3339(gateway_material.server.cert.not_valid_after_utc + shift)}


def _fake_kubectl(tmp: Path, data: dict[str, str]) -> dict[str, str]:
    """A kubectl on PATH that prints alb-certs with ``data`` (values base64-encoded); the environment to run with."""
    (tmp / "bin").mkdir(mode=0o700, exist_ok=True)
    (tmp / "secret.json").write_text(json.dumps({"data": {k: _b64(v) for k, v in data.items()}}))
    kubectl = tmp / "bin" / "kubectl"
    kubectl.write_text(f'#!/bin/sh\nexec /bin/cat "{tmp}/secret.json"\n')
    kubectl.chmod(0o700)
    return {"PATH": str(tmp / "bin")}


def _alb_certs(material: Material, flavor: str = "nginx", ca_pem: str | None = None) -> dict[str, str]:
    """``alb-certs`` as the program writes it (components/specs.py alb_certs_data): the CA is the program's."""
    ca = ca_pem if ca_pem is not None else pki.pem(material.client_ca.cert)
    if flavor == "ibm-legacy":
        return {"client.crt": material.client.chain_pem, "client.key": material.client.key_pem, "trusted.crt": ca}
    return {"tls.crt": material.client.chain_pem, "tls.key": material.client.key_pem, "ca.crt": ca}


@pytest.mark.parametrize("source", ["nginx alb-certs", "ibm-legacy alb-certs", "--gateway-ca-file"])
def test_a_private_ca_gateway_is_verified_against_the_programs_ca(
    material: Material, private_gateway: Material, alb: int, files: Files, tmp: Path, source: str
) -> None:
    """The gateway's certificate chains only to the program's CA (ca.crt of alb-certs, trusted.crt
    with ibm-legacy, or --gateway-ca-file), the ALB's only to --ca-file: all four checks pass."""
    outputs = tmp / "private.json"
    outputs.write_text(json.dumps(_private_outputs(private_gateway)))
    args = ["--outputs-json", str(outputs), "--ca-file", str(files.ca), "--timeout", f"{TIMEOUT:g}",
            "--connect-to", f"{ALB_HOST}:443:127.0.0.1:{alb}"]
    env = None
    if source == "--gateway-ca-file":
        (tmp / "program-ca.pem").write_text(pki.pem(material.client_ca.cert))
        args += ["--client-cert", str(files.cert), "--client-key", str(files.key), "--gateway-ca-file", str(tmp / "program-ca.pem")]
    else:
        env = _fake_kubectl(tmp, _alb_certs(material, source.split()[0]))
    with tls_server(private_gateway, require_client_cert=True) as gateway:
        run = _cli([*args, "--connect-to", f"{PRIVATE_GATEWAY}:443:127.0.0.1:{gateway.port}"], env=env)
    assert run.returncode == 0 and run.stderr == "", run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 4 and all(line.startswith("ok   ") for line in lines), run.stdout
    assert lines[1] == f"ok   gateway   https://{PRIVATE_GATEWAY}/status/418 with the ALB client certificate -> 418 (want 418)"
    expires = private_gateway.server.cert.not_valid_after_utc
    assert lines[3].startswith(f"ok   gateway   certificate expires {expires:%Y-%m-%d %H:%M} UTC ("), lines[3]
    assert gateway.requests == [Request(PRIVATE_GATEWAY, PRIVATE_GATEWAY, "/status/418")]
    assert "PRIVATE KEY" not in run.stdout + run.stderr


@pytest.mark.parametrize("issuer", ["another private CA", "the ALB's CA (--ca-file)"])
def test_a_private_ca_gateway_whose_certificate_is_not_the_programs_fails(
    material: Material, alb: int, files: Files, tmp: Path, issuer: str
) -> None:
    """A gateway certificate from another CA does not verify — not even one that --ca-file trusts,
    which would pass if the gateway were verified like the ALB."""
    other = pki.private_ca("Test another program CA") if issuer == "another private CA" else material.le
    impostor = dataclasses.replace(material, server=other.issue_leaf(PRIVATE_NAMES))
    outputs = tmp / "private.json"
    outputs.write_text(json.dumps(_private_outputs(impostor)))
    env = _fake_kubectl(tmp, _alb_certs(material))
    with tls_server(impostor, require_client_cert=True) as gateway:
        run = _cli(["--outputs-json", str(outputs), "--ca-file", str(files.ca), "--timeout", f"{TIMEOUT:g}",
                    "--connect-to", f"{ALB_HOST}:443:127.0.0.1:{alb}",
                    "--connect-to", f"{PRIVATE_GATEWAY}:443:127.0.0.1:{gateway.port}"], env=env)
    assert run.returncode == 1 and run.stderr == "", run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert [line[:4] for line in lines] == ["ok  ", "FAIL", "FAIL", "FAIL"], run.stdout
    assert "with the ALB client certificate -> refused (TLS handshake failed: certificate verify failed: unable to get local issuer certificate)" in lines[1], lines[1]
    assert "the gateway's certificate does not verify" in lines[2], lines[2]
    assert lines[3] == "FAIL gateway   certificate expiry: unknown (no TLS session with the gateway)", lines[3]
    assert gateway.requests == []


def test_a_private_ca_gateway_without_connect_to_says_how_to_reach_it(
    material: Material, alb: int, files: Files, tmp: Path, private_gateway: Material
) -> None:
    """The cluster-internal name does not resolve here: one FAIL line with the port-forward and
    the --connect-to to add, instead of the gateway's checks; exit 1."""
    if verify._resolves(PRIVATE_GATEWAY):
        pytest.skip(f"{PRIVATE_GATEWAY} resolves on this machine (inside a cluster?)")
    outputs = tmp / "private.json"
    outputs.write_text(json.dumps(_private_outputs(private_gateway)))
    run = _cli(["--outputs-json", str(outputs), "--ca-file", str(files.ca), "--timeout", f"{TIMEOUT:g}",
                "--connect-to", f"{ALB_HOST}:443:127.0.0.1:{alb}"], env=_fake_kubectl(tmp, _alb_certs(material)))
    assert run.returncode == 1 and run.stderr == "", run.stdout + run.stderr
    assert run.stdout.splitlines() == [
        f"ok   ALB       https://{ALB_HOST}/status/418 -> 418 (want 418)",
        f"FAIL gateway   not checked: {PRIVATE_GATEWAY} (gatewayCertSource=private-ca) is a cluster-internal name that does "
        "not resolve here: run kubectl -n istio-system port-forward svc/istio-ingressgateway 8443:443 and pass "
        f"--connect-to {PRIVATE_GATEWAY}:443:127.0.0.1:8443 (or :443:<its load-balancer address>:443)",
    ], run.stdout


def test_an_nlb_dns_gateway_is_not_taken_for_private_ca(material: Material, identity: verify.ClientIdentity, alb: int) -> None:
    """Without gatewayCertificateNotAfter an unresolvable name is the nlb-dns failure it always was."""
    report = _checks(material, identity, alb, None, gateway="gateway.verify-test.invalid")
    assert "port-forward" not in report.render() and len(report.lines) == 4, report.render()


def _private_checks(material: Material, identity: verify.ClientIdentity, alb_port: int, gateway_port: int,
                    outputs: dict[str, str], *, now: dt.datetime | None = None) -> verify.Report:
    return verify.run_checks(
        outputs, identity, ca_pem=material.anchors_pem, gateway_ca_pem=pki.pem(material.client_ca.cert), timeout=TIMEOUT,
        now=now, connect_to=[verify.Target(ALB_HOST, 443, "127.0.0.1", alb_port),
                             verify.Target(PRIVATE_GATEWAY, 443, "127.0.0.1", gateway_port)],
    )


def test_the_expiry_line_names_who_renews(
    material: Material, private_gateway: Material, identity: verify.ClientIdentity, alb: int
) -> None:
    """Five days before expiry: pulumi up renews a private-ca certificate, IKS an nlb-dns one."""
    soon = private_gateway.server.cert.not_valid_after_utc - dt.timedelta(days=5)
    with tls_server(private_gateway, require_client_cert=True) as gateway:
        private = _private_checks(material, identity, alb, gateway.port, _private_outputs(private_gateway), now=soon)
    ok, text = private.lines[3]
    assert ok and text.endswith("(5 days) - renewal due: pulumi up renews private-ca gateway certificates within gatewayCertEarlyRenewalHours of expiry"), text
    soon = material.server.cert.not_valid_after_utc - dt.timedelta(days=5)
    with tls_server(material, require_client_cert=True) as gateway:
        report = verify.run_checks(
            OUTPUTS, identity, ca_pem=material.anchors_pem, timeout=TIMEOUT, now=soon,
            connect_to=[verify.Target(ALB_HOST, 443, "127.0.0.1", alb), verify.Target(GATEWAY, 443, "127.0.0.1", gateway.port)],
        )
    ok, text = report.lines[3]
    assert ok and text.endswith("(5 days) - renewal due: IKS renews nlb-dns certificates about 30 days before expiry"), text


def test_a_private_ca_gateway_serving_another_certificate_than_the_stacks_fails(
    material: Material, private_gateway: Material, identity: verify.ClientIdentity, alb: int
) -> None:
    """Chained to the program's CA but not the one the stack issued (gatewayCertificateNotAfter):
    the gateway has not loaded the stack's certificate, or --connect-to reaches another gateway."""
    outputs = _private_outputs(private_gateway, shift=dt.timedelta(days=30))
    with tls_server(private_gateway, require_client_cert=True) as gateway:
        report = _private_checks(material, identity, alb, gateway.port, outputs)
    assert [ok for ok, _ in report.lines] == [True, True, True, False], report.render()
    assert f", not at gatewayCertificateNotAfter {outputs['gatewayCertificateNotAfter'].replace('T', ' ')[:-1]} UTC: the gateway serves another certificate than the stack issued" in report.lines[3][1]


def test_every_apps_and_private_ca_line_is_documented(
    material: Material, private_gateway: Material, identity: verify.ClientIdentity, alb: int
) -> None:
    records: list[tuple[str, str]] = []
    for require in (True, False):
        with tls_server(material, require_client_cert=False, status=_app_status) as app_alb, \
                tls_server(material, require_client_cert=require) as gateway:
            report = _apps_checks(material, identity, app_alb.port, gateway.port)
        records += [(f"apps-{require}", line) for line in report.render().splitlines()]
    soon = private_gateway.server.cert.not_valid_after_utc - dt.timedelta(days=5)
    with tls_server(private_gateway, require_client_cert=True) as gateway:
        for name, outputs in (("private-ca", _private_outputs(private_gateway)),
                              ("private-ca-other", _private_outputs(private_gateway, shift=dt.timedelta(days=1)))):
            report = _private_checks(material, identity, alb, gateway.port, outputs, now=soon)
            records += [(name, line) for line in report.render().splitlines()]
    if not verify._resolves(PRIVATE_GATEWAY):  # no --connect-to for the gateway
        report = verify.run_checks(_private_outputs(private_gateway), identity, ca_pem=material.anchors_pem, timeout=TIMEOUT,
                                   connect_to=[verify.Target(ALB_HOST, 443, "127.0.0.1", alb)])
        records += [("private-ca-unresolved", line) for line in report.render().splitlines()]
    assert documented.undocumented(records) == []
