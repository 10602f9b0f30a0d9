"""``rehearse``: the stack's hop on loopback, driven as a user would run it.

Needs nginx and Envoy like test_dataplane.py (skipped without them, failed with ``CI=true``),
except the tests that are about their absence or about a refusal before the data plane: every bad
argument or stack file is one documented line on stderr (exit status 2), and a signal stops every
process it started and removes its key files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support import documented
from tests.support.cluster import ROOT
from tests.support.dataplane import APPS, app_destination, require_flavor_tools
from tests.support.dataplane import require_tools as _require_tools
from tools import dataplane, rehearse, signals
from tools import dataplane_conf as conf

pytestmark = pytest.mark.dataplane

INTERRUPTED = "every process it started is stopped and its key files are removed"


def run(raw: dict[str, Any], **kwargs: Any) -> tuple[int, list[str]]:
    lines: list[str] = []
    status = rehearse.rehearse({"cluster": "mycluster", **raw}, out=lines.append, **kwargs)
    return status, lines


def checks(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("check")]


def all_ok(lines: list[str]) -> bool:
    return len(checks(lines)) == 4 and all(line.startswith("check      ok ") for line in checks(lines))


@pytest.mark.parametrize(("flavor", "alb_line"), [
    ("nginx", "verify on (depth 3)"),
    ("ibm-legacy", "verify on (depth 3)"),
    ("traefik", "TLS VersionTLS12-VersionTLS13"),
])
def test_rehearsal_passes_the_recipe_checks(flavor: str, alb_line: str) -> None:
    require_flavor_tools(flavor)
    status, lines = run({"albFlavor": flavor, "routes": ["/status", "/headers"]})
    assert status == 0, "\n".join(lines)
    assert all_ok(lines), "\n".join(lines)
    alb = "configured Traefik" if flavor == "traefik" else "configured nginx"
    assert any(line.startswith(alb) and alb_line in line for line in lines), "\n".join(lines)
    assert any(line.startswith("configured Envoy") and "MUTUAL TLS, min TLSV1_2" in line for line in lines)
    assert lines[-1].startswith("stopped") and lines[-1].endswith("key files removed")
    assert not any("PRIVATE KEY" in line for line in lines)


def test_a_gateway_namespace_of_its_own_is_rehearsed() -> None:
    """The nlb-dns certificate secret lands where the stack's gateway reads it (gatewayNamespace)."""
    _require_tools()
    status, lines = run({"gatewayNamespace": "mesh-gateway"})
    assert status == 0, "\n".join(lines)
    assert all_ok(lines), "\n".join(lines)
    assert any(line.startswith("configured Envoy") and "client CA from mesh-gateway/" in line for line in lines)
    assert any(line.startswith("configured nginx") and "client certificate from mesh-gateway/alb-certs" in line for line in lines)


def test_routes_without_status_are_checked_on_a_route_the_stack_has() -> None:
    _require_tools()
    status, lines = run({"routes": ["/anything"]})
    assert status == 0, "\n".join(lines)
    assert all_ok(lines), "\n".join(lines)
    assert "/anything -> 200 (want 200)" in checks(lines)[0], checks(lines)
    assert not any("/status" in line for line in checks(lines))


@pytest.mark.parametrize(("routes", "path"), [
    (["/status"], "/status/418"),
    (["/"], "/status/418"),
    (["/anything", "/status/"], "/status/418"),
    (["/anything", "/headers"], "/anything"),
    (["/status/200"], "/status/200"),
])
def test_the_checked_path(routes: list[str], path: str) -> None:
    assert rehearse.check_path(routes) == path


def test_alb_mode_shows_the_preflight_refusal_without_starting_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_start(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the data plane must not start after the preflight refused")

    monkeypatch.setattr(dataplane.LoopbackDataPlane, "start", no_start)
    status, lines = run({"clientCertSource": "alb"})
    assert status == 1
    refused = [line for line in lines if line.startswith("program    refused")]
    assert len(refused) == 1 and "no clientAuth extended key usage" in refused[0]
    assert "clientCertSource=private-ca" in refused[0]
    assert "--without-preflight" in lines[-1]


def test_alb_mode_without_preflight_shows_envoy_refusing() -> None:
    _require_tools()
    status, lines = run({"clientCertSource": "alb"}, without_preflight=True)
    assert status == 1, "\n".join(lines)
    results = checks(lines)
    assert results[0].startswith("check      FAIL ALB") and "-> 502" in results[0], results
    assert results[1].startswith("check      FAIL gateway") and "refused" in results[1], results
    assert any("preflight skipped on request" in line for line in lines)


def test_missing_tools_say_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataplane, "find_tool", lambda name: (_ for _ in ()).throw(dataplane.ToolMissing("envoy")))
    with pytest.raises(rehearse.CannotRun) as refused:
        run({})
    assert str(refused.value) == f"envoy not found: {dataplane.INSTALL_HINTS['envoy']}"
    for tool in dataplane.INSTALL_HINTS:
        assert documented.is_documented(str(dataplane.ToolMissing(tool))), tool


def test_bad_config_is_named() -> None:
    with pytest.raises(rehearse.CannotRun) as refused:
        run({"routes": ["status"]})
    assert str(refused.value) == "config iks-alb-istio-mtls:routes: entry 'status' is not an absolute path such as /status"


def test_the_command_rehearses_the_dev_stack() -> None:
    """As a user runs it; nothing at all on stderr (once "ValueError: Invalid file descriptor: -1")."""
    _require_tools()
    proc = subprocess.run(
        [sys.executable, "-m", "tools.rehearse", "--stack", "dev"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("check      ok") == 4, proc.stdout
    assert proc.stderr == ""


# --- apps and gatewayCertSource=private-ca ---------------------------------------------------------


def _app_lines(lines: list[str]) -> list[str]:
    return [line for line in checks(lines) if line[len("check      ok   "):].startswith("ALB ")]


@pytest.mark.parametrize("flavor", ["nginx", "traefik"])
def test_a_stack_with_apps_requests_one_path_per_app(flavor: str) -> None:
    require_flavor_tools(flavor)
    status, lines = run({"apps": APPS, "albFlavor": flavor})
    assert status == 0, "\n".join(lines)
    results = checks(lines)
    assert len(results) == len(APPS) + 3 and all(line.startswith("check      ok ") for line in results), "\n".join(lines)
    for app, line in zip(APPS, _app_lines(lines), strict=True):
        # Each app's first path on its host, answered by that app's own stand-in.
        host = app["host"] if "." in app["host"] else f"{app['host']}.mycluster-"  # the rehearsal's own ALB domain
        assert f"ALB       {app['name']}: https://{host}" in line, line
        assert f"{app['paths'][0]} -> 200 from {app_destination(app)} (want 200 from {app_destination(app)})" in line, line
    assert any(line.startswith("stand-ins  namespaces payments exist") for line in lines), "\n".join(lines)
    assert any(line.startswith("stand-ins  custom domains' TLS secrets istio-system/shop-example-tls") for line in lines)
    assert any(line.startswith("configured") and "host shop.example.com: paths /; certificate from secret istio-system/shop-example-tls" in line
               for line in lines), "\n".join(lines)
    gateway = [line for line in results if " gateway " in line]
    assert "with the ALB client certificate -> 200 from " in gateway[0] and "refused" in gateway[1], gateway
    assert lines[-1] == f"stopped    {'Traefik' if flavor == 'traefik' else 'nginx'}, Envoy and the app stand-ins; key files removed"
    assert not any("PRIVATE KEY" in line for line in lines)


def test_an_app_check_fails_when_the_request_reaches_another_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks can fail: with Envoy's two clusters pointing at each other's stand-in (a gateway
    that misroutes), each answer names the other app."""
    _require_tools()
    build = conf.envoy_config

    def misrouted(*args: Any, **kwargs: Any) -> dict[str, Any]:
        config = build(*args, **kwargs)
        first, second = (c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
                         for c in config["static_resources"]["clusters"][:2])
        first["port_value"], second["port_value"] = second["port_value"], first["port_value"]
        return config

    monkeypatch.setattr(conf, "envoy_config", misrouted)
    status, lines = run({"apps": APPS[:2]})
    assert status == 1, "\n".join(lines)
    failed = [line for line in checks(lines) if line.startswith("check      FAIL")]
    assert len(failed) == 3, "\n".join(lines)  # both apps through the ALB, and the gateway's own check
    text = "\n".join(failed)
    assert f"-> 200 from {app_destination(APPS[1])} (want 200 from {app_destination(APPS[0])})" in text, text
    assert f"-> 200 from {app_destination(APPS[0])} (want 200 from {app_destination(APPS[1])})" in text, text


@pytest.mark.parametrize("flavor", ["nginx", "ibm-legacy", "traefik"])
def test_a_private_ca_gateway_is_rehearsed(flavor: str) -> None:
    require_flavor_tools(flavor)
    status, lines = run({"gatewayCertSource": "private-ca", "albFlavor": flavor, "routes": ["/status"]})
    assert status == 0, "\n".join(lines)
    assert all_ok(lines), "\n".join(lines)
    gateway = "istio-ingressgateway.istio-system.svc"
    assert f"gateway   https://{gateway}/status/418 with the ALB client certificate -> 418" in checks(lines)[1], checks(lines)
    assert any(line.startswith("configured Envoy") and "certificate from secret istio-system/alb-mtls-gateway-cert of the rendering" in line
               for line in lines), "\n".join(lines)
    alb = "serverName" if flavor == "traefik" else "proxy_ssl_name"
    assert any(line.startswith("configured") and f"{alb} {gateway}" in line for line in lines), "\n".join(lines)
    assert any("the gateway's certificate is the program's own (private-ca)" in line for line in lines)


def test_the_command_rehearses_apps_and_private_ca() -> None:
    """As a user runs it, with the keys set on the command line over the dev stack's."""
    _require_tools()
    proc = subprocess.run(
        [sys.executable, "-m", "tools.rehearse", "--stack", "dev", "--config", f"apps={json.dumps(APPS)}", "--config", "routes=",
         "--config", "gatewayCertSource=private-ca"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("check      ok") == len(APPS) + 3, proc.stdout
    assert "with the ALB client certificate -> 200 from " in proc.stdout
    assert proc.stderr == ""


# --- bad arguments and stack files: exit 2, one documented line ----------------------------------


@dataclass(frozen=True)
class BadInput:
    """One wrong way to run ``python -m tools.rehearse`` ({p}: a project with broken stack files)."""

    case: str
    args: tuple[str, ...]
    says: str


REHEARSE_BAD: tuple[BadInput, ...] = (
    BadInput("unknown option", ("--out", "x"), "unrecognized arguments: --out x"),
    BadInput("option without value", ("--stack",), "argument --stack: expected one argument"),
    BadInput("--stack a path", ("--stack", "a/b"), "argument --stack: 'a/b' is not a stack name"),
    BadInput("--hold negative", ("--hold", "-1"), "argument --hold: must be from 0 to 3600 seconds, got '-1'"),
    BadInput("--hold above an hour", ("--hold", "3601"), "argument --hold: must be from 0 to 3600 seconds, got '3601'"),
    BadInput("--hold nan", ("--hold", "nan"), "argument --hold: must be from 0 to 3600 seconds, got 'nan'"),
    BadInput("--hold inf", ("--hold", "inf"), "argument --hold: must be from 0 to 3600 seconds, got 'inf'"),
    BadInput("--hold not a number", ("--hold", "soon"), "argument --hold: not a number of seconds: 'soon'"),
    BadInput("--config without =", ("--config", "routes"), "argument --config: expected KEY=VALUE, got 'routes'"),
    BadInput("--project-dir missing", ("--project-dir", "{p}/missing"), "argument --project-dir: {p}/missing does not exist"),
    BadInput("stack file missing", ("--stack", "nope", "--project-dir", "{p}"), "{p}/Pulumi.nope.yaml does not exist"),
    BadInput("stack config a list", ("--stack", "list", "--project-dir", "{p}"),
             "{p}/Pulumi.list.yaml: config: holds a list where a mapping of config keys to values belongs"),
    BadInput("stack file not UTF-8", ("--stack", "latin1", "--project-dir", "{p}"), "{p}/Pulumi.latin1.yaml is not UTF-8 text"),
    BadInput("stack file a directory", ("--stack", "dir", "--project-dir", "{p}"), "{p}/Pulumi.dir.yaml is a directory, not a file"),
    BadInput("stack file not YAML", ("--stack", "syntax", "--project-dir", "{p}"), "{p}/Pulumi.syntax.yaml is not valid YAML: "),
    BadInput("Pulumi.yaml not a mapping", ("--project-dir", "{p}/notmap"), "{p}/notmap/Pulumi.yaml: the top level is text"),
    BadInput("a config value the program refuses", ("--config", "routes=status"),
             "config iks-alb-istio-mtls:routes: must be a list of paths"),
)


@pytest.fixture(scope="module")
def rehearse_refusals(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, subprocess.CompletedProcess[str]]]:
    project = tmp_path_factory.mktemp("bad-rehearse")
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    (project / "Pulumi.list.yaml").write_text("config:\n  - iks-alb-istio-mtls:cluster\n")
    (project / "Pulumi.latin1.yaml").write_bytes("config:\n  iks-alb-istio-mtls:cluster: caf\u00e9\n".encode("latin-1"))
    (project / "Pulumi.syntax.yaml").write_text("config: {\n")
    (project / "Pulumi.dir.yaml").mkdir()
    (project / "notmap").mkdir()
    (project / "notmap" / "Pulumi.yaml").write_text("just text\n")
    values = {"p": str(project)}

    def job(bad: BadInput) -> Callable[[], subprocess.CompletedProcess[str]]:
        argv = [sys.executable, "-m", "tools.rehearse", *(a.format(**values) for a in bad.args)]
        return lambda: subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        futures = {bad.case: pool.submit(job(bad)) for bad in REHEARSE_BAD}
        return values, {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("bad", REHEARSE_BAD, ids=lambda b: b.case)
def test_a_bad_argument_or_stack_file_is_one_line_and_exit_2(
    bad: BadInput, rehearse_refusals: tuple[dict[str, str], dict[str, subprocess.CompletedProcess[str]]]
) -> None:
    values, results = rehearse_refusals
    done = results[bad.case]
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert done.stdout == "", "refused before anything is rendered or started"
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rehearse: "), done.stderr
    assert bad.says.format(**values) in lines[0], lines[0]
    message = lines[0][len("rehearse: "):]
    assert documented.is_documented(message), f"docs/troubleshooting.md lacks: {documented.as_documented(message)}"


# --- signals: everything it started is stopped, the key files are gone ---------------------------


def _stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name: [state, ppid, ...]; None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie has stopped


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, children of children included (a process a proxy forks)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {p for p in found if _alive(p)}


class Lines:
    """A pipe read line by line in a thread, so a test can wait for a line with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # end of stream
            self._changed.notify_all()

    def wait_for(self, wanted: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if wanted(line)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                assert left > 0 and "" not in self.lines, "no such line; got:\n" + "\n".join(self.lines)
                self._changed.wait(left)

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "\n".join(self.lines)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def rehearsal() -> Iterator[Callable[..., tuple[subprocess.Popen[str], Lines, Lines]]]:
    """Start ``python -m tools.rehearse`` the way a user does.  When a test fails, what it saw the
    rehearsal start (``family``, ``dirs``) is killed by pid, never by name, and removed."""
    started: list[tuple[subprocess.Popen[str], set[int], list[Path]]] = []

    def start(*args: str, family: set[int], dirs: list[Path]) -> tuple[subprocess.Popen[str], Lines, Lines]:
        ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # e.g. under `cmd &`: let SIGINT through
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.rehearse", "--stack", "dev", *args], cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            preexec_fn=_default_sigint if ignored else None,
        )
        started.append((proc, family, dirs))
        assert proc.stdout is not None and proc.stderr is not None
        return proc, Lines(proc.stdout), Lines(proc.stderr)

    yield start
    for proc, family, dirs in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for pid in family:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for workdir in dirs:
            if workdir.name.startswith("iks-alb-dataplane-"):
                shutil.rmtree(workdir, ignore_errors=True)


def _require_proc() -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to see which processes are alive (Linux)")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: signal.Signals(s).name)
def test_a_signal_while_the_data_plane_runs_stops_all_it_started(
    signum: int, rehearsal: Callable[..., tuple[subprocess.Popen[str], Lines, Lines]]
) -> None:
    _require_tools()
    _require_proc()
    family: set[int] = set()
    dirs: list[Path] = []
    proc, out, err = rehearsal("--hold", "300", family=family, dirs=dirs)
    started = out.wait_for(lambda line: line.startswith("started"), timeout=90)
    pids = [int(pid) for pid in re.findall(r" pid (\d+)", started)]
    match = re.search(r"key files in (\S+) \(mode 0700", started)
    assert len(pids) == 3 and match, started
    workdir = Path(match.group(1))
    family.update(pids)
    dirs.append(workdir)
    out.wait_for(lambda line: line.startswith("holding"), timeout=60)
    family.update(pids, _descendants(proc.pid))
    assert all(_alive(pid) for pid in pids), started
    assert set(pids) <= _descendants(proc.pid), "the pids it printed are the processes it started"
    assert workdir.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in workdir.glob("*.key")) == ["alb-tls.key", "gateway-tls.key", "proxy-tls.key"]

    proc.send_signal(signum)
    assert proc.wait(timeout=60) == 128 + signum
    name = signal.Signals(signum).name
    assert err.text().splitlines() == [f"rehearse: interrupted by {name}: {INTERRUPTED}"]
    assert "Traceback" not in out.text()
    assert [pid for pid in family if _alive(pid)] == []
    assert not workdir.exists()


def test_a_signal_while_the_data_plane_starts_stops_all_it_started(
    rehearsal: Callable[..., tuple[subprocess.Popen[str], Lines, Lines]]
) -> None:
    """SIGINT as soon as the first processes run: the window in which nginx, Envoy and httpbin
    were once left running with three key files in the temporary directory."""
    _require_tools()
    _require_proc()
    family: set[int] = set()
    dirs: list[Path] = []
    proc, out, err = rehearsal("--hold", "300", family=family, dirs=dirs)
    deadline = time.monotonic() + 90
    workdir: Path | None = None
    while workdir is None and time.monotonic() < deadline and proc.poll() is None:
        for pid in _descendants(proc.pid):
            with_cwd = Path(f"/proc/{pid}/cwd")
            try:
                cwd = Path(os.readlink(with_cwd))
            except OSError:
                continue
            if cwd.name.startswith("iks-alb-dataplane-"):  # exec'd in the data plane's directory
                workdir = cwd
        time.sleep(0.005)
    assert workdir is not None, "no process of the data plane appeared"
    dirs.append(workdir)
    family.update(_descendants(proc.pid))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert err.text().splitlines() == [f"rehearse: interrupted by SIGINT: {INTERRUPTED}"]
    assert "Traceback" not in out.text()
    family.update(int(pid) for pid in re.findall(r" pid (\d+)", out.text()))
    assert [pid for pid in family if _alive(pid)] == []
    assert not workdir.exists()


# --- the signal machinery itself, in-process ------------------------------------------------------


def test_a_signal_in_a_held_section_is_raised_when_it_ends() -> None:
    with signals.stop_on_signals(), pytest.raises(signals.Interrupted) as stopped:
        with signals.signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs here, and must not raise yet
            reached = True
        raise AssertionError("not reached")
    assert reached and stopped.value.signum == signal.SIGTERM and stopped.value.exit_status == 143


def test_a_swallowed_signal_is_not_lost() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    with signals.stop_on_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass  # what a library may do with it
        with pytest.raises(signals.Interrupted):
            signals.check_signals()
    assert signal.getsignal(signal.SIGTERM) == previous, "the previous handler is back"
