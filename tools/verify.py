"""``python -m tools.verify --stack dev``: the recipe's two curls, against a live stack.

1. ``https://httpbin.<albDomain>/status/418`` through the ALB answers 418;
2. ``https://<gatewayDomain>/status/418`` straight to the gateway answers 418 to a client
   holding the ALB's client certificate ...
3. ... and refuses a client without one;
4. and when the gateway's certificate expires.

The stack's outputs come from ``pulumi stack output --json`` (or ``--outputs-json FILE``);
the client certificate and key from the cluster's ``alb-certs`` secret through ``kubectl``,
as the recipe did, or from files the user names.  Key material stays in memory: Python's
``ssl`` reads it from an anonymous in-memory file (``memfd``), never from disk.

One line per check, exit status 1 when any check fails, 2 when the checks cannot run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509

from components import specs

DEFAULT_PATH = "/status/418"
DEFAULT_STATUS = 418
EXPIRY_WARNING_DAYS = 14
#: Which keys of ``alb-certs`` hold the client certificate, per ALB flavour.
CLIENT_KEYS = (("tls.crt", "tls.key"), ("client.crt", "client.key"))


class VerifyError(RuntimeError):
    """The checks cannot run (no outputs, no client certificate, ...): exit status 2."""


@dataclass(frozen=True)
class ClientIdentity:
    """The ALB's client certificate and key, as PEM text held in memory only."""

    cert_pem: str
    key_pem: str = field(repr=False)


@dataclass(frozen=True)
class Target:
    """Where to connect for a host: ``--connect-to host:443:addr:port`` as curl has it."""

    host: str
    port: int = 443
    address: str | None = None
    address_port: int | None = None

    @property
    def connect(self) -> tuple[str, int]:
        return (self.address or self.host, self.address_port or self.port)


@dataclass(frozen=True)
class Answer:
    """What one HTTPS request got: a status, or the TLS/connection error that stopped it."""

    status: int | None = None
    body: bytes = b""
    error: str | None = None
    peer_not_after: dt.datetime | None = None


@dataclass
class Report:
    """Check results in order; printed one line each."""

    lines: list[tuple[bool, str]] = field(default_factory=list)

    def add(self, ok: bool, text: str) -> None:
        self.lines.append((ok, text))

    @property
    def ok(self) -> bool:
        return all(ok for ok, _ in self.lines)

    def render(self) -> str:
        return "\n".join(f"{'ok  ' if ok else 'FAIL'} {text}" for ok, text in self.lines)


@contextlib.contextmanager
def _in_memory_file(text: str) -> Iterator[str]:
    """A path to ``text`` that lives in memory: a memfd on Linux, else a FIFO fed by a thread.

    ``ssl`` only loads keys from paths; neither of these ever reaches a disk.
    """
    data = text.encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("verify", 0)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    import tempfile

    directory = tempfile.mkdtemp(prefix="verify-")
    path = os.path.join(directory, "pipe")
    os.mkfifo(path, 0o600)

    def feed() -> None:
        with open(path, "wb") as pipe:
            pipe.write(data)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        if thread.is_alive():  # nobody read it: unblock the writer
            with contextlib.suppress(OSError), open(path, "rb") as pipe:
                pipe.read()
        thread.join(timeout=2)
        shutil.rmtree(directory, ignore_errors=True)


def tls_context(*, ca_pem: str | None, identity: ClientIdentity | None) -> ssl.SSLContext:
    """A verifying client context; the client certificate, when given, loaded from memory."""
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if identity is not None:
        with _in_memory_file(identity.cert_pem) as cert_path, _in_memory_file(identity.key_pem) as key_path:
            try:
                context.load_cert_chain(cert_path, key_path)
            except ssl.SSLError:
                raise VerifyError("the client certificate and key do not load (not PEM, or they do not match)") from None
    return context


def https_get(target: Target, path: str, context: ssl.SSLContext, *, timeout: float = 10.0) -> Answer:
    """GET ``https://<host><path>`` with SNI and Host = host, connecting where ``target`` says."""
    try:
        raw = socket.create_connection(target.connect, timeout=timeout)
    except OSError as exc:
        return Answer(error=f"cannot connect to {target.connect[0]}:{target.connect[1]}: {exc.strerror or exc}")
    try:
        sock = context.wrap_socket(raw, server_hostname=target.host)
    except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
        raw.close()
        return Answer(error=f"TLS handshake failed: {_ssl_reason(exc)}")
    peer = sock.getpeercert(binary_form=True)
    not_after = x509.load_der_x509_certificate(peer).not_valid_after_utc if peer else None
    connection = http.client.HTTPSConnection(target.host, target.port, timeout=timeout, context=context)
    connection.sock = sock
    try:
        connection.request("GET", path, headers={"Host": target.host, "User-Agent": "iks-alb-istio-mtls-verify"})
        response = connection.getresponse()
        return Answer(status=response.status, body=response.read(4096), peer_not_after=not_after)
    except (ssl.SSLError, OSError, http.client.HTTPException) as exc:
        return Answer(error=f"request failed after the handshake: {_ssl_reason(exc)}", peer_not_after=not_after)
    finally:
        connection.close()


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return str(exc) or type(exc).__name__


# --- where the inputs come from -------------------------------------------------------------------


def stack_outputs(stack: str, outputs_json: str | None) -> Mapping[str, object]:
    """The stack's outputs: from a file, or from ``pulumi stack output --json``."""
    if outputs_json:
        try:
            with open(outputs_json, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, json.JSONDecodeError) as exc:
            raise VerifyError(f"--outputs-json {outputs_json}: {exc}") from None
    else:
        if not shutil.which("pulumi"):
            raise VerifyError("pulumi not found: install the Pulumi CLI or pass --outputs-json")
        run = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", stack], capture_output=True, text=True, timeout=120
        )
        if run.returncode != 0:
            raise VerifyError(f"pulumi stack output --stack {stack} failed: {run.stderr.strip()[:300]}")
        data = json.loads(run.stdout or "{}")
    for key in ("albHost", "gatewayDomain"):
        if not data.get(key):
            raise VerifyError(f"stack output {key} is missing: has `pulumi up` completed for stack {stack}?")
    return dict(data)


def identity_from_cluster(namespace: str, secret: str, kube_context: str | None) -> ClientIdentity:
    """The ALB's client certificate from the cluster, as the recipe's ``kubectl get secret`` did."""
    if not shutil.which("kubectl"):
        raise VerifyError("kubectl not found: install it, or pass --client-cert and --client-key")
    argv = ["kubectl", "get", "secret", secret, "-n", namespace, "-o", "json"]
    if kube_context:
        argv[1:1] = ["--context", kube_context]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        raise VerifyError(f"kubectl get secret {namespace}/{secret} failed: {run.stderr.strip()[:300]}")
    try:
        data = json.loads(run.stdout).get("data") or {}
    except json.JSONDecodeError:
        raise VerifyError(f"kubectl get secret {namespace}/{secret} did not print JSON") from None
    for cert_key, key_key in CLIENT_KEYS:
        if cert_key in data and key_key in data:
            try:
                return ClientIdentity(
                    base64.b64decode(data[cert_key]).decode("ascii"), base64.b64decode(data[key_key]).decode("ascii")
                )
            except (ValueError, UnicodeDecodeError):
                raise VerifyError(f"secret {namespace}/{secret}: {cert_key}/{key_key} are not base64 PEM") from None
    raise VerifyError(f"secret {namespace}/{secret} has no client certificate (tls.crt/tls.key or client.crt/client.key)")


def identity_from_files(cert_file: str, key_file: str) -> ClientIdentity:
    """The client certificate from files the user names, read into memory once."""
    try:
        with open(cert_file, encoding="ascii") as cert, open(key_file, encoding="ascii") as key:
            return ClientIdentity(cert.read(), key.read())
    except (OSError, UnicodeDecodeError) as exc:
        raise VerifyError(f"cannot read the client certificate: {exc}") from None


# --- the checks -----------------------------------------------------------------------------------


def run_checks(
    outputs: Mapping[str, object],
    identity: ClientIdentity,
    *,
    ca_pem: str | None = None,
    connect_to: Sequence[Target] = (),
    path: str = DEFAULT_PATH,
    expect: int = DEFAULT_STATUS,
    timeout: float = 10.0,
    now: dt.datetime | None = None,
) -> Report:
    """The recipe's curls, each a line of the report."""
    report = Report()
    alb_host = str(outputs["albHost"])
    gateway = str(outputs["gatewayDomain"])
    overrides = {t.host: t for t in connect_to}

    def target(host: str) -> Target:
        return overrides.get(host, Target(host))

    anonymous = tls_context(ca_pem=ca_pem, identity=None)
    with_cert = tls_context(ca_pem=ca_pem, identity=identity)

    answer = https_get(target(alb_host), path, anonymous, timeout=timeout)
    report.add(answer.status == expect, f"ALB       https://{alb_host}{path} -> {_describe(answer)} (want {expect})")

    answer = https_get(target(gateway), path, with_cert, timeout=timeout)
    report.add(
        answer.status == expect,
        f"gateway   https://{gateway}{path} with the ALB client certificate -> {_describe(answer)} (want {expect})",
    )
    expiry = answer.peer_not_after

    refused = https_get(target(gateway), path, anonymous, timeout=timeout)
    report.add(
        refused.status is None,
        f"gateway   https://{gateway}{path} without a client certificate -> {_describe(refused)} (want refused)",
    )
    expiry = expiry or refused.peer_not_after
    if expiry is None:
        report.add(False, "gateway   certificate expiry: unknown (no TLS session with the gateway)")
    else:
        days = (expiry - (now or dt.datetime.now(dt.timezone.utc))).total_seconds() / 86400
        report.add(
            days > 0,
            f"gateway   certificate expires {expiry:%Y-%m-%d %H:%M} UTC ({days:.0f} days)"
            + (" - renewal due: IKS renews nlb-dns certificates about 30 days before expiry" if 0 < days < EXPIRY_WARNING_DAYS else ""),
        )
    return report


def _describe(answer: Answer) -> str:
    return str(answer.status) if answer.status is not None else f"refused ({answer.error})"


def _parse_connect_to(value: str) -> Target:
    parts = value.split(":")
    if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
        raise argparse.ArgumentTypeError(f"--connect-to {value!r}: expected HOST:PORT:ADDRESS:PORT")
    return Target(parts[0], int(parts[1]), parts[2], int(parts[3]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev", help="stack whose outputs to check (default: dev)")
    parser.add_argument("--outputs-json", help="read the outputs from this file instead of `pulumi stack output --json`")
    parser.add_argument("--client-cert", help="PEM client certificate (default: from the cluster's alb-certs secret)")
    parser.add_argument("--client-key", help="PEM key of --client-cert")
    parser.add_argument("--kube-context", help="kubeconfig context for kubectl")
    parser.add_argument("--ca-file", help="PEM bundle to verify the ALB and gateway with (default: the system's)")
    parser.add_argument("--connect-to", type=_parse_connect_to, action="append", default=[],
                        metavar="HOST:PORT:ADDRESS:PORT", help="connect there for HOST (as curl --connect-to)")
    parser.add_argument("--path", default=DEFAULT_PATH, help=f"path to request (default: {DEFAULT_PATH})")
    parser.add_argument("--expect", type=int, default=DEFAULT_STATUS, help=f"status wanted (default: {DEFAULT_STATUS})")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default: 10)")
    args = parser.parse_args(argv)
    try:
        outputs = stack_outputs(args.stack, args.outputs_json)
        if bool(args.client_cert) != bool(args.client_key):
            raise VerifyError("--client-cert and --client-key go together")
        if args.client_cert:
            identity = identity_from_files(args.client_cert, args.client_key)
        else:
            # albCertsSecret is "<namespace>/<name>".
            ref = str(outputs.get("albCertsSecret") or f"istio-system/{specs.ALB_CERTS_SECRET}")
            namespace, _, name = ref.rpartition("/")
            identity = identity_from_cluster(namespace or "istio-system", name, args.kube_context)
        ca_pem = None
        if args.ca_file:
            with open(args.ca_file, encoding="ascii") as handle:
                ca_pem = handle.read()
        report = run_checks(
            outputs, identity, ca_pem=ca_pem, connect_to=args.connect_to, path=args.path,
            expect=args.expect, timeout=args.timeout,
        )
    except (VerifyError, OSError, ssl.SSLError) as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
