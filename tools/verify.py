"""``python -m tools.verify --stack dev``: the recipe's two curls, against a live stack.

1. ``https://httpbin.<albDomain>/status/418`` through the ALB answers 418;
2. ``https://<gatewayDomain>/status/418`` straight to the gateway answers 418 to a client
   holding the ALB's client certificate ...
3. ... and the same address refuses a client without one, at the TLS layer (TLS 1.3: the
   ``certificate_required`` alert; TLS 1.2: a handshake failure after the server's hello);
4. and when the gateway's certificate expires.

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
from typing import NoReturn, TypeVar

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


def https_get(target: Target, path: str, context: ssl.SSLContext, *, timeout: float = DEFAULT_TIMEOUT) -> Answer:
    """GET ``https://<host><path>`` with SNI and Host = host, connecting where ``target`` says."""
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
        connection.request("GET", path, headers={"Host": target.host, "User-Agent": "iks-alb-istio-mtls-verify"})
        response = connection.getresponse()
        return Answer(status=response.status, body=response.read(4096), peer_not_after=not_after, peer=peer)
    except (ssl.SSLError, OSError, http.client.HTTPException) as exc:
        return Answer(error=f"request failed after the handshake: {_ssl_reason(exc)}", peer_not_after=not_after, peer=peer)
    finally:
        connection.close()


def request_without_certificate(
    target: Target, path: str, context: ssl.SSLContext, *, timeout: float = DEFAULT_TIMEOUT
) -> Refusal:
    """GET as :func:`https_get` does, but over memory BIOs, to tell a TLS refusal from anything else.

    Why not ``https_get``: the verdict needs what ``ssl`` sockets hide — whether the server's
    hello arrived before a TLS 1.2 handshake failure (else a port that is not TLS, or a cipher
    mismatch, would pass), and TLS 1.3's alert, which a reset wipes out when the request is
    sent right after the handshake (so the probe first waits briefly for the server's verdict).
    ``context`` must hold no client certificate.
    """
    where = _where(target)
    try:
        raw = socket.create_connection(target.connect, timeout=timeout)
    except OSError as exc:
        return Refusal(False, f"cannot connect to {where}: {_os_reason(exc)}")
    with raw:
        return _Probe(raw, context, target.host, timeout).run(path)


class _Probe:
    """One TLS connection driven by hand: every byte the server sends passes through here."""

    def __init__(self, raw: socket.socket, context: ssl.SSLContext, host: str, timeout: float) -> None:
        self.raw = raw
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
                f"GET {path} HTTP/1.1\r\nHost: {self.tls.server_hostname}\r\n"
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
    for key in ("albHost", "gatewayDomain"):
        value = data.get(key)
        if value is None or value == "":
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
    return dict(data)


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


def identity_from_cluster(namespace: str, secret: str, kube_context: str | None) -> ClientIdentity:
    """The ALB's client certificate from the cluster, as the recipe's ``kubectl get secret`` did."""
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
            return load_identity(
                values[0], values[1], cert_what=f"secret {namespace}/{secret} key {cert_key}",
                key_what=f"secret {namespace}/{secret} key {key_key}",
            )
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


def ca_bundle_from_file(path: str) -> str:
    """The ``--ca-file`` certificates as canonical PEM; empty or certificate-less is an error."""
    what = f"--ca-file {_shown(path)}"
    try:
        return certs.to_pem(certs.parse_certificates(read_input("--ca-file", path), what))
    except certs.CertificateError as exc:
        raise VerifyError(str(exc)) from None


# --- the checks -----------------------------------------------------------------------------------


def run_checks(
    outputs: Mapping[str, object],
    identity: ClientIdentity,
    *,
    ca_pem: str | None = None,
    connect_to: Sequence[Target] = (),
    path: str = DEFAULT_PATH,
    expect: int = DEFAULT_STATUS,
    timeout: float = DEFAULT_TIMEOUT,
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

    accepted = https_get(target(gateway), path, with_cert, timeout=timeout)
    report.add(
        accepted.status == expect,
        f"gateway   https://{gateway}{path} with the ALB client certificate -> {_describe(accepted)} (want {expect})",
    )
    ok, outcome, refusal = refusal_check(accepted, target(gateway), path, anonymous, timeout=timeout)
    report.add(ok, f"gateway   https://{gateway}{path} without a client certificate -> {outcome} (want refused)")

    expiry = accepted.peer_not_after or (refusal.peer_not_after if refusal else None)
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


def refusal_check(
    accepted: Answer, target: Target, path: str, anonymous: ssl.SSLContext, *, timeout: float = DEFAULT_TIMEOUT
) -> tuple[bool, str, Refusal | None]:
    """Does the address that answered the client certificate refuse a client without one?

    Why tied to the accepted request: a refusal proves the gateway demands a certificate only
    where, in the same run, the same address let a certificate through; an address that refuses
    everyone (or is not there) proves nothing.  Returns (passed, outcome, the probe's result).
    """
    if accepted.peer is None:
        return False, f"not checked: the request with the client certificate did not connect ({accepted.error})", None
    same = dataclasses.replace(target, address=accepted.peer[0], address_port=accepted.peer[1])
    refusal = request_without_certificate(same, path, anonymous, timeout=timeout)
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
    parser.add_argument("--ca-file", help="PEM bundle to verify the ALB and gateway with (default: the system's)")
    parser.add_argument("--connect-to", type=_connect_to, action="append", default=[],
                        metavar="HOST:443:ADDRESS:PORT", help="connect there for HOST (as curl --connect-to)")
    parser.add_argument("--path", type=_path, default=DEFAULT_PATH, help=f"path to request (default: {DEFAULT_PATH})")
    parser.add_argument("--expect", type=_status, default=DEFAULT_STATUS, help=f"status wanted (default: {DEFAULT_STATUS})")
    parser.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT,
                        help=f"seconds per request, at most {MAX_TIMEOUT:g} (default: {DEFAULT_TIMEOUT:g})")
    return parser


def _check_connect_to(connect_to: Sequence[Target], outputs: Mapping[str, object]) -> None:
    """Each ``--connect-to`` names a host the checks visit, once: a typo would send a check to
    the real DNS name unnoticed."""
    hosts = {str(outputs["albHost"]).lower(): "albHost", str(outputs["gatewayDomain"]).lower(): "gatewayDomain"}
    seen: set[str] = set()
    for target in connect_to:
        host = target.host.lower()
        if host not in hosts:
            raise UsageError(
                f"argument --connect-to: host {target.host} is neither albHost ({outputs['albHost']}) "
                f"nor gatewayDomain ({outputs['gatewayDomain']}) ({HELP_HINT})"
            )
        if host in seen:
            raise UsageError(f"argument --connect-to: host {target.host} is given twice ({HELP_HINT})")
        seen.add(host)


def _verify(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if (args.client_cert is None) != (args.client_key is None):
        raise UsageError(f"--client-cert and --client-key go together ({HELP_HINT})")
    outputs = stack_outputs(args.stack, args.outputs_json)
    _check_connect_to(args.connect_to, outputs)
    ca_pem = ca_bundle_from_file(args.ca_file) if args.ca_file is not None else None
    if args.client_cert is not None:
        identity = identity_from_files(args.client_cert, args.client_key)
    else:
        # albCertsSecret is "<namespace>/<name>".
        ref = str(outputs.get("albCertsSecret") or f"istio-system/{specs.ALB_CERTS_SECRET}")
        namespace, _, name = ref.rpartition("/")
        identity = identity_from_cluster(namespace or "istio-system", name, args.kube_context)
    report = run_checks(
        outputs, identity, ca_pem=ca_pem, connect_to=args.connect_to, path=args.path,
        expect=args.expect, timeout=args.timeout,
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
