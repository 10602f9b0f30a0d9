"""The engine tier, step 1: the real tools, built from Go modules by ``engine/provision.sh``.

Opt-in: runs only with ``ENGINE=1`` (a cold provision builds for well over an hour on 2 cores, see
docs/engine.md). It provisions (or finds in the cache) every tool, asserts each binary's version
output against ``engine/versions.env``, runs ``engine/smoke.sh`` (a control plane on 127.0.0.1 with a
Deployment that becomes Available through kwok) and checks that it leaves no process and no temp dir
behind, also when stopped by a signal. A tool that cannot be built fails its test with provision's
one-line error (module, version, go's message): nothing is stubbed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(
        os.environ.get("ENGINE") != "1",
        reason="engine tier is opt-in: ENGINE=1 ./tests/run.sh -m engine (builds the Pulumi CLI, providers and a "
        "control plane from Go modules; docs/engine.md)",
    ),
]


def pinned() -> dict[str, str]:
    """engine/versions.env as a dict (KEY=value lines, # comments)."""
    out: dict[str, str] = {}
    for raw in (ENGINE / "versions.env").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


V = pinned()


@dataclass
class Provisioned:
    bin_dir: Path
    crds_dir: Path
    venv: Path
    returncode: int
    output: str
    seconds: float
    failures: dict[str, str] = field(default_factory=dict)
    #: tools provision took from PATH (ENGINE_USE_PATH=1, the default): any version is theirs to have
    from_path: set[str] = field(default_factory=set)

    def tool(self, name: str, component: str) -> Path:
        """The binary, or the test fails with provision's one-line error for its component."""
        path = self.bin_dir / name
        if component in self.failures:
            pytest.fail(f"{name} was not built: {self.failures[component]}")
        assert path.exists(), f"{path} is missing, and provision reported no failure for {component}:\n{self.output}"
        return path


def provision() -> Provisioned:
    start = time.monotonic()
    proc = subprocess.run(
        [str(ENGINE / "provision.sh")],
        capture_output=True,
        text=True,
        timeout=float(os.environ.get("ENGINE_PROVISION_TIMEOUT", str(4 * 3600))),
        check=False,
    )
    seconds = time.monotonic() - start
    output = proc.stdout + proc.stderr
    bins = re.search(r"^bin: (.+)$", proc.stdout, re.M)
    crds = re.search(r"^crds: (.+)$", proc.stdout, re.M)
    venv = re.search(r"^venv: (.+)$", proc.stdout, re.M)
    assert bins and crds and venv, f"provision printed no bin:/crds:/venv: lines:\n{output}"
    failures = {m.group(1): m.group(2) for m in re.finditer(r"^FAIL (\S+): (.*)$", proc.stderr, re.M)}
    from_path = set(re.findall(r"^ok   (\S+) \(from PATH: ", proc.stderr, re.M))
    return Provisioned(
        Path(bins.group(1)), Path(crds.group(1)), Path(venv.group(1)), proc.returncode, output, seconds, failures,
        from_path,
    )


@pytest.fixture(scope="module")
def tools() -> Provisioned:
    return provision()


def run(*argv: str | Path) -> str:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout + proc.stderr


KUBE = V["KUBERNETES_VERSION"]


@pytest.mark.parametrize(
    ("name", "component", "args", "expected"),
    [
        ("etcd", "etcd", ["--version"], rf"etcd Version: {re.escape(V['ETCD_VERSION'][1:])}\b"),
        ("kube-apiserver", "kubernetes", ["--version"], rf"^Kubernetes {re.escape(KUBE)}$"),
        ("kube-controller-manager", "kubernetes", ["--version"], rf"^Kubernetes {re.escape(KUBE)}$"),
        ("kube-scheduler", "kubernetes", ["--version"], rf"^Kubernetes {re.escape(KUBE)}$"),
        ("kwok", "kwok", ["--version"], rf"\b{re.escape(V['KWOK_VERSION'])}\b"),
        ("pulumi", "pulumi", ["version"], rf"^{re.escape(V['PULUMI_VERSION'])}$"),
        ("pulumi-language-python", "pulumi-language-python", ["-version"], rf"\b{re.escape(V['PULUMI_VERSION'][1:])}\b"),
    ],
)
def test_each_binary_answers_its_pinned_version(
    tools: Provisioned, name: str, component: str, args: list[str], expected: str
) -> None:
    out = run(tools.tool(name, component), *args)
    if name in tools.from_path:
        expected = r"\bv?\d+\.\d+\.\d+"  # the user's own tool: it answers, at whatever version it is
    assert re.search(expected, out.strip(), re.M), f"{name} {' '.join(args)} said:\n{out}"


PROVIDERS = [
    ("pulumi-resource-kubernetes", V["PULUMI_KUBERNETES_VERSION"]),
    ("pulumi-resource-command", V["PULUMI_COMMAND_VERSION"]),
    ("pulumi-resource-tls", V["PULUMI_TLS_VERSION"]),
]


@pytest.mark.parametrize(("name", "version"), PROVIDERS)
def test_each_provider_reports_its_pinned_version_over_grpc(tools: Provisioned, name: str, version: str) -> None:
    """Providers have no --version flag: the engine asks them GetPluginInfo, and so does engine/plugin_version.py."""
    binary = tools.tool(name, name)
    out = run(tools.venv / "bin" / "python", ENGINE / "plugin_version.py", binary)
    assert out.strip() == version or (name in tools.from_path and re.fullmatch(r"v?\d+\.\d+\.\d+\S*", out.strip()))


@pytest.mark.parametrize(("name", "version"), PROVIDERS)
def test_the_cli_loads_each_provider(tools: Provisioned, name: str, version: str, tmp_path: Path) -> None:
    """``pulumi package get-schema <binary>``: the built CLI starts the provider and reads its schema."""
    cli = tools.tool("pulumi", "pulumi")
    binary = tools.tool(name, name)
    env = {**os.environ, "PULUMI_HOME": str(tmp_path), "PULUMI_SKIP_UPDATE_CHECK": "true",
           "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true"}
    proc = subprocess.run([str(cli), "package", "get-schema", str(binary)], capture_output=True, text=True,
                          timeout=120, check=False, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["name"] == name.removeprefix("pulumi-resource-")
    assert schema["version"] == version or name in tools.from_path


def test_kubectl_is_within_one_minor_of_the_server(tools: Provisioned) -> None:
    out = run(tools.tool("kubectl", "kubernetes"), "version", "--client", "-o", "json")
    minor = int(json.loads(out[out.index("{"):])["clientVersion"]["minor"].rstrip("+"))
    assert abs(minor - int(KUBE.split(".")[1])) <= 1, out


def test_language_host_has_its_exec_script_beside_it(tools: Provisioned) -> None:
    host = tools.tool("pulumi-language-python", "pulumi-language-python").resolve()
    assert (host.parent / "pulumi-language-python-exec").is_file()


def test_the_python_policy_analyzer_is_there(tools: Provisioned) -> None:
    assert os.access(tools.tool("pulumi-analyzer-policy-python", "pulumi-analyzer-policy-python"), os.X_OK)


def test_the_crds_come_from_the_pinned_modules(tools: Provisioned) -> None:
    istio = (tools.crds_dir / f"istio-{V['ISTIO_API_VERSION']}.yaml").read_text(encoding="utf-8")
    traefik = (tools.crds_dir / f"traefik-{V['TRAEFIK_VERSION']}.yaml").read_text(encoding="utf-8")
    assert "name: gateways.networking.istio.io" in istio and "name: virtualservices.networking.istio.io" in istio
    assert "name: serverstransports.traefik.io" in traefik


def test_engine_venv_pins_the_sdks_to_the_built_providers() -> None:
    pins = dict(
        re.findall(r"^(pulumi-kubernetes|pulumi-command|pulumi-tls)==(\S+)$",
                   (ENGINE / "requirements.txt").read_text(encoding="utf-8"), re.M)
    )
    assert pins == {
        "pulumi-kubernetes": V["PULUMI_KUBERNETES_VERSION"],
        "pulumi-command": V["PULUMI_COMMAND_VERSION"],
        "pulumi-tls": V["PULUMI_TLS_VERSION"],
    }


def test_engine_venv_has_the_pinned_sdks_installed(tools: Provisioned) -> None:
    python = tools.venv / "bin" / "python"
    if "venv" in tools.failures:
        pytest.fail(f"the engine venv was not made: {tools.failures['venv']}")
    out = run(python, "-c", "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
              "('pulumi-kubernetes', 'pulumi-command', 'pulumi-tls')}))")
    assert json.loads(out) == {
        "pulumi-kubernetes": V["PULUMI_KUBERNETES_VERSION"],
        "pulumi-command": V["PULUMI_COMMAND_VERSION"],
        "pulumi-tls": V["PULUMI_TLS_VERSION"],
    }


def test_a_warm_provision_is_fast_and_the_same(tools: Provisioned) -> None:
    again = provision()
    assert again.seconds < 60, f"warm provision took {again.seconds:.0f}s:\n{again.output}"
    assert sorted(again.failures) == sorted(tools.failures)
    assert again.bin_dir == tools.bin_dir


def leftovers(tmp: str) -> list[str]:
    """Processes whose command line names the smoke test's temp dir."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if tmp in cmdline:
                found.append(f"{proc.name}: {cmdline}")
    return found


def control_plane(tools: Provisioned) -> None:
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"):
        tools.tool(name, "kubernetes" if name.startswith("kube") else name)
    tools.tool("kwok", "kwok")


def test_smoke_cluster_makes_a_deployment_available_and_cleans_up(tools: Provisioned) -> None:
    control_plane(tools)
    proc = subprocess.run(
        [str(ENGINE / "smoke.sh"), str(tools.bin_dir), str(tools.crds_dir)],
        capture_output=True, text=True, timeout=900, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    lines = proc.stdout.splitlines()
    assert lines[-1] == "smoke: ok", out
    for step in ("etcd healthy", "kube-apiserver ready", "CRDs established", "node Ready", "Deployment Available",
                 "Deployment deleted (foreground)", "Namespace finalized"):
        assert any(line.startswith(f"smoke: {step}") for line in lines), f"no '{step}' step:\n{out}"
    assert f"smoke: server {KUBE}" in lines, out
    tmp = re.search(r"^smoke: temp dir (\S+)$", proc.stdout, re.M)
    assert tmp, out
    assert not Path(tmp.group(1)).exists()
    assert leftovers(tmp.group(1)) == []


def test_smoke_cleans_up_when_stopped_by_a_signal(tools: Provisioned) -> None:
    control_plane(tools)
    proc = subprocess.Popen(
        [str(ENGINE / "smoke.sh"), str(tools.bin_dir), str(tools.crds_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    tmp = ""
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("smoke: temp dir "):
            tmp = line.split()[-1]
        if line.startswith("smoke: kube-apiserver ready") or time.monotonic() > deadline:
            break
    assert tmp, "".join(seen)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    out = "".join(seen) + rest
    assert proc.returncode != 0, out
    assert "smoke: FAILED: interrupted by SIGTERM" in out, out
    assert not Path(tmp).exists(), out
    assert leftovers(tmp) == [], out
