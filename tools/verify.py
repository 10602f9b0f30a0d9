"""``python -m tools.verify --stack dev``: the recipe's two curls, against a live stack.

1. ``https://httpbin.<albDomain>/status/418`` through the ALB answers 418 (with ``apps``: each of
   the ``urls`` output gets an answer that is not the ALB's or the gateway's failure, i.e. not
   500, 502, 503 or 504, or the ``--expect`` status);
2. ``https://<gatewayDomain>/status/418`` straight to the gateway answers 418 to a client
   holding the ALB's client certificate (with ``apps``: the first URL's path, its host as HTTP
   Host; SNI stays ``gatewayDomain``, as the ALB sends it) ...
3. ... and the same address refuses a client without one, at the TLS layer (TLS 1.3: the
   ``certificate_required`` alert; TLS 1.2: a handshake failure after the server's hello);
4. and when the gateway's certificate expires.

With ``gatewayCertSource=private-ca`` (the stack exports ``gatewayCertificateNotAfter``) the
gateway's name is its Service's cluster DNS name and its certificate is issued by the program's
CA: the gateway is verified against that CA (``ca.crt`` of ``alb-certs``, or
``--gateway-ca-file``), the ALB still against the system's trust store (or ``--ca-file``), and the
gateway is reached through ``--connect-to`` (a ``kubectl port-forward`` or its load balancer).

The stack's outputs come from ``pulumi stack output --json`` (or ``--outputs-json FILE``);
the client certificate and key from the cluster's ``alb-certs`` secret through ``kubectl``,
as the recipe did, or from files the user names.  Key material stays in memory: Python's
``ssl`` reads it from an anonymous in-memory file (``memfd``), never from disk.

One line per check, exit status 1 when any check fails, 2 when the checks cannot run (a bad
argument or input: one line on stderr naming it), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import http.client
import ipaddress
import json
import math
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from cryptography import x509

from components import certs, specs

DEFAULT_PATH = "/status/418"
DEFAULT_STATUS = 418
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 600.0
EXPIRY_WARNING_DAYS = 14
#: The ALB and the gateway listen on 443: ``--connect-to`` maps only that port.
HTTPS_PORT = 443
#: Larger inputs are not outputs, certificates or keys (and /dev/zero must not fill memory).
MAX_INPUT_BYTES = 4 * 1024 * 1024
#: How long a TLS 1.3 probe waits after its handshake for the server's verdict on the missing
#: certificate before it sends the request (the verdict is lost if a reset overtakes it).
POST_HANDSHAKE_GRACE = 2.0
#: Which keys of ``alb-certs`` hold the client certificate, per ALB flavour.
CLIENT_KEYS = (("tls.crt", "tls.key"), ("client.crt", "client.key"))
#: Where ``alb-certs`` holds the CA the ALB verifies the gateway with, by its certificate's key.
CA_KEYS = {"tls.crt": "ca.crt", "client.crt": "trusted.crt"}
#: Answers that are the ALB's or the gateway's failure rather than the app's: nginx answers 502 to
#: an upstream TLS error, Traefik 500; Envoy 503 when a Service has no endpoints; 504 a timeout.
PROXY_FAILURES = (500, 502, 503, 504)
#: What an app URL wants when ``--expect`` does not pin a status.
APP_ANSWER = "the app's answer: not 500, 502, 503 or 504"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
HELP_HINT = "python -m tools.verify --help lists the options"

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_STACK = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*){0,2}")
_HTTP_PATH = re.compile(r"/[\x21-\x7e]*")
_HTTP_STATUS_LINE = re.compile(rb"HTTP/\d(?:\.\d)? (\d{3})")
#: An ``urls`` entry as components/specs.py writes it: ``https://<host>[<path>]``, no port.
_URL = re.compile(r"https://(?P<host>[^/?#:@\[\]\s]+)(?P<path>/[\x21\x22\x24-\x7e]*)?")
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)")
#: ``<service>.<namespace>.svc[.cluster.local]``: the gateway's name with private-ca.
_SERVICE_NAME = re.compile(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?\.?", re.I)
_TLS_VERSIONS = {0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
#: OpenSSL's reasons for the alerts that refuse a client without a certificate.
_CERTIFICATE_REQUIRED = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
_HANDSHAKE_FAILURE = "SSLV3_ALERT_HANDSHAKE_FAILURE"

T = TypeVar("T")


class VerifyError(RuntimeError):
    """The checks cannot run (no outputs, no client certificate, ...): exit status 2, one line."""


class UsageError(VerifyError):
    """A bad command line, as argparse words it (argparse itself would print usage too)."""


@dataclass(frozen=True)
class ClientIdentity:
    """The ALB's client certificate and key, as PEM text held in memory only.

    ``source`` names where they came from, so that a load error names the file or secret.
    """

    cert_pem: str
    key_pem: str = field(repr=False)
    source: str = field(default="the client certificate", compare=False)


@dataclass(frozen=True)
class Target:
    """Where to connect for a host: ``--connect-to host:443:addr:port`` as curl has it."""

    host: str
    port: int = HTTPS_PORT
    address: str | None = None
    address_port: int | None = None

    @property
    def connect(self) -> tuple[str, int]:
        return (self.address or self.host, self.address_port or self.port)


@dataclass(frozen=True)
class Answer:
    """What one HTTPS request got: a status, or the TLS/connection error that stopped it.

    ``peer`` is the address the request reached (None when it could not connect): the refusal
    check goes to that same address.
    """

    status: int | None = None
    body: bytes = b""
    error: str | None = None
    peer_not_after: dt.datetime | None = None
    peer: tuple[str, int] | None = None
    peer_cert: bytes | None = None
    """The certificate the server presented (DER), when the handshake got that far."""

    def json(self) -> Any:
        """The body as JSON (an app stand-in's or httpbin's answer)."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Refusal:
    """What a request without a client certificate met.

    ``refused`` only for the refusal that proves the server demands a certificate: TLS 1.3's
    ``certificate_required`` alert, or TLS 1.2's handshake failure after the server's hello.
    A connection error, a plain-HTTP port or any other TLS error proves nothing.
    """

    refused: bool
    detail: str
    status: int | None = None
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


def _no_passphrase() -> bytes:
    """An encrypted key fails to load instead of OpenSSL prompting on the terminal."""
    return b""


def tls_context(*, ca_pem: str | None, identity: ClientIdentity | None) -> ssl.SSLContext:
    """A verifying client context; the client certificate, when given, loaded from memory.

    ``ca_pem`` None means the system's trust store; a bundle without a certificate is an error,
    never a silent fall-back to the system store.
    """
    if ca_pem is None:
        context = ssl.create_default_context()
    else:
        if "-----BEGIN CERTIFICATE-----" not in ca_pem:
            raise VerifyError("the CA bundle holds no PEM certificate")
        try:
            context = ssl.create_default_context(cadata=ca_pem)
        except (ssl.SSLError, ValueError) as exc:
            raise VerifyError(f"the CA bundle does not load: {_ssl_reason(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if identity is not None:
        with _in_memory_file(identity.cert_pem) as cert_path, _in_memory_file(identity.key_pem) as key_path:
            try:
                context.load_cert_chain(cert_path, key_path, password=_no_passphrase)
            except ssl.SSLError:
                raise VerifyError(
                    f"{identity.source}: the certificate and key do not load (not PEM, or they do not match)"
                ) from None
    return context


def https_get(
    target: Target,
    path: str,
    context: ssl.SSLContext,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    host_header: str | None = None,
    max_body: int = 4096,
) -> Answer:
    """GET ``https://<host><path>`` with SNI and Host = host, connecting where ``target`` says.

    ``host_header`` sends another HTTP Host than the SNI name (the ALB's way to the gateway with
    ``apps``: SNI ``gatewayDomain``, Host the app's).
    """
    where = _where(target)
    try:
        raw = socket.create_connection(target.connect, timeout=timeout)
    except OSError as exc:
        return Answer(error=f"cannot connect to {where}: {_os_reason(exc)}")
    peer = _peer(raw)
    try:
        sock = context.wrap_socket(raw, server_hostname=target.host)
    except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
        raw.close()
        return Answer(error=f"TLS handshake failed: {_ssl_reason(exc)}", peer=peer)
    peer_der = sock.getpeercert(binary_form=True)
    not_after = x509.load_der_x509_certificate(peer_der).not_valid_after_utc if peer_der else None
    connection = http.client.HTTPSConnection(target.host, target.port, timeout=timeout, context=context)
    connection.sock = sock
    try:
        connection.request("GET", path, headers={"Host": host_header or target.host, "User-Agent": "iks-alb-istio-mtls-verify"})
        response = connection.getresponse()
        return Answer(
            status=response.status, body=response.read(max_body), peer_not_after=not_after, peer=peer, peer_cert=peer_der
        )
    except (ssl.SSLError, OSError, http.client.HTTPException) as exc:
        return Answer(
            error=f"request failed after the handshake: {_ssl_reason(exc)}", peer_not_after=not_after, peer=peer, peer_cert=peer_der
        )
    finally:
        connection.close()


def request_without_certificate(
    target: Target, path: str, context: ssl.SSLContext, *, timeout: float = DEFAULT_TIMEOUT, host_header: str | None = None
) -> Refusal:
    """GET as :func:`https_get` does, but over memory BIOs, to tell a TLS refusal from anything else.

    Why not ``https_get``: the verdict needs what ``ssl`` sockets hide — whether the server's
    hello arrived before a TLS 1.2 handshake failure (else a port that is not TLS, or a cipher
    mismatch, would pass), and TLS 1.3's alert, which a reset wipes out when the request is
    sent right after the handshake (so the probe first waits briefly for the server's verdict).
    ``context`` must hold no client certificate; ``host_header`` as for :func:`https_get`.
    """
    where = _where(target)
    try:
        raw = socket.create_connection(target.connect, timeout=timeout)
    except OSError as exc:
        return Refusal(False, f"cannot connect to {where}: {_os_reason(exc)}")
    with raw:
        return _Probe(raw, context, target.host, timeout, host_header=host_header).run(path)


class _Probe:
    """One TLS connection driven by hand: every byte the server sends passes through here."""

    def __init__(
        self, raw: socket.socket, context: ssl.SSLContext, host: str, timeout: float, *, host_header: str | None = None
    ) -> None:
        self.raw = raw
        self.host_header = host_header or host
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=host)
        self.received = bytearray()  # what the server sent during the handshake, for its hello
        self.in_handshake = True
        self.not_after: dt.datetime | None = None

    def run(self, path: str) -> Refusal:
        stage = "during the TLS handshake"
        version: str | None = None
        try:
            self._pump(self.tls.do_handshake)
            self.in_handshake = False
            version = _tls_version_name(self.tls.version())
            peer_der = self.tls.getpeercert(binary_form=True)
            self.not_after = x509.load_der_x509_certificate(peer_der).not_valid_after_utc if peer_der else None
            stage = f"after the {version} handshake"
            self._flush()
            if version == "TLS 1.3":
                # The server judges the (empty) certificate now: an alert, or session tickets, or
                # nothing; only then is the request sent.
                if self._receive(min(POST_HANDSHAKE_GRACE, self._remaining()), silence_ok=True):
                    with contextlib.suppress(ssl.SSLWantReadError):
                        return self._answered(self.tls.read(4096))
            self.tls.write(
                f"GET {path} HTTP/1.1\r\nHost: {self.host_header}\r\n"
                "User-Agent: iks-alb-istio-mtls-verify\r\nConnection: close\r\n\r\n".encode("ascii")
            )
            with contextlib.suppress(OSError):  # a reset: what was received before it still counts
                self._flush()
            return self._answered(self._pump(lambda: self.tls.read(4096)))
        except ssl.SSLZeroReturnError:
            return self._failed(f"the server closed the connection {stage} without an alert")
        except ssl.SSLCertVerificationError as exc:
            return self._failed(f"the gateway's certificate does not verify: {exc.verify_message}")
        except ssl.SSLEOFError:
            return self._failed(f"the connection ended {stage} without an alert")
        except ssl.SSLError as exc:
            if version is None:
                version = _server_hello_version(bytes(self.received))
            return self._judge(exc, version, handshake_done=not self.in_handshake)
        except TimeoutError:
            return self._failed(f"no answer within {self.timeout:g} s {stage}")
        except OSError as exc:
            return self._failed(f"the connection failed {stage}: {_os_reason(exc)}")

    def _judge(self, exc: ssl.SSLError, version: str | None, *, handshake_done: bool) -> Refusal:
        reason = str(exc.reason or "")
        if version is None:
            hint = " (not a TLS port? a plain-HTTP port answers like this)" if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG") else ""
            return self._failed(f"the TLS handshake failed before the server's hello: {_ssl_reason(exc)}{hint}")
        if version == "TLS 1.3" and reason == _CERTIFICATE_REQUIRED:
            return Refusal(True, "TLS 1.3 alert certificate required", peer_not_after=self.not_after)
        if version == "TLS 1.2" and not handshake_done and reason in (_HANDSHAKE_FAILURE, _CERTIFICATE_REQUIRED):
            what = "handshake failure" if reason == _HANDSHAKE_FAILURE else "alert certificate required"
            return Refusal(True, f"TLS 1.2 {what} after the server's hello", peer_not_after=self.not_after)
        stage = "after the handshake" if handshake_done else "after the server's hello"
        return self._failed(f"{version} failed {stage} with {_ssl_reason(exc)}, which is not a refusal of a missing client certificate")

    def _answered(self, data: bytes) -> Refusal:
        match = _HTTP_STATUS_LINE.match(data)
        if match:
            return Refusal(False, f"answered {int(match.group(1))}", status=int(match.group(1)), peer_not_after=self.not_after)
        return self._failed("the TLS session was accepted and the server sent data that is not HTTP")

    def _failed(self, detail: str) -> Refusal:
        return Refusal(False, detail, peer_not_after=self.not_after)

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.raw.settimeout(max(self._remaining(), 0.001))
            self.raw.sendall(data)

    def _receive(self, wait: float, *, silence_ok: bool = False) -> bool:
        """Feed what arrives within ``wait`` seconds to the TLS object; False when nothing did
        and ``silence_ok`` (else silence is a TimeoutError)."""
        if wait <= 0:
            if silence_ok:
                return False
            raise TimeoutError
        self.raw.settimeout(wait)
        try:
            chunk = self.raw.recv(65536)
        except TimeoutError:
            if silence_ok:
                return False
            raise
        if not chunk:
            self.incoming.write_eof()
            return True
        if self.in_handshake and len(self.received) < 65536:
            self.received.extend(chunk)
        self.incoming.write(chunk)
        return True

    def _pump(self, operation: Callable[[], T]) -> T:
        """Run a TLS operation, moving bytes until it completes (or fails, or time is up)."""
        while True:
            try:
                return operation()
            except ssl.SSLWantReadError:
                self._flush()
                self._receive(self._remaining())


def _server_hello_version(data: bytes) -> str | None:
    """The protocol version the server's hello chose, from the plaintext records it sent; None
    when no hello arrived (the peer is not TLS, or refused before answering)."""
    handshake = bytearray()
    offset = 0
    while offset + 5 <= len(data) and data[offset] == 22:  # handshake records, until CCS/alert/data
        length = int.from_bytes(data[offset + 3 : offset + 5], "big")
        handshake += data[offset + 5 : offset + 5 + length]
        offset += 5 + length
    if len(handshake) < 4 or handshake[0] != 2:  # ServerHello
        return None
    body = bytes(handshake[4 : 4 + int.from_bytes(handshake[1:4], "big")])
    if len(body) < 38:
        return None
    version = int.from_bytes(body[0:2], "big")
    pos = 35 + body[34] + 3  # random, session id, cipher suite, compression
    if pos + 2 <= len(body):
        end = min(len(body), pos + 2 + int.from_bytes(body[pos : pos + 2], "big"))
        pos += 2
        while pos + 4 <= end:
            ext_type = int.from_bytes(body[pos : pos + 2], "big")
            ext_len = int.from_bytes(body[pos + 2 : pos + 4], "big")
            if ext_type == 43 and ext_len == 2:  # supported_versions: TLS 1.3 says so here
                version = int.from_bytes(body[pos + 4 : pos + 6], "big")
            pos += 4 + ext_len
    return _TLS_VERSIONS.get(version, f"TLS version 0x{version:04x}")


def _tls_version_name(name: str | None) -> str | None:
    """``TLSv1.3`` as the report writes it: ``TLS 1.3``."""
    return name.replace("TLSv", "TLS ") if name else None


def _where(target: Target) -> str:
    address, port = target.connect
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _peer(sock: socket.socket) -> tuple[str, int] | None:
    try:
        address = sock.getpeername()
    except OSError:
        return None
    return (str(address[0]), int(address[1]))


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    if isinstance(exc, ssl.SSLEOFError):
        return "the connection ended unexpectedly (EOF)"
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError):
        return _os_reason(exc)
    return re.sub(r" \(_ssl\.c:\d+\)$", "", str(exc)) or type(exc).__name__


# --- where the inputs come from -------------------------------------------------------------------


def _shown(value: str) -> str:
    """A path or value as a message shows it: quoted when empty or holding odd characters."""
    return value if value and value.isprintable() and value.strip() == value else repr(value)


def read_input(option: str, path: str) -> bytes:
    """The bytes of an input file, or a one-line error naming the option and the file."""
    where = f"{option} {_shown(path)}"
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except IsADirectoryError:
        raise VerifyError(f"{where}: cannot be read: it is a directory") from None
    except FileNotFoundError:
        raise VerifyError(f"{where}: cannot be read: no such file") from None
    except PermissionError:
        raise VerifyError(f"{where}: cannot be read: permission denied") from None
    except (OSError, ValueError) as exc:
        raise VerifyError(f"{where}: cannot be read: {_os_reason(exc)}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise VerifyError(f"{where}: is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB, so it is not what {option} takes")
    return data


def stack_outputs(stack: str, outputs_json: str | None) -> Mapping[str, object]:
    """The stack's outputs: from a file, or from ``pulumi stack output --json``."""
    if outputs_json is not None:
        where = f"--outputs-json {_shown(outputs_json)}"
        data = read_input("--outputs-json", outputs_json)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise VerifyError(f"{where}: is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
        if not text.strip():
            raise VerifyError(f"{where}: is empty: expected the JSON object pulumi stack output --json prints")
        parsed = _json(text, where)
        return check_outputs(parsed, where)
    if not shutil.which("pulumi"):
        raise VerifyError("pulumi not found: install the Pulumi CLI or pass --outputs-json")
    command = f"pulumi stack output --json --stack {stack}"
    try:
        run = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", stack], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        raise VerifyError(f"{command} did not finish within 120 s") from None
    except OSError as exc:
        raise VerifyError(f"{command} cannot run: {_os_reason(exc)}") from None
    if run.returncode != 0:
        raise VerifyError(f"{command} failed: {_tail(run.stderr)}")
    return check_outputs(_json(run.stdout or "{}", command), command, stack=stack)


def _json(text: str, where: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise VerifyError(f"{where}: is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise VerifyError(f"{where}: is not JSON this tool reads (nested too deeply)") from None


def check_outputs(data: object, where: str, *, stack: str | None = None) -> Mapping[str, object]:
    """The outputs the checks need, each of the right shape; the error names the source and key."""
    if not isinstance(data, dict):
        raise VerifyError(
            f"{where}: holds a JSON {_json_type(data)}, not the object of stack outputs that pulumi stack output --json prints"
        )
    apps = _absent(data.get("albHost")) and not _absent(data.get("urls"))  # the apps shape: urls, no albHost
    for key in ("gatewayDomain",) if apps else ("albHost", "gatewayDomain"):
        value = data.get(key)
        if value is None or value == "":
            if key == "albHost" and not _absent(data.get("gatewayDomain")):  # deployed, but neither shape
                neither = "stack output albHost is missing, and so is urls: the httpbin sample has albHost, apps have urls"
                if stack is not None:
                    raise VerifyError(f"{neither} (stack {stack})")
                raise VerifyError(f"{where}: {neither} (write the file with pulumi stack output --json)")
            if stack is not None:
                raise VerifyError(f"stack output {key} is missing: has pulumi up completed for stack {stack}?")
            raise VerifyError(f"{where}: stack output {key} is missing (write the file with pulumi stack output --json)")
        if not isinstance(value, str):
            raise VerifyError(f"{where}: stack output {key} must be a string; got a JSON {_json_type(value)}")
        if not _is_dns_name(value):
            raise VerifyError(f"{where}: stack output {key} is not a DNS name: {value!r}")
    ref = data.get("albCertsSecret")
    if ref is not None and ref != "":
        namespace, _, name = ref.rpartition("/") if isinstance(ref, str) else ("", "", "")
        if not (_K8S_NAME.fullmatch(namespace) and _SECRET_NAME.fullmatch(name)):
            raise VerifyError(f"{where}: stack output albCertsSecret is not <namespace>/<secret name>: {ref!r}")
    if apps:
        _check_urls(data["urls"], where)
    not_after = data.get("gatewayCertificateNotAfter")
    if not _absent(not_after) and (not isinstance(not_after, str) or _rfc3339(not_after) is None):
        shown = repr(not_after) if isinstance(not_after, str) else f"a JSON {_json_type(not_after)}"
        raise VerifyError(f"{where}: stack output gatewayCertificateNotAfter is not an RFC 3339 time: {shown}")
    return dict(data)


def _absent(value: object) -> bool:
    """An output that is not there: missing, null or empty (as pulumi prints an unset one)."""
    return value is None or value == "" or value == []


def _check_urls(urls: object, where: str) -> None:
    """``urls`` of an apps stack: a list of ``https://<host>[<path>]``, as components/specs.py writes them."""
    if not isinstance(urls, list):
        raise VerifyError(f"{where}: stack output urls must be a list of https:// URLs; got a JSON {_json_type(urls)}")
    for number, url in enumerate(urls, 1):
        if not (isinstance(url, str) and _url_parts(url)):
            shown = repr(url) if isinstance(url, str) else f"a JSON {_json_type(url)}"
            raise VerifyError(f"{where}: stack output urls item {number} is not an https://<host>[/<path>] URL: {shown}")


def _url_parts(url: str) -> tuple[str, str] | None:
    """``(host, path)`` of an ``urls`` entry (path ``/`` when it has none); None when it is not one."""
    match = _URL.fullmatch(url)
    if not match or not _is_dns_name(match["host"]):
        return None
    return match["host"], match["path"] or "/"


def _rfc3339(text: str) -> dt.datetime | None:
    """A time as pulumi-tls writes ``validity_end_time`` (``2027-02-23T23:43:00Z``); None when not one."""
    match = _RFC3339.fullmatch(text.strip())
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    try:
        parsed = dt.datetime.fromisoformat(f"{day}T{clock}{'+00:00' if zone in 'Zz' else zone}")
    except ValueError:
        return None
    return parsed.replace(microsecond=int((fraction or "0")[:6].ljust(6, "0"))).astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class StackShape:
    """What the outputs say the checks are: the httpbin sample (``albHost``) or ``apps`` (``urls``);
    a gateway certificate from nlb-dns or from the program's CA (``gatewayCertificateNotAfter``,
    which components/program.py exports for ``gatewayCertSource=private-ca`` only)."""

    gateway: str
    alb_host: str | None = None
    urls: tuple[str, ...] = ()
    gateway_not_after: dt.datetime | None = None

    @classmethod
    def of(cls, outputs: Mapping[str, object], where: str = "the stack outputs") -> StackShape:
        checked = check_outputs(outputs, where)
        alb_host = checked.get("albHost")
        urls = checked.get("urls")
        not_after = checked.get("gatewayCertificateNotAfter")
        return cls(
            gateway=str(checked["gatewayDomain"]),
            alb_host=None if _absent(alb_host) else str(alb_host),
            urls=tuple(str(url) for url in urls) if _absent(alb_host) and isinstance(urls, list) else (),
            gateway_not_after=_rfc3339(not_after) if isinstance(not_after, str) and not_after else None,
        )

    @property
    def private_ca(self) -> bool:
        return self.gateway_not_after is not None

    @property
    def alb_hosts(self) -> list[str]:
        """The hosts the checks visit through the ALB, once each."""
        if self.alb_host is not None:
            return [self.alb_host]
        return list(dict.fromkeys(host for url in self.urls for host, _ in [_url_parts(url) or ("", "")]))


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(type(value), "value")


def _tail(stderr: str) -> str:
    """A command's complaint on one line, shortened."""
    text = " ".join(stderr.split())
    return (text[:300] + " …") if len(text) > 300 else (text or "(no message)")


def _is_dns_name(value: str) -> bool:
    return len(value) <= 253 and _DNS_NAME.fullmatch(value) is not None


@dataclass(frozen=True)
class AlbCerts:
    """What ``alb-certs`` holds for the checks: the ALB's client certificate, and the CA the ALB
    verifies the gateway with (its base64 text as the secret has it, read only when needed)."""

    identity: ClientIdentity
    ca_key: str
    ca_b64: str | None = field(default=None, repr=False)
    secret: str = "istio-system/alb-certs"

    def gateway_ca_pem(self) -> str:
        """The CA that issued a private-ca gateway's certificate, as canonical PEM."""
        if self.ca_b64 is None:
            raise VerifyError(
                f"secret {self.secret} has no {self.ca_key}: with gatewayCertSource=private-ca it holds the program's CA, "
                "which issued the gateway's certificate (or pass --gateway-ca-file)"
            )
        what = f"secret {self.secret} key {self.ca_key}"
        try:
            data = base64.b64decode(self.ca_b64, validate=True)
        except (binascii.Error, ValueError):
            raise VerifyError(f"{what} is not base64-encoded") from None
        try:
            return certs.to_pem(certs.parse_certificates(data, what))
        except certs.CertificateError as exc:
            raise VerifyError(str(exc)) from None


def identity_from_cluster(namespace: str, secret: str, kube_context: str | None) -> ClientIdentity:
    """The ALB's client certificate from the cluster, as the recipe's ``kubectl get secret`` did."""
    return alb_certs_from_cluster(namespace, secret, kube_context).identity


def alb_certs_from_cluster(namespace: str, secret: str, kube_context: str | None) -> AlbCerts:
    """The ALB's client certificate and its CA for the gateway, from one ``kubectl get secret``."""
    if not shutil.which("kubectl"):
        raise VerifyError("kubectl not found: install it, or pass --client-cert and --client-key")
    argv = ["kubectl", "get", "secret", secret, "-n", namespace, "-o", "json"]
    if kube_context:
        argv[1:1] = ["--context", kube_context]
    command = f"kubectl get secret {namespace}/{secret}"
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise VerifyError(f"{command} did not finish within 60 s") from None
    except OSError as exc:
        raise VerifyError(f"{command} cannot run: {_os_reason(exc)}") from None
    if run.returncode != 0:
        raise VerifyError(f"{command} failed: {_tail(run.stderr)}")
    try:
        parsed = json.loads(run.stdout)
    except (json.JSONDecodeError, RecursionError):
        raise VerifyError(f"{command} did not print JSON") from None
    data = parsed.get("data") if isinstance(parsed, dict) else None
    if not isinstance(data, dict):
        data = {}
    for cert_key, key_key in CLIENT_KEYS:
        if cert_key in data and key_key in data:
            values = []
            for key in (cert_key, key_key):
                try:
                    values.append(base64.b64decode(str(data[key]), validate=True))
                except (binascii.Error, ValueError):
                    raise VerifyError(f"secret {namespace}/{secret} key {key} is not base64-encoded") from None
            identity = load_identity(
                values[0], values[1], cert_what=f"secret {namespace}/{secret} key {cert_key}",
                key_what=f"secret {namespace}/{secret} key {key_key}",
            )
            ca_key = CA_KEYS[cert_key]
            ca = data.get(ca_key)
            return AlbCerts(identity, ca_key, None if ca is None else str(ca), f"{namespace}/{secret}")
    raise VerifyError(f"secret {namespace}/{secret} has no client certificate (tls.crt/tls.key or client.crt/client.key)")


def identity_from_files(cert_file: str, key_file: str) -> ClientIdentity:
    """The client certificate from files the user names, read into memory once."""
    cert_what, key_what = f"--client-cert {_shown(cert_file)}", f"--client-key {_shown(key_file)}"
    cert_data = read_input("--client-cert", cert_file)
    key_data = read_input("--client-key", key_file)
    if b"ENCRYPTED PRIVATE KEY" in key_data or b"Proc-Type: 4,ENCRYPTED" in key_data:
        raise VerifyError(f"{key_what}: is an encrypted key: verify reads keys without a passphrase (decrypt it into memory, e.g. /dev/shm, with openssl pkey)")
    return load_identity(cert_data, key_data, cert_what=cert_what, key_what=key_what)


def load_identity(cert_data: bytes, key_data: bytes, *, cert_what: str, key_what: str) -> ClientIdentity:
    """A certificate chain and its key, checked (the messages of components/certs.py, naming the
    file or secret key) and rewritten as canonical PEM."""
    try:
        chain = certs.parse_certificates(cert_data, cert_what)
        key = certs.parse_private_key(key_data, key_what)
        certs.check_key_matches(chain[0], key, key_what, f"the certificate in {cert_what}")
    except certs.CertificateError as exc:
        raise VerifyError(str(exc)) from None
    return ClientIdentity(certs.to_pem(chain), certs.key_to_pem(key), source=f"{cert_what} and {key_what}")


def ca_bundle_from_file(path: str, option: str = "--ca-file") -> str:
    """The ``--ca-file`` (or ``--gateway-ca-file``) certificates as canonical PEM; empty or
    certificate-less is an error."""
    what = f"{option} {_shown(path)}"
    try:
        return certs.to_pem(certs.parse_certificates(read_input(option, path), what))
    except certs.CertificateError as exc:
        raise VerifyError(str(exc)) from None


# --- the checks -----------------------------------------------------------------------------------


def run_checks(
    outputs: Mapping[str, object],
    identity: ClientIdentity,
    *,
    ca_pem: str | None = None,
    gateway_ca_pem: str | None = None,
    connect_to: Sequence[Target] = (),
    path: str = DEFAULT_PATH,
    expect: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    now: dt.datetime | None = None,
) -> Report:
    """The recipe's curls, each a line of the report.

    ``ca_pem`` verifies the ALB (None: the system's trust store), ``gateway_ca_pem`` the gateway
    (None: as the ALB).  ``path`` and ``expect`` (default 418) are the httpbin sample's request;
    an apps stack requests each of its ``urls`` as listed, wanting ``expect`` when given, else an
    answer that is not the ALB's or the gateway's failure.
    """
    report = Report()
    stack = StackShape.of(outputs)
    overrides = {t.host.lower(): t for t in connect_to}

    def target(host: str) -> Target:
        override = overrides.get(host.lower())
        return dataclasses.replace(override, host=host) if override else Target(host)

    anonymous = tls_context(ca_pem=ca_pem, identity=None)
    gateway_trust = ca_pem if gateway_ca_pem is None else gateway_ca_pem
    gateway_anonymous = anonymous if gateway_ca_pem is None else tls_context(ca_pem=gateway_ca_pem, identity=None)
    with_cert = tls_context(ca_pem=gateway_trust, identity=identity)

    requests: list[tuple[str, str, str]]  # (URL as shown, host, path)
    if stack.alb_host is not None:
        wanted: int | None = DEFAULT_STATUS if expect is None else expect
        requests = [(f"https://{stack.alb_host}{path}", stack.alb_host, path)]
    else:
        wanted = expect
        requests = [(url, *(_url_parts(url) or ("", "/"))) for url in stack.urls]
    want = APP_ANSWER if wanted is None else str(wanted)

    def passes(answer: Answer) -> bool:
        if wanted is not None:
            return answer.status == wanted
        return answer.status is not None and answer.status not in PROXY_FAILURES

    for url, host, request_path in requests:
        answer = https_get(target(host), request_path, anonymous, timeout=timeout)
        report.add(passes(answer), f"ALB       {url} -> {_describe(answer)} (want {want})")

    # Straight to the gateway: SNI gatewayDomain; with apps the first URL's host as HTTP Host, as the ALB sends it.
    gateway = stack.gateway
    if stack.alb_host is not None:
        host_header, gateway_path, shown = None, path, f"https://{gateway}{path}"
    else:
        _, host_header, gateway_path = requests[0]
        shown = f"https://{gateway}{gateway_path} (Host {host_header})"
    if stack.private_ca and gateway.lower() not in overrides and not _resolves(gateway):
        report.add(False, f"gateway   {_port_forward_hint(gateway)}")
        return report

    accepted = https_get(target(gateway), gateway_path, with_cert, timeout=timeout, host_header=host_header)
    report.add(passes(accepted), f"gateway   {shown} with the ALB client certificate -> {_describe(accepted)} (want {want})")
    ok, outcome, refusal = refusal_check(
        accepted, target(gateway), gateway_path, gateway_anonymous, timeout=timeout, host_header=host_header
    )
    report.add(ok, f"gateway   {shown} without a client certificate -> {outcome} (want refused)")

    expiry = accepted.peer_not_after or (refusal.peer_not_after if refusal else None)
    if expiry is None:
        report.add(False, "gateway   certificate expiry: unknown (no TLS session with the gateway)")
        return report
    days = (expiry - (now or dt.datetime.now(dt.timezone.utc))).total_seconds() / 86400
    text = f"gateway   certificate expires {expiry:%Y-%m-%d %H:%M} UTC ({days:.0f} days)"
    issued = stack.gateway_not_after
    if issued is not None and abs((expiry - issued).total_seconds()) >= 1:
        # private-ca: the stack says which certificate it issued; a gateway serving another is not the stack's.
        report.add(
            False,
            f"{text}, not at gatewayCertificateNotAfter {issued:%Y-%m-%d %H:%M:%S} UTC: the gateway serves another "
            f"certificate than the stack issued (another gateway, or it has not loaded secret {specs.PRIVATE_GATEWAY_SECRET} yet)",
        )
        return report
    if 0 < days < EXPIRY_WARNING_DAYS:
        text += (
            " - renewal due: pulumi up renews private-ca gateway certificates within gatewayCertEarlyRenewalHours of expiry"
            if stack.private_ca
            else " - renewal due: IKS renews nlb-dns certificates about 30 days before expiry"
        )
    report.add(days > 0, text)
    return report


def _resolves(host: str) -> bool:
    """Does ``host`` have an address here?  A cluster-internal name has none outside the cluster."""
    try:
        socket.getaddrinfo(host, HTTPS_PORT, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return True


def _port_forward_hint(gateway: str) -> str:
    """What to do when the private-ca gateway's cluster-internal name does not resolve: one line."""
    match = _SERVICE_NAME.fullmatch(gateway)
    service, namespace = match.groups() if match else ("<gatewayService>", "<gatewayNamespace>")
    return (
        f"not checked: {gateway} (gatewayCertSource=private-ca) is a cluster-internal name that does not resolve here: "
        f"run kubectl -n {namespace} port-forward svc/{service} 8443:443 and pass "
        f"--connect-to {gateway}:443:127.0.0.1:8443 (or :443:<its load-balancer address>:443)"
    )


def refusal_check(
    accepted: Answer,
    target: Target,
    path: str,
    anonymous: ssl.SSLContext,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    host_header: str | None = None,
) -> tuple[bool, str, Refusal | None]:
    """Does the address that answered the client certificate refuse a client without one?

    Why tied to the accepted request: a refusal proves the gateway demands a certificate only
    where, in the same run, the same address let a certificate through; an address that refuses
    everyone (or is not there) proves nothing.  Returns (passed, outcome, the probe's result).
    """
    if accepted.peer is None:
        return False, f"not checked: the request with the client certificate did not connect ({accepted.error})", None
    same = dataclasses.replace(target, address=accepted.peer[0], address_port=accepted.peer[1])
    refusal = request_without_certificate(same, path, anonymous, timeout=timeout, host_header=host_header)
    if accepted.status is None:
        seen = f"refused ({refusal.detail})" if refusal.refused else f"not refused either ({refusal.detail})"
        return False, f"not proven: the request with the client certificate failed too ({accepted.error}); without one: {seen}", refusal
    if refusal.refused:
        return True, f"refused ({refusal.detail})", refusal
    return False, f"not refused: {refusal.detail}", refusal


def _describe(answer: Answer) -> str:
    return str(answer.status) if answer.status is not None else f"refused ({answer.error})"


# --- the command line -----------------------------------------------------------------------------


def _connect_to(value: str) -> Target:
    """``HOST:443:ADDRESS:PORT`` (ADDRESS may be ``[v6]``), every part checked."""
    match = re.fullmatch(r"([^:\[\]]*):([^:]*):(\[[^\]]*\]|[^:\[\]]*):([^:]*)", value)
    if not match:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT:ADDRESS:PORT, got {value!r}")
    host, port, address, address_port = match.groups()
    if not _is_dns_name(host):
        raise argparse.ArgumentTypeError(f"HOST {host!r} is not a DNS name in {value!r}")
    for text in (port, address_port):
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
            raise argparse.ArgumentTypeError(f"port {text!r} is not a port number (1-65535) in {value!r}")
    if int(port) != HTTPS_PORT:
        raise argparse.ArgumentTypeError(f"the checks connect to port {HTTPS_PORT} only, so PORT must be {HTTPS_PORT} in {value!r}")
    bare = address[1:-1] if address.startswith("[") else address
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        if address.startswith("[") or not _is_dns_name(bare):
            raise argparse.ArgumentTypeError(f"ADDRESS {address!r} is neither an IP address nor a DNS name in {value!r}") from None
    return Target(host, int(port), bare, int(address_port))


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {value!r}") from None
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT):
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_TIMEOUT:g} seconds, got {value!r}")
    return seconds


def _status(value: str) -> int:
    if not (value.isascii() and value.isdigit() and 100 <= int(value) <= 599):
        raise argparse.ArgumentTypeError(f"must be an HTTP status code (100-599), got {value!r}")
    return int(value)


def _path(value: str) -> str:
    if not _HTTP_PATH.fullmatch(value):
        raise argparse.ArgumentTypeError(f"must be an absolute path such as {DEFAULT_PATH} (no spaces or control characters), got {value!r}")
    return value


def _stack(value: str) -> str:
    if not _STACK.fullmatch(value):
        raise argparse.ArgumentTypeError(f"is not a stack name ([org/[project/]]stack: letters, digits, '-', '_', '.'), got {value!r}")
    return value


def _kube_context(value: str) -> str:
    if not value.strip() or not value.isprintable():
        raise argparse.ArgumentTypeError(f"must be a context name of your kubeconfig, got {value!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr (argparse prints usage too)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} ({HELP_HINT})")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m tools.verify", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stack", type=_stack, default="dev", help="stack whose outputs to check (default: dev)")
    parser.add_argument("--outputs-json", help="read the outputs from this file instead of `pulumi stack output --json`")
    parser.add_argument("--client-cert", help="PEM client certificate (default: from the cluster's alb-certs secret)")
    parser.add_argument("--client-key", help="PEM key of --client-cert")
    parser.add_argument("--kube-context", type=_kube_context, help="kubeconfig context for kubectl")
    parser.add_argument("--ca-file", help="PEM bundle to verify the ALB (and an nlb-dns gateway) with (default: the system's)")
    parser.add_argument("--gateway-ca-file",
                        help="PEM bundle to verify the gateway with (default: gatewayCertSource=private-ca: ca.crt of "
                             "alb-certs; nlb-dns: as the ALB)")
    parser.add_argument("--connect-to", type=_connect_to, action="append", default=[],
                        metavar="HOST:443:ADDRESS:PORT", help="connect there for HOST (as curl --connect-to)")
    parser.add_argument("--path", type=_path,
                        help=f"path to request on albHost, the httpbin sample (default: {DEFAULT_PATH}); an apps stack "
                             "requests each of its urls as listed")
    parser.add_argument("--expect", type=_status,
                        help=f"status wanted (default: {DEFAULT_STATUS} from the httpbin sample; for apps any answer "
                             f"but {', '.join(map(str, PROXY_FAILURES))}, the ALB's or the gateway's failures)")
    parser.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT,
                        help=f"seconds per request, at most {MAX_TIMEOUT:g} (default: {DEFAULT_TIMEOUT:g})")
    return parser


def _check_connect_to(connect_to: Sequence[Target], stack: StackShape) -> None:
    """Each ``--connect-to`` names a host the checks visit, once: a typo would send a check to
    the real DNS name unnoticed."""
    hosts = {host.lower() for host in [*stack.alb_hosts, stack.gateway]}
    seen: set[str] = set()
    for target in connect_to:
        host = target.host.lower()
        if host not in hosts:
            visited = (
                f"albHost ({stack.alb_host})" if stack.alb_host is not None
                else f"a host of urls ({', '.join(stack.alb_hosts)})"
            )
            raise UsageError(
                f"argument --connect-to: host {target.host} is neither {visited} nor gatewayDomain ({stack.gateway}) ({HELP_HINT})"
            )
        if host in seen:
            raise UsageError(f"argument --connect-to: host {target.host} is given twice ({HELP_HINT})")
        seen.add(host)


def _verify(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if (args.client_cert is None) != (args.client_key is None):
        raise UsageError(f"--client-cert and --client-key go together ({HELP_HINT})")
    outputs = stack_outputs(args.stack, args.outputs_json)
    stack = StackShape.of(outputs)
    if stack.alb_host is None and args.path is not None:
        raise UsageError(
            "argument --path: applies to the httpbin sample's albHost; this stack has apps (stack output urls), "
            f"each requested as listed ({HELP_HINT})"
        )
    _check_connect_to(args.connect_to, stack)
    ca_pem = ca_bundle_from_file(args.ca_file) if args.ca_file is not None else None
    gateway_ca_pem = ca_bundle_from_file(args.gateway_ca_file, "--gateway-ca-file") if args.gateway_ca_file is not None else None
    if stack.private_ca and gateway_ca_pem is None and args.client_cert is not None:
        raise VerifyError(
            "stack output gatewayCertificateNotAfter: the gateway's certificate is issued by the program's CA "
            "(gatewayCertSource=private-ca), which --client-cert does not carry: pass --gateway-ca-file with ca.crt of alb-certs"
        )
    if args.client_cert is not None:
        identity = identity_from_files(args.client_cert, args.client_key)
    else:
        # albCertsSecret is "<namespace>/<name>".
        ref = str(outputs.get("albCertsSecret") or f"istio-system/{specs.ALB_CERTS_SECRET}")
        namespace, _, name = ref.rpartition("/")
        alb_certs = alb_certs_from_cluster(namespace or "istio-system", name, args.kube_context)
        identity = alb_certs.identity
        if stack.private_ca and gateway_ca_pem is None:
            gateway_ca_pem = alb_certs.gateway_ca_pem()
    report = run_checks(
        outputs, identity, ca_pem=ca_pem, gateway_ca_pem=gateway_ca_pem, connect_to=args.connect_to,
        path=args.path or DEFAULT_PATH, expect=args.expect, timeout=args.timeout,
    )
    try:
        print(report.render(), flush=True)
    except OSError as exc:  # stdout closed or a broken pipe: say so once, then stay quiet at exit
        _silence_stdout()
        raise VerifyError(f"cannot write the report to standard output: {_os_reason(exc)}") from None
    return 0 if report.ok else EXIT_FAILED


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _say(message: str) -> None:
    """One line on stderr, whatever the message holds."""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(message.split("\n")))
    with contextlib.suppress(OSError, ValueError):
        print(f"verify: {line}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """The command: 0 when every check passes, 1 when one fails, 2 when they cannot run, 130 on Ctrl-C."""
    try:
        return _verify(argv)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except VerifyError as exc:
        _say(str(exc))
        return EXIT_USAGE
    except Exception as exc:  # a bug: still one line, never a traceback
        _say(f"internal error in tools.verify (please report it): {type(exc).__name__}: {exc}")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
