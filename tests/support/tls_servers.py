"""Small servers on 127.0.0.1 for the verdicts of ``tools.verify``: a TLS server that demands a
client certificate (TLS 1.3 or 1.2), one that does not, one that shares no cipher with the client,
a plain-HTTP port, a port that accepts and never answers, and a closed port.

Why our own and not the loopback data plane: each verdict needs one server behaving one way,
started in milliseconds without nginx or Envoy.  Certificates come from the project's builder
(:mod:`tests.support.pki`); a TLS server answers 418 unless told a status per request, and records
each request's SNI, Host and path. Key files live in a private temporary directory (mode 0700) that is
removed when the server stops, and every thread the server started is joined.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import pki

TEAPOT = b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#: How long a server waits on one connection before it gives up on it.
CONNECTION_TIMEOUT = 5.0


@dataclass(frozen=True)
class Material:
    """Throwaway material: an LE-like CA signs the server, a private CA (as the program's) the client."""

    le: pki.LetsEncryptLike
    server: pki.Issued
    client_ca: pki.CA
    client: pki.Issued

    @property
    def anchors_pem(self) -> str:
        """What the client trusts (``--ca-file``)."""
        return self.le.anchors_pem


def make_pki(hosts: Sequence[str]) -> Material:
    """A server certificate for ``hosts`` and a client certificate from another CA."""
    le = pki.letsencrypt_like()
    client_ca = pki.private_ca("Test verify client CA")
    return Material(le, le.issue_leaf(list(hosts)), client_ca, client_ca.issue_client(["alb.test"]))


@dataclass(frozen=True)
class Request:
    """What a client asked a TLS server: the SNI name it sent (None: none), the Host header, the path."""

    sni: str | None
    host: str
    path: str


@dataclass
class Server:
    """A listening port and what happened on it."""

    port: int
    accepted: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)


@contextlib.contextmanager
def private_dir() -> Iterator[Path]:
    """A temporary directory only we can read (0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="verify-test-"))
    try:
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _serve(handle: Callable[[socket.socket, Server], None]) -> Iterator[Server]:
    """Accept on 127.0.0.1 in a thread, each connection handled in its own; all joined at the end."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    server = Server(port=listener.getsockname()[1])
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def work(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(CONNECTION_TIMEOUT)
            try:
                handle(conn, server)
            except (OSError, ValueError) as exc:
                server.errors.append(repr(exc))

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server.accepted.set()
            worker = threading.Thread(target=work, args=(conn,), daemon=True)
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        stop.set()
        acceptor.join(timeout=5)
        listener.close()
        for worker in workers:
            worker.join(timeout=CONNECTION_TIMEOUT + 1)


def _read_request(conn: socket.socket | ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _parse_request(data: bytes, sni: str | None) -> Request:
    head, *fields = data.decode("latin-1").split("\r\n\r\n", 1)[0].split("\r\n")
    parts = head.split(" ")
    host = next((value.strip() for name, _, value in (f.partition(":") for f in fields) if name.lower() == "host"), "")
    return Request(sni, host, parts[1] if len(parts) > 1 else "")


def _response(status: int) -> bytes:
    return f"HTTP/1.1 {status} Status {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()


@contextlib.contextmanager
def tls_server(
    material: Material,
    *,
    require_client_cert: bool,
    version: ssl.TLSVersion | None = None,
    client_ca_pem: str | None = None,
    ciphers: str | None = None,
    status: Callable[[Request], int] | None = None,
) -> Iterator[Server]:
    """HTTPS answering 418 (or ``status`` of the request) to any request; with
    ``require_client_cert``, only to clients holding a certificate from ``client_ca_pem``
    (default: the test PKI's client CA)."""
    with private_dir() as directory:
        cert_file, key_file = directory / "server.crt", directory / "server.key"
        cert_file.write_text(material.server.chain_pem)
        key_file.touch(0o600)
        key_file.write_text(material.server.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        if version is not None:
            context.minimum_version = context.maximum_version = version
        if ciphers is not None:
            context.set_ciphers(ciphers)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=client_ca_pem or pki.pem(material.client_ca.cert))
        sni = threading.local()  # the handshake runs in the connection's own thread

        def remember_sni(_sock: object, name: str | None, _context: object) -> None:
            sni.name = name

        context.sni_callback = remember_sni

        def handle(conn: socket.socket, server: Server) -> None:
            sni.name = None
            try:
                tls = context.wrap_socket(conn, server_side=True)
            except ssl.SSLError as exc:
                server.errors.append(str(exc.reason))
                return
            with tls:
                data = _read_request(tls)
                if data:
                    request = _parse_request(data, sni.name)
                    server.requests.append(request)
                    tls.sendall(TEAPOT if status is None else _response(status(request)))

        with _serve(handle) as server:
            yield server


@contextlib.contextmanager
def plain_http_server() -> Iterator[Server]:
    """A plain-HTTP port: whatever arrives gets 400 Bad Request, as an HTTP server answers a TLS hello."""

    def handle(conn: socket.socket, server: Server) -> None:
        if conn.recv(4096):
            conn.sendall(BAD_REQUEST)

    with _serve(handle) as server:
        yield server


@contextlib.contextmanager
def silent_server(hold: float = 30.0) -> Iterator[Server]:
    """A port that accepts and never answers (until ``hold`` seconds pass or the client leaves)."""

    def handle(conn: socket.socket, server: Server) -> None:
        conn.settimeout(hold)
        with contextlib.suppress(OSError):
            while conn.recv(4096):
                pass

    with _serve(handle) as server:
        yield server


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port nobody listens on (bound, so nobody else takes it meanwhile): connecting is refused."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]
    finally:
        holder.close()
