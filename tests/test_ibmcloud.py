"""components.ibmcloud against a fake ``ibmcloud`` CLI (tests/fake_ibmcloud/ibmcloud).

The module runs as a real subprocess, the way pulumi-command runs it, and every test asserts
exact outcomes: exit code, the one stdout JSON line, the stderr message, and the fake's call
log (what was asked of IBM Cloud, how often).  Poll intervals and timeouts are tiny.
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from components import ibmcloud
from components.ibmcloud import calls
from tests.support.cluster import ROOT
from tests.support.documented import is_documented
from tools import render

pytestmark = pytest.mark.cli

FAKE = ROOT / "tests" / "fake_ibmcloud" / "ibmcloud"

HASH = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
NS = "istio-system"
CASES = {
    "classic": ("mycluster", "169.61.10.5"),
    "vpc": ("myvpc", "1234abcd-us-south.lb.appdomain.cloud"),
}
FAST = ["--poll-initial", "0.05", "--poll-max", "0.2", "--call-timeout", "5", "--attempts", "3"]


def subdomain(cluster: str, counter: int = 1) -> str:
    return f"{cluster}-{HASH}-{counter:04d}.us-south.containers.appdomain.cloud"


def result_line(cluster: str, counter: int = 1, namespace: str = NS) -> str:
    host = subdomain(cluster, counter)
    return json.dumps({"hostname": host, "secretName": host.split(".")[0], "secretNamespace": namespace}) + "\n"


def nlb_args(action: str, kind: str, *extra: str, addresses: list[str] | None = None, timeout: str = "5") -> list[str]:
    cluster, address = CASES[kind]
    args = [action, "--cluster", cluster, "--type", kind]
    for a in addresses or [address]:
        args += ["--address", a]
    return [*args, "--secret-namespace", NS, "--timeout", timeout, *FAST, *extra]


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    def error(self) -> str:
        """The one ``error:`` line."""
        lines = [line for line in self.stderr.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, self.stderr
        return lines[0]


class FakeCloud:
    """The fake CLI's state file plus a way to run the module against it."""

    def __init__(self, tmp_path: Path) -> None:
        self.state_path = tmp_path / "state.json"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        # `#!/usr/bin/env python3` (the fake) and `python3 -m ...` (the stored shell line) resolve
        # here: this interpreter without site-packages, which is fast and proves stdlib-only.
        wrapper = self.bin / "python3"
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -S "$@"\n')
        wrapper.chmod(0o755)
        self.path = os.pathsep.join([str(self.bin), str(FAKE.parent), os.environ.get("PATH", "")])
        self.write(
            {
                "clusters": {
                    "mycluster": {"type": "classic", "id": "c1"},
                    "myvpc": {"type": "vpc", "id": "v1"},
                },
                "status_sequence": [[0, "created"]],
            }
        )

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text())  # type: ignore[no-any-return]

    def write(self, state: dict[str, Any]) -> None:
        self.state_path.write_text(json.dumps(state))

    def set(self, **changes: Any) -> None:
        state = self.state()
        state.update(changes)
        self.write(state)

    def register(self, kind: str, *, counter: int = 7, ips: list[str] | None = None, status: str = "created",
                 namespace: str = NS, created_ago: float = 100.0) -> str:
        """A registration that exists before the test's run (someone else's, or an earlier run's)."""
        cluster, address = CASES[kind]
        host = subdomain(cluster, counter)
        state = self.state()
        state.setdefault("registrations", []).append(
            {
                "subdomain": host,
                "cluster": cluster,
                "type": kind,
                "ips": (ips if ips is not None else [address]) if kind == "classic" else [],
                "lb_host": address if kind == "vpc" else "",
                "secret_name": host.split(".")[0],
                "secret_namespace": namespace,
                "secret_removed": False,
                "created_at": time.time() - created_ago,
                "status_sequence": [[0, status]],
            }
        )
        state["next_counter"] = counter + 1
        self.write(state)
        return host

    def calls(self, *words: str) -> list[list[str]]:
        """argv of every call so far whose argv starts with ``words``."""
        return [c["argv"] for c in self.state().get("calls", []) if c["argv"][: len(words)] == list(words)]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PULUMI_COMMAND_STDOUT", "IBMCLOUD_BIN")}
        env.update(PATH=self.path, FAKE_IBMCLOUD_STATE=str(self.state_path))
        env.update(extra)
        return env

    def run(self, *args: str, env: dict[str, str] | None = None, python: str = sys.executable,
            flags: tuple[str, ...] = ()) -> Run:
        start = time.monotonic()
        proc = subprocess.run(
            [python, *flags, "-m", "components.ibmcloud", *args],
            cwd=ROOT,
            env=env if env is not None else self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        run = Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
        assert "Traceback" not in run.stderr, run.stderr
        return run


@pytest.fixture
def fake(tmp_path: Path) -> FakeCloud:
    return FakeCloud(tmp_path)


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ---------------------------------------------------------------------------------------------
# Pure helpers, imported directly.


def test_parse_classic_rows() -> None:
    rows = [
        {
            "clusterID": "c1",
            "nlbHost": "MyCluster-x-0001.us-south.containers.appdomain.cloud",
            "nlbIPArray": ["169.61.10.5", "169.61.20.5"],
            "nlbSslSecretName": "mycluster-x-0001",
            "nlbSslSecretStatus": "Created",
            "secretNamespace": "istio-system",
        },
        {"nlbHost": "", "nlbIPArray": ["1.1.1.1"]},  # no subdomain: skipped
        "junk",
    ]
    assert ibmcloud.parse_nlb_rows(rows) == [
        ibmcloud.NlbRecord(
            subdomain="mycluster-x-0001.us-south.containers.appdomain.cloud",
            addresses=("169.61.10.5", "169.61.20.5"),
            secret_name="mycluster-x-0001",
            secret_status="created",
            secret_namespace="istio-system",
        )
    ]


def test_parse_vpc_rows() -> None:
    rows = [
        {
            "Nlb": {
                "cluster": "v1",
                "dnsType": "public",
                "lbHostname": "1234abcd-us-south.lb.appdomain.cloud",
                "nlbIPArray": None,
                "nlbSubdomain": "myvpc-x-0002.us-south.containers.appdomain.cloud",
                "secretNamespace": "istio-system",
                "type": "public",
            },
            "secretName": "myvpc-x-0002",
            "secretStatus": "creating",
        }
    ]
    (record,) = ibmcloud.parse_nlb_rows(rows)
    assert record.subdomain == "myvpc-x-0002.us-south.containers.appdomain.cloud"
    assert record.addresses == ("1234abcd-us-south.lb.appdomain.cloud",)
    assert record.lb_hostname == "1234abcd-us-south.lb.appdomain.cloud"
    assert (record.secret_name, record.secret_status, record.secret_namespace) == ("myvpc-x-0002", "creating", NS)


def test_parse_rows_null_and_garbage() -> None:
    assert ibmcloud.parse_nlb_rows(None) == []
    assert ibmcloud.parse_nlb_rows([]) == []
    with pytest.raises(ibmcloud.IbmCloudError, match="expected a list"):
        ibmcloud.parse_nlb_rows({"error": "x"})


def test_backoff_schedule_doubles_and_caps() -> None:
    assert list(islice(ibmcloud.backoff(0.5, 4), 7)) == [0.5, 1, 2, 4, 4, 4, 4]
    assert list(islice(ibmcloud.backoff(5, 60), 6)) == [5, 10, 20, 40, 60, 60]
    with pytest.raises(ValueError, match="bad backoff"):
        next(ibmcloud.backoff(0, 1))
    with pytest.raises(ValueError, match="bad backoff"):
        next(ibmcloud.backoff(2, 1))


@pytest.mark.parametrize(
    ("kind", "addresses"),
    [("classic", ["169.61.10.5"]), ("classic", ["169.61.10.5", "169.61.20.5"]), ("vpc", ["1234abcd-us-south.lb.appdomain.cloud"])],
)
@pytest.mark.parametrize("action", ibmcloud.ACTIONS)
def test_command_line_round_trips_through_the_parser(action: str, kind: str, addresses: list[str]) -> None:
    line = ibmcloud.command_line(
        action, cluster="My_Cluster.eu-de-1", cluster_type=kind, addresses=addresses,
        secret_namespace=NS, timeout_seconds=1800,
    )
    argv = shlex.split(line)
    assert argv[:4] == ["python3", "-m", "components.ibmcloud", action]
    assert not any(os.path.isabs(word) for word in argv)
    args = ibmcloud.build_parser().parse_args(argv[3:])
    assert (args.action, args.cluster, args.cluster_type, args.addresses, args.secret_namespace, args.timeout) == (
        action, "My_Cluster.eu-de-1", kind, addresses, NS, 1800.0,
    )


def test_command_line_refuses_what_the_parser_would_refuse() -> None:
    """A line pulumi-command stores must run at delete time: a value the parser refuses never gets stored."""
    for cluster in ["my cluster's; $(rm -rf /)", "", " ", "-c", "a\nb"]:
        with pytest.raises(ValueError, match="^cluster "):
            ibmcloud.command_line("delete", cluster=cluster, cluster_type="classic", addresses=["1.2.3.4"],
                                  secret_namespace=NS, timeout_seconds=10)
        with pytest.raises(SystemExit):
            ibmcloud.build_parser().parse_args(["delete", "--cluster", cluster, "--type", "classic",
                                                "--address", "1.2.3.4"])


def test_command_line_exact_text() -> None:
    line = ibmcloud.command_line(
        "create", cluster="mycluster", cluster_type="classic", addresses=["1.2.3.4"],
        secret_namespace="istio-system", timeout_seconds=1800,
    )
    assert line == (
        "python3 -m components.ibmcloud create --cluster mycluster --type classic --address 1.2.3.4 "
        "--secret-namespace istio-system --timeout 1800"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "destroy"}, "action must be"),
        ({"cluster_type": "iks"}, "cluster_type must be"),
        ({"addresses": []}, "non-empty"),
        ({"addresses": "1.2.3.4"}, "non-empty"),
        ({"cluster_type": "vpc", "addresses": ["a.example", "b.example"]}, "exactly one"),
        ({"timeout_seconds": 0}, "positive"),
        ({"cluster": ""}, "^cluster must not be empty$"),
        ({"secret_namespace": ""}, "^secret_namespace must not be empty$"),
        ({"secret_namespace": "Istio"}, "^secret_namespace is not a Kubernetes namespace name"),
        ({"addresses": ["gw.example.com"]}, "^address 'gw.example.com' is not an IP address"),
        ({"cluster_type": "vpc", "addresses": ["1.2.3.4"]}, "^address '1.2.3.4' is not a hostname"),
    ],
)
def test_command_line_rejects_bad_input(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {
        "action": "create", "cluster": "c", "cluster_type": "classic", "addresses": ["1.2.3.4"],
        "secret_namespace": NS, "timeout_seconds": 10,
    }
    base.update(kwargs)
    action = base.pop("action")
    with pytest.raises(ValueError, match=message):
        ibmcloud.command_line(action, **base)


def test_parse_result() -> None:
    line = result_line("mycluster")
    assert ibmcloud.parse_result(line) == ibmcloud.NlbResult(subdomain("mycluster"), f"mycluster-{HASH}-0001", NS)
    assert ibmcloud.parse_result("noise\n" + line + "\n\n").hostname == subdomain("mycluster")
    assert ibmcloud.NlbResult(subdomain("mycluster"), f"mycluster-{HASH}-0001", NS).to_json() + "\n" == line
    for bad in ["", "not json", "[]", '{"hostname": "h", "secretName": ""}', '{"hostname": 1}']:
        with pytest.raises(ValueError):  # any ValueError: the wording varies per case
            ibmcloud.parse_result(bad)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Not logged in. Use 'ibmcloud login' to log in.", "not-logged-in"),
        ("Session expired. Use 'ibmcloud login' to log in again.", "not-logged-in"),
        ("'ks' is not a registered command. See 'ibmcloud help'.", "plugin-missing"),
        ("The specified cluster could not be found. If applicable, ... (G0004)", "cluster-not-found"),
        ("The specified cluster could not be found. (A0006)", "cluster-not-found"),
        ("500 Internal Server Error", "transient"),
        ("Request failed with status code: 503, Service Unavailable", "transient"),
        ("Get https://containers.cloud.ibm.com/...: net/http: TLS handshake timeout", "transient"),
        ("This action requires the Editor role for the cluster in IBM Cloud Kubernetes Service. (A0008)", "error"),
        ("The IP address 1.2.3.4 is not registered with NLB subdomain x.", "error"),
    ],
)
def test_classify(message: str, kind: str) -> None:
    assert ibmcloud.classify(message) == kind


def test_is_gone_only_for_the_thing_itself() -> None:
    assert ibmcloud.is_gone("The IP address 1.2.3.4 is not registered with NLB subdomain x.")
    assert ibmcloud.is_gone("The secret for NLB subdomain x was not found in cluster c.")
    assert not ibmcloud.is_gone("The specified cluster could not be found. (G0004)")
    assert not ibmcloud.is_gone("This action requires the Editor role (A0008)")


def test_listed_ingress_secrets() -> None:
    rows = [
        {"cluster": "c", "name": "s", "namespace": NS, "crn": "crn:x", "status": "created"},
        {"cluster": "c", "name": "s", "namespace": "default", "status": "Deleted"},  # gone, whatever the case
        {"cluster": "c", "name": "t", "namespace": "default", "status": "deleting"},
        {"name": "", "namespace": NS},
        "junk",
    ]
    assert ibmcloud.listed_ingress_secrets(rows) == {(NS, "s")}
    assert ibmcloud.listed_ingress_secrets(None) == set()
    with pytest.raises(ibmcloud.IbmCloudError, match="expected a list"):
        ibmcloud.listed_ingress_secrets({"name": "s"})


def test_cli_message_drops_noise() -> None:
    stderr = "FAILED\nThe specified cluster could not be found. (G0004)\n\nIncident ID: 1234\n"
    assert ibmcloud.cli_message("", stderr) == "The specified cluster could not be found. (G0004)"
    assert ibmcloud.cli_message("OK\n", "") == "(no output)"
    assert ibmcloud.cli_message("FAILED\n\x1b[31mboom\x1b[0m\n", "") == "boom"


def test_parse_created_subdomain() -> None:
    host = subdomain("mycluster")
    assert ibmcloud.parse_created_subdomain(f"OK\nNLB hostname was created as {host}\n") == host
    assert ibmcloud.parse_created_subdomain(f"OK\nNLB hostname created: {host}") == host
    vpc = CASES["vpc"][1]
    text = f"Creating subdomain for {vpc}...\nOK\nNLB hostname was created as {subdomain('myvpc')}\n"
    assert ibmcloud.parse_created_subdomain(text, exclude=[vpc]) == subdomain("myvpc")
    assert ibmcloud.parse_created_subdomain("OK\n") is None
    assert ibmcloud.parse_created_subdomain("registered 169.61.10.5\nOK") is None


def test_parse_cluster_ingress_both_shapes() -> None:
    new = {"ingress": {"hostname": "c.us-south.containers.appdomain.cloud", "secretName": "c-0000"}}
    old = {"ingressHostname": "c.us-south.containers.appdomain.cloud", "ingressSecretName": "c-0000"}
    expected = ibmcloud.AlbInfo("c.us-south.containers.appdomain.cloud", "c-0000")
    assert ibmcloud.parse_cluster_ingress(new, "c") == expected
    assert ibmcloud.parse_cluster_ingress(old, "c") == expected
    both = {"ingress": {"hostname": "", "secretName": ""}, **old}
    assert ibmcloud.parse_cluster_ingress(both, "c") == expected
    with pytest.raises(ibmcloud.IbmCloudError, match=r"no Ingress subdomain and Ingress secret.*IBM says: pending"):
        ibmcloud.parse_cluster_ingress({"ingress": {"status": "pending"}}, "c")
    with pytest.raises(ibmcloud.IbmCloudError, match="no Ingress secret"):
        ibmcloud.parse_cluster_ingress({"ingressHostname": "c.example"}, "c")


def test_call_builders_build_the_cli_syntax() -> None:
    """Each ``ibmcloud`` call word for word; the module runs these lists and the render lists them."""
    c = "my cluster"
    assert calls.CLUSTER_TYPES == ibmcloud.CLUSTER_TYPES == ("classic", "vpc")
    assert calls.nlb_dns_ls(c) == ["ks", "nlb-dns", "ls", "--cluster", c, "--output", "json"]
    assert calls.nlb_dns_create(c, "classic", ["1.2.3.4", "5.6.7.8"], NS) == [
        "ks", "nlb-dns", "create", "classic", "--cluster", c, "--ip", "1.2.3.4", "--ip", "5.6.7.8",
        "--secret-namespace", NS]
    assert calls.nlb_dns_create(c, "vpc", ["lb.example"], NS) == [
        "ks", "nlb-dns", "create", "vpc-gen2", "--cluster", c, "--lb-host", "lb.example", "--secret-namespace", NS]
    assert calls.nlb_dns_add(c, ["1.2.3.4"], "h.example") == [
        "ks", "nlb-dns", "add", "--cluster", c, "--ip", "1.2.3.4", "--nlb-host", "h.example"]
    assert calls.nlb_dns_rm_classic(c, "1.2.3.4", "h.example") == [
        "ks", "nlb-dns", "rm", "classic", "--cluster", c, "--ip", "1.2.3.4", "--nlb-host", "h.example"]
    assert calls.nlb_dns_rm_vpc(c, "h.example") == [
        "ks", "nlb-dns", "rm", "vpc-gen2", "--cluster", c, "--nlb-subdomain", "h.example"]
    assert calls.nlb_dns_secret_rm(c, "h.example") == [
        "ks", "nlb-dns", "secret", "rm", "--cluster", c, "--nlb-subdomain", "h.example"]
    assert calls.ingress_secret_get(c, "s", NS) == [
        "ks", "ingress", "secret", "get", "--cluster", c, "--name", "s", "--namespace", NS, "--output", "json"]
    assert calls.ingress_secret_create(c, "s", NS, "crn:x") == [
        "ks", "ingress", "secret", "create", "--cluster", c, "--cert-crn", "crn:x", "--name", "s", "--namespace", NS]
    assert calls.ingress_secret_update(c, "s", NS, "crn:x") == [
        "ks", "ingress", "secret", "update", "--cluster", c, "--name", "s", "--namespace", NS, "--cert-crn", "crn:x"]
    assert calls.ingress_secret_rm(c, "s", NS) == [
        "ks", "ingress", "secret", "rm", "--cluster", c, "--name", "s", "--namespace", NS]
    assert calls.ingress_secret_ls(c) == ["ks", "ingress", "secret", "ls", "--cluster", c, "--output", "json"]
    assert calls.cluster_get(c) == ["ks", "cluster", "get", "--cluster", c, "--output", "json"]
    with pytest.raises(ValueError, match="exactly one"):
        calls.nlb_dns_create(c, "vpc", ["a.example", "b.example"], NS)
    with pytest.raises(ValueError, match="cluster_type must be"):
        calls.nlb_dns_create(c, "iks", ["1.2.3.4"], NS)
    with pytest.raises(ValueError, match="non-empty"):
        calls.nlb_dns_create(c, "classic", "1.2.3.4", NS)
    with pytest.raises(ValueError, match="non-empty"):
        calls.nlb_dns_add(c, [], "h.example")


PACKAGE = ROOT / "components" / "ibmcloud"


def test_package_imports_only_the_standard_library() -> None:
    """pulumi-command runs ``python3 -m components.ibmcloud`` outside the virtualenv: stdlib only.

    Relative imports may name the package's own modules and nothing else; ``components/__init__.py``,
    which that command imports first, imports nothing.
    """
    modules = sorted(PACKAGE.glob("*.py"))
    own = {path.stem for path in modules}
    assert {"__init__", "__main__", "calls"} <= own
    names: set[str] = set()
    for path in modules:
        tree = ast.parse(path.read_text())
        assert "annotations" in {a.name for n in tree.body if isinstance(n, ast.ImportFrom)
                                 and n.module == "__future__" for a in n.names}, path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, f"{path.name}: only the package's own modules"
                targets = [node.module] if node.module else [alias.name for alias in node.names]
                assert set(targets) <= own, f"{path.name}: {targets}"
            elif isinstance(node, ast.ImportFrom):
                names.add((node.module or "").split(".")[0])
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names - set(sys.stdlib_module_names)
    parent = ast.parse((ROOT / "components" / "__init__.py").read_text())
    assert not [n for n in ast.walk(parent) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_fake_is_executable() -> None:
    assert os.access(FAKE, os.X_OK)
    assert FAKE.read_text().startswith("#!/usr/bin/env python3\n")


# ---------------------------------------------------------------------------------------------
# create: register, wait, print one line.


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_create_happy_path(fake: FakeCloud, kind: str) -> None:
    cluster, address = CASES[kind]
    fake.set(status_sequence=[[0, "creating"], [0.15, "created"]])
    run = fake.run(*nlb_args("create", kind))
    assert run.rc == 0, run.stderr
    assert run.stdout == result_line(cluster)
    flag = ["--ip", address] if kind == "classic" else ["--lb-host", address]
    flavour = "classic" if kind == "classic" else "vpc-gen2"
    assert fake.calls("ks", "nlb-dns", "create") == [
        ["ks", "nlb-dns", "create", flavour, "--cluster", cluster, *flag, "--secret-namespace", NS]
    ]
    assert f"registered {address} as {subdomain(cluster)}" in run.stderr
    assert f"waiting for the certificate of {subdomain(cluster)}: status 'creating'" in run.stderr
    assert f"certificate for {subdomain(cluster)} is ready (status 'created'" in run.stderr
    (reg,) = fake.state()["registrations"]
    assert reg["secret_namespace"] == NS


def test_create_classic_multizone_registers_every_ip_once(fake: FakeCloud) -> None:
    ips = ["169.61.10.5", "169.61.20.5", "169.61.30.5"]
    run = fake.run(*nlb_args("create", "classic", addresses=ips))
    assert run.rc == 0, run.stderr
    assert run.stdout == result_line("mycluster")
    assert fake.calls("ks", "nlb-dns", "create") == [
        ["ks", "nlb-dns", "create", "classic", "--cluster", "mycluster",
         "--ip", ips[0], "--ip", ips[1], "--ip", ips[2], "--secret-namespace", NS]
    ]
    assert fake.state()["registrations"][0]["ips"] == ips


def test_create_through_the_shell_line_pulumi_command_stores(fake: FakeCloud) -> None:
    line = ibmcloud.command_line(
        "create", cluster="mycluster", cluster_type="classic", addresses=["169.61.10.5"],
        secret_namespace=NS, timeout_seconds=30,
    )
    proc = subprocess.run(["/bin/sh", "-c", line], cwd=ROOT, env=fake.env(), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == result_line("mycluster")


def test_create_runs_without_site_packages(fake: FakeCloud) -> None:
    run = fake.run(*nlb_args("create", "classic"), flags=("-S", "-E"))
    assert run.rc == 0, run.stderr
    assert run.stdout == result_line("mycluster")


def _python39() -> str | None:
    """A working Python 3.9 (the oldest the module supports), if this machine has one."""
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(os.path.join(pyenv, "versions", "3.9*", "bin", "python3.9")))
    candidates += [p for p in [shutil.which("python3.9")] if p]
    for candidate in candidates:
        try:
            proc = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                                  capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            continue
        if proc.stdout.strip() == "True":
            return candidate
    return None


PYTHON39 = _python39()


@pytest.mark.skipif(PYTHON39 is None, reason="no Python 3.9 on this machine")
@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_create_and_delete_on_python39(fake: FakeCloud, kind: str) -> None:
    python = PYTHON39
    assert python is not None
    run = fake.run(*nlb_args("create", kind), python=python)
    assert run.rc == 0, run.stderr
    assert run.stdout == result_line(CASES[kind][0])
    gone = fake.run(*nlb_args("delete", kind), python=python, env=fake.env(PULUMI_COMMAND_STDOUT=run.stdout))
    assert gone.rc == 0, gone.stderr


# ---------------------------------------------------------------------------------------------
# Adoption: never a second registration for the same load balancer.


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_adopts_an_existing_registration(fake: FakeCloud, kind: str) -> None:
    cluster, address = CASES[kind]
    host = fake.register(kind, counter=7)
    run = fake.run(*nlb_args("create", kind))
    assert run.rc == 0, run.stderr
    assert run.stdout == result_line(cluster, counter=7)
    assert fake.calls("ks", "nlb-dns", "create") == []
    assert f"adopting existing registration: {address} already registered to {host}" in run.stderr
    assert len(fake.state()["registrations"]) == 1


def test_adopts_and_adds_the_missing_zone_ip(fake: FakeCloud) -> None:
    host = fake.register("classic", counter=3, ips=["169.61.10.5"])
    run = fake.run(*nlb_args("create", "classic", addresses=["169.61.10.5", "169.61.20.5"]))
    assert run.rc == 0, run.stderr
    assert run.stdout == result_line("mycluster", counter=3)
    assert fake.calls("ks", "nlb-dns", "create") == []
    assert fake.calls("ks", "nlb-dns", "add") == [
        ["ks", "nlb-dns", "add", "--cluster", "mycluster", "--ip", "169.61.20.5", "--nlb-host", host]
    ]
    assert fake.state()["registrations"][0]["ips"] == ["169.61.10.5", "169.61.20.5"]


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_retried_create_after_a_failed_wait_adopts_its_own_registration(fake: FakeCloud, kind: str) -> None:
    cluster, _ = CASES[kind]
    fake.set(status_sequence=[[0, "creating"]])
    first = fake.run(*nlb_args("create", kind, timeout="0.3"))
    assert first.rc == 1
    assert first.stdout == ""
    assert subdomain(cluster) in first.error()
    state = fake.state()
    state["registrations"][0]["status_sequence"] = [[0, "created"]]
    fake.write(state)
    second = fake.run(*nlb_args("create", kind))
    assert second.rc == 0, second.stderr
    assert second.stdout == result_line(cluster)
    assert "adopting existing registration" in second.stderr
    assert len(fake.calls("ks", "nlb-dns", "create")) == 1
    assert len(fake.state()["registrations"]) == 1


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_create_that_failed_transiently_but_registered_is_adopted(fake: FakeCloud, kind: str) -> None:
    fake.set(faults=[{"match": "nlb-dns create", "kind": "fail", "after": True, "times": 1,
                      "message": "502 Bad Gateway"}])
    run = fake.run(*nlb_args("create", kind))
    assert run.rc == 0, run.stderr
    assert run.stdout == result_line(CASES[kind][0])
    assert "502 Bad Gateway" in run.stderr
    assert len(fake.calls("ks", "nlb-dns", "create")) == 1
    assert len(fake.state()["registrations"]) == 1


def test_create_that_hung_is_killed_and_retried_once(fake: FakeCloud) -> None:
    fake.set(faults=[{"match": "nlb-dns create", "kind": "hang", "seconds": 30, "times": 1}])
    run = fake.run(*nlb_args("create", "classic", "--call-timeout", "0.5"))
    assert run.rc == 0, run.stderr
    assert run.seconds < 10
    assert run.stdout == result_line("mycluster")
    assert len(fake.calls("ks", "nlb-dns", "create")) == 2
    assert "(no answer within 0.5s (call killed)); attempt 2 in 0.05s" in run.stderr
    assert len(fake.state()["registrations"]) == 1
    assert_gone(fake.state()["calls"][1]["pid"])


def test_create_that_keeps_failing_transiently_looks_before_each_retry(fake: FakeCloud) -> None:
    """The create is never repeated blindly: after each transient failure `ls` looks whether it registered."""
    fake.set(faults=[{"match": "nlb-dns create", "times": -1, "message": "503 Service Unavailable"}])
    run = fake.run(*nlb_args("create", "classic"))
    assert run.rc == 1
    assert run.stdout == ""
    assert run.error() == (
        "error: `ibmcloud ks nlb-dns create classic --cluster mycluster --ip 169.61.10.5 --secret-namespace "
        f"{NS}` kept failing (3 attempts); last error: 503 Service Unavailable. Check https://cloud.ibm.com/status "
        "and run again"
    )
    assert "(503 Service Unavailable); attempt 2 in 0.05s" in run.stderr
    assert "(503 Service Unavailable); attempt 3 in 0.10s" in run.stderr
    assert [c[2] for c in fake.calls("ks", "nlb-dns")] == ["ls", "create", "ls", "create", "ls", "create", "ls"]
    assert fake.state().get("registrations", []) == []


def test_refuses_addresses_split_over_two_subdomains(fake: FakeCloud) -> None:
    fake.register("classic", counter=1, ips=["169.61.10.5"])
    fake.register("classic", counter=2, ips=["169.61.20.5"])
    run = fake.run(*nlb_args("create", "classic", addresses=["169.61.10.5", "169.61.20.5"]))
    assert run.rc == 1
    assert "registered to different nlb-dns subdomains" in run.error()
    assert fake.calls("ks", "nlb-dns", "create") == []


def test_refuses_to_adopt_a_secret_in_another_namespace(fake: FakeCloud) -> None:
    host = fake.register("classic", namespace="default")
    run = fake.run(*nlb_args("create", "classic"))
    assert run.rc == 1
    assert host in run.error()
    assert "namespace 'default', not 'istio-system'" in run.error()


# ---------------------------------------------------------------------------------------------
# Waiting for the certificate.


def test_wait_backs_off_and_sees_readiness_within_one_poll_interval(fake: FakeCloud) -> None:
    flip = 1.0
    fake.set(status_sequence=[[0, "creating"], [flip, "created"]])
    run = fake.run(*nlb_args("create", "classic"))
    assert run.rc == 0, run.stderr
    host = subdomain("mycluster")
    progress = re.findall(
        rf"waiting for the certificate of {re.escape(host)}: status 'creating', (\d+\.\d)s elapsed, "
        r"next check in (\d+\.\d+)s",
        run.stderr,
    )
    assert len(progress) >= 3
    intervals = [float(p[1]) for p in progress]
    assert intervals[:3] == [0.05, 0.1, 0.2]
    assert max(intervals) == 0.2
    elapsed = [float(p[0]) for p in progress]
    assert elapsed == sorted(elapsed)

    state = fake.state()
    flipped_at = state["registrations"][0]["created_at"] + flip
    polls = [c["time"] for c in state["calls"] if c["argv"][2] == "ls"][1:]  # after the pre-create look
    # The backoff bounds the calls: 0, .05, .15, .35, .55, .75, .95, 1.15 -> at most 8 polls.
    assert 3 <= len(polls) <= 8
    # The fake stamps a call a moment before it evaluates the status, so a poll stamped just
    # before the flip may already see it: the last poll is the one that saw it, all earlier
    # ones came before the flip, and it came within one poll interval (+ one CLI call).
    skew = 0.05
    assert all(t < flipped_at + skew for t in polls[:-1]), "stops at the first poll that sees the certificate"
    assert -skew <= polls[-1] - flipped_at <= 0.2 + 0.15


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_older_wording_pending_then_enabled(fake: FakeCloud, kind: str) -> None:
    fake.set(status_sequence=[[0, "pending"], [0.1, "enabled"]])
    run = fake.run(*nlb_args("create", kind))
    assert run.rc == 0, run.stderr
    assert "status 'pending'" in run.stderr
    assert "ready (status 'enabled'" in run.stderr


def test_regenerating_keeps_waiting(fake: FakeCloud) -> None:
    fake.set(status_sequence=[[0, "regenerating"], [0.1, "created"]])
    run = fake.run(*nlb_args("create", "classic"))
    assert run.rc == 0, run.stderr
    assert "status 'regenerating'" in run.stderr


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_rate_limited_stops_at_once(fake: FakeCloud, kind: str) -> None:
    fake.set(status_sequence=[[0, "rate_limited"]])
    run = fake.run(*nlb_args("create", kind, timeout="60"))
    assert run.rc == 1
    assert run.stdout == ""
    message = run.error()
    assert subdomain(CASES[kind][0]) in message
    assert "Let's Encrypt refused" in message
    assert "after some days" in message
    assert run.seconds < 5
    assert len(fake.calls("ks", "nlb-dns", "ls")) == 2  # the look before create, one poll


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_timeout_names_the_subdomain_and_last_status(fake: FakeCloud, kind: str) -> None:
    fake.set(status_sequence=[[0, "creating"]])
    run = fake.run(*nlb_args("create", kind, timeout="0.4"))
    assert run.rc == 1
    assert run.stdout == ""
    assert run.error().startswith(
        f"error: the certificate for {subdomain(CASES[kind][0])} was not ready after 0.4s (last status: 'creating')"
    )
    assert run.seconds < 5


# ---------------------------------------------------------------------------------------------
# delete


@pytest.mark.parametrize("kind", ["classic", "vpc"])
@pytest.mark.parametrize("with_stdout", [True, False], ids=["stored-result", "lookup-by-address"])
def test_delete_removes_registration_and_secret(fake: FakeCloud, kind: str, with_stdout: bool) -> None:
    cluster, address = CASES[kind]
    created = fake.run(*nlb_args("create", kind))
    assert created.rc == 0, created.stderr
    host = subdomain(cluster)
    env = fake.env(PULUMI_COMMAND_STDOUT=created.stdout) if with_stdout else fake.env()
    before = len(fake.state()["calls"])
    run = fake.run(*nlb_args("delete", kind), env=env)
    assert run.rc == 0, run.stderr
    assert run.stdout == ""
    rm = (["ks", "nlb-dns", "rm", "classic", "--cluster", cluster, "--ip", address, "--nlb-host", host]
          if kind == "classic" else ["ks", "nlb-dns", "rm", "vpc-gen2", "--cluster", cluster, "--nlb-subdomain", host])
    assert [c["argv"] for c in fake.state()["calls"][before:]] == [
        ["ks", "nlb-dns", "ls", "--cluster", cluster, "--output", "json"],
        rm,
        ["ks", "nlb-dns", "secret", "rm", "--cluster", cluster, "--nlb-subdomain", host],
    ]
    (reg,) = fake.state()["registrations"]
    assert reg["ips"] == [] and reg["lb_host"] == "" and reg["secret_removed"] is True
    assert (f"(found by `nlb-dns ls`; the stored result names {host})" in run.stderr) is with_stdout


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_delete_twice_is_fine(fake: FakeCloud, kind: str) -> None:
    created = fake.run(*nlb_args("create", kind))
    env = fake.env(PULUMI_COMMAND_STDOUT=created.stdout)
    assert fake.run(*nlb_args("delete", kind), env=env).rc == 0
    before = len(fake.state()["calls"])
    again = fake.run(*nlb_args("delete", kind), env=env)
    assert again.rc == 0, again.stderr
    assert [c["argv"][2] for c in fake.state()["calls"][before:]] == ["ls"]
    assert "already" in again.stderr
    without = fake.run(*nlb_args("delete", kind))
    assert without.rc == 0, without.stderr
    assert "nothing to delete" in without.stderr


def test_delete_of_an_unlisted_stored_subdomain_succeeds(fake: FakeCloud) -> None:
    """The fresh look decides: a stored subdomain `ls` does not list has nothing left to remove."""
    run = fake.run(*nlb_args("delete", "classic"), env=fake.env(PULUMI_COMMAND_STDOUT=result_line("mycluster")))
    assert run.rc == 0, run.stderr
    assert [c[2] for c in fake.calls("ks", "nlb-dns")] == ["ls"]
    assert f"the stored subdomain {subdomain('mycluster')} is not listed by `nlb-dns ls`" in run.stderr
    assert "nothing is registered for 169.61.10.5: nothing to delete" in run.stderr


def test_delete_keeps_the_secret_of_a_subdomain_still_serving_others(fake: FakeCloud) -> None:
    host = fake.register("classic", ips=["169.61.10.5", "169.61.99.9"])
    run = fake.run(*nlb_args("delete", "classic"))
    assert run.rc == 0, run.stderr
    assert fake.calls("ks", "nlb-dns", "rm") == [
        ["ks", "nlb-dns", "rm", "classic", "--cluster", "mycluster", "--ip", "169.61.10.5", "--nlb-host", host]
    ]
    assert fake.calls("ks", "nlb-dns", "secret") == []
    assert "169.61.99.9 (not ours): keeping its certificate secret" in run.stderr


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_delete_fails_on_a_real_rm_error_with_the_cli_message(fake: FakeCloud, kind: str) -> None:
    created = fake.run(*nlb_args("create", kind))
    message = ("You are not authorized: this action requires the Editor role for the cluster in "
               "IBM Cloud Kubernetes Service. (A0008)")
    fake.set(faults=[{"match": "nlb-dns rm", "kind": "fail", "times": -1, "message": message}])
    run = fake.run(*nlb_args("delete", kind), env=fake.env(PULUMI_COMMAND_STDOUT=created.stdout))
    assert run.rc == 1
    cluster, address = CASES[kind]
    assert run.error().startswith("error: `ibmcloud ks nlb-dns rm ")
    assert run.error().endswith(f"failed: {message}; a fresh `nlb-dns ls` still shows {address} on {subdomain(cluster)}")
    assert len(fake.calls("ks", "nlb-dns", "rm")) == 1  # a real error is not retried
    assert [c[2] for c in fake.calls("ks", "nlb-dns")][-2:] == ["rm", "ls"]  # ... but looked at again
    assert fake.calls("ks", "nlb-dns", "secret") == []
    assert is_documented(run.error().removeprefix("error: "))


def _move_by_hand(fake: FakeCloud, kind: str, counter: int, others: list[str] | None = None) -> str:
    """Someone moved our address from the first registration to another subdomain (made for the purpose)."""
    state = fake.state()
    state["registrations"][0].update(ips=[], lb_host="")
    fake.write(state)
    _, address = CASES[kind]
    return fake.register(kind, counter=counter, ips=[address, *(others or [])])


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_delete_removes_an_address_moved_to_another_subdomain(fake: FakeCloud, kind: str) -> None:
    """The stored subdomain is a hint: the registration `ls` finds is the one removed, with its secret;
    the stored one, now empty, loses its secret too.
    """
    cluster, address = CASES[kind]
    created = fake.run(*nlb_args("create", kind))
    assert created.rc == 0, created.stderr
    stored, moved = subdomain(cluster), _move_by_hand(fake, kind, counter=5)
    before = len(fake.state()["calls"])
    run = fake.run(*nlb_args("delete", kind), env=fake.env(PULUMI_COMMAND_STDOUT=created.stdout))
    assert run.rc == 0, run.stderr
    rm = (calls.nlb_dns_rm_classic(cluster, address, moved) if kind == "classic"
          else calls.nlb_dns_rm_vpc(cluster, moved))
    assert [c["argv"] for c in fake.state()["calls"][before:]] == [
        calls.nlb_dns_ls(cluster), rm, calls.nlb_dns_secret_rm(cluster, moved), calls.nlb_dns_secret_rm(cluster, stored),
    ]
    for reg in fake.state()["registrations"]:
        assert (reg["ips"], reg["lb_host"], reg["secret_removed"]) == ([], "", True), reg
    assert f"{address} registered to {moved}, not to the stored subdomain (moved by hand?)" in run.stderr
    assert f"the stored subdomain {stored} no longer holds {address}" in run.stderr


def test_delete_keeps_the_secret_where_a_moved_address_has_company(fake: FakeCloud) -> None:
    created = fake.run(*nlb_args("create", "classic"))
    moved = _move_by_hand(fake, "classic", counter=5, others=["169.61.99.9"])
    run = fake.run(*nlb_args("delete", "classic"), env=fake.env(PULUMI_COMMAND_STDOUT=created.stdout))
    assert run.rc == 0, run.stderr
    assert fake.calls("ks", "nlb-dns", "rm") == [calls.nlb_dns_rm_classic("mycluster", "169.61.10.5", moved)]
    assert fake.calls("ks", "nlb-dns", "secret") == [calls.nlb_dns_secret_rm("mycluster", subdomain("mycluster"))]
    first, second = fake.state()["registrations"]
    assert (second["ips"], second["secret_removed"]) == (["169.61.99.9"], False)
    assert first["secret_removed"] is True
    assert f"{moved} still serves 169.61.99.9 (not ours): keeping its certificate secret" in run.stderr


def test_delete_leaves_a_stored_subdomain_that_serves_others_alone(fake: FakeCloud) -> None:
    """A stored result naming someone else's subdomain (state restored from elsewhere) removes nothing there."""
    theirs = fake.register("classic", counter=3, ips=["169.61.99.9"])
    ours = fake.register("classic", counter=4)
    stored = json.dumps({"hostname": theirs, "secretName": "x", "secretNamespace": NS})
    run = fake.run(*nlb_args("delete", "classic"), env=fake.env(PULUMI_COMMAND_STDOUT=stored))
    assert run.rc == 0, run.stderr
    assert fake.calls("ks", "nlb-dns", "rm") == [calls.nlb_dns_rm_classic("mycluster", "169.61.10.5", ours)]
    assert fake.calls("ks", "nlb-dns", "secret") == [calls.nlb_dns_secret_rm("mycluster", ours)]
    assert fake.state()["registrations"][0]["secret_removed"] is False


#: How a removal that took effect (or was done by someone else meanwhile) may fail: none of these
#: is IBM's usual "not found" wording, so only a fresh look can tell.
GONE_WORDINGS: dict[str, dict[str, Any]] = {
    "reworded": {"message": "The requested NLB resource is unavailable. (E0129)"},
    "no-nlb-host-found": {"message": "No NLB host found for this cluster."},
    "exit-code-only": {"silent": True, "rc": 1},
    "odd-exit-code": {"silent": True, "rc": 17},
}
REMOVALS = {
    "classic-rm": ("classic", "nlb-dns rm classic"),
    "vpc-rm": ("vpc", "nlb-dns rm vpc-gen2"),
    "classic-secret-rm": ("classic", "nlb-dns secret rm"),
    "vpc-secret-rm": ("vpc", "nlb-dns secret rm"),
}


@pytest.mark.parametrize("wording", list(GONE_WORDINGS))
@pytest.mark.parametrize("removal", list(REMOVALS))
def test_a_failed_removal_of_what_is_gone_is_success(fake: FakeCloud, removal: str, wording: str) -> None:
    kind, match = REMOVALS[removal]
    created = fake.run(*nlb_args("create", kind))
    fake.set(faults=[{"match": match, "kind": "fail", "after": True, "times": 1, **GONE_WORDINGS[wording]}])
    before = len(fake.state()["calls"])
    run = fake.run(*nlb_args("delete", kind), env=fake.env(PULUMI_COMMAND_STDOUT=created.stdout))
    assert run.rc == 0, run.stderr
    cluster, address = CASES[kind]
    host = subdomain(cluster)
    ls, secret = calls.nlb_dns_ls(cluster), calls.nlb_dns_secret_rm(cluster, host)
    rm = calls.nlb_dns_rm_classic(cluster, address, host) if kind == "classic" else calls.nlb_dns_rm_vpc(cluster, host)
    # The fresh look comes right after the failed call, which is not repeated.
    expected = [ls, secret, ls] if "secret" in match else [ls, ls, secret]
    expected.insert(1, rm)
    made = fake.state()["calls"][before:]
    assert [c["argv"] for c in made] == expected
    assert [c["rc"] for c in made].count(GONE_WORDINGS[wording].get("rc", 1)) == 1
    (reg,) = fake.state()["registrations"]
    assert (reg["ips"], reg["lb_host"], reg["secret_removed"]) == ([], "", True)
    said = GONE_WORDINGS[wording].get("message", "(no output)")
    assert f"said: {said}; a fresh `nlb-dns ls` agrees)" in run.stderr
    assert f"already gone: {'the certificate secret of ' if 'secret' in match else address + ' on '}{host}" in run.stderr


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_a_removal_that_says_not_found_but_is_still_listed_fails(fake: FakeCloud, kind: str) -> None:
    """The CLI's words are not trusted either way: "not found" with the secret still listed is a failure."""
    cluster, _ = CASES[kind]
    created = fake.run(*nlb_args("create", kind))
    message = f"The secret for NLB subdomain {subdomain(cluster)} was not found in cluster {cluster}."
    fake.set(faults=[{"match": "nlb-dns secret rm", "times": -1, "message": message}])
    run = fake.run(*nlb_args("delete", kind), env=fake.env(PULUMI_COMMAND_STDOUT=created.stdout))
    assert run.rc == 1
    assert run.error() == (
        f"error: `ibmcloud ks nlb-dns secret rm --cluster {cluster} --nlb-subdomain {subdomain(cluster)}` failed: "
        f"{message}; a fresh `nlb-dns ls` still shows the certificate secret of {subdomain(cluster)}"
    )
    assert fake.state()["registrations"][0]["secret_removed"] is False
    assert is_documented(run.error().removeprefix("error: "))


def test_a_silent_failed_removal_still_listed_fails_naming_it(fake: FakeCloud) -> None:
    created = fake.run(*nlb_args("create", "classic"))
    fake.set(faults=[{"match": "nlb-dns rm", "times": -1, "silent": True, "rc": 2}])
    run = fake.run(*nlb_args("delete", "classic"), env=fake.env(PULUMI_COMMAND_STDOUT=created.stdout))
    assert run.rc == 1
    assert run.error().endswith(
        f"failed: (no output); a fresh `nlb-dns ls` still shows 169.61.10.5 on {subdomain('mycluster')}"
    )
    assert fake.calls("ks", "nlb-dns", "secret") == []


def test_transient_failures_of_a_removal_that_took_effect_are_success(fake: FakeCloud) -> None:
    """Every try answered 503, but the first had done it: the fresh look after the last one sees it gone."""
    created = fake.run(*nlb_args("create", "classic"))
    fake.set(faults=[
        {"match": "nlb-dns rm", "times": 1, "after": True, "message": "503 Service Unavailable"},
        {"match": "nlb-dns rm", "times": -1, "message": "503 Service Unavailable"},
    ])
    run = fake.run(*nlb_args("delete", "classic"), env=fake.env(PULUMI_COMMAND_STDOUT=created.stdout))
    assert run.rc == 0, run.stderr
    assert [c[2] for c in fake.calls("ks", "nlb-dns")][3:] == ["ls", "rm", "rm", "rm", "ls", "secret"]  # after create's
    assert "already gone: 169.61.10.5 on" in run.stderr


def test_a_failed_fresh_look_reports_the_removal_error(fake: FakeCloud) -> None:
    created = fake.run(*nlb_args("create", "classic"))
    message = "This action requires the Editor role for the cluster in IBM Cloud Kubernetes Service. (A0008)"
    fake.set(faults=[
        {"match": "nlb-dns rm", "times": -1, "message": message},
        {"match": "nlb-dns ls", "times": -1, "skip": 1, "message": "503 Service Unavailable"},
    ])
    run = fake.run(*nlb_args("delete", "classic"), env=fake.env(PULUMI_COMMAND_STDOUT=created.stdout))
    assert run.rc == 1
    assert run.error().endswith(f"failed: {message}")
    assert "could not take a fresh look after the failed removal (" in run.stderr
    assert [c[2] for c in fake.calls("ks", "nlb-dns")][-5:] == ["ls", "rm", "ls", "ls", "ls"]


GARBLED_STDOUT = {
    "not-json": "garbage",
    "deeply-nested": "[" * 100_000,
    "wrong-types": '{"hostname": 5, "secretName": [], "secretNamespace": null}',
    "not-a-hostname": '{"hostname": "x; rm -rf /", "secretName": "s", "secretNamespace": "istio-system"}',
    "undecodable": "\udcff\udcfe{",
    "truncated": result_line("mycluster")[:40],
    "a-list": "[1, 2, 3]",
}


@pytest.mark.parametrize("case", list(GARBLED_STDOUT))
def test_delete_with_an_unreadable_stored_result_lets_the_fresh_look_decide(fake: FakeCloud, case: str) -> None:
    created = fake.run(*nlb_args("create", "classic"))
    assert created.rc == 0, created.stderr
    run = fake.run(*nlb_args("delete", "classic"), env=fake.env(PULUMI_COMMAND_STDOUT=GARBLED_STDOUT[case]))
    assert run.rc == 0, run.stderr
    assert "ignoring PULUMI_COMMAND_STDOUT (" in run.stderr
    assert "rm -rf" not in run.stderr  # not echoed
    (reg,) = fake.state()["registrations"]
    assert (reg["ips"], reg["secret_removed"]) == ([], True)
    assert f"removing 169.61.10.5 from {subdomain('mycluster')} (found by `nlb-dns ls`)" in run.stderr


# ---------------------------------------------------------------------------------------------
# update: pulumi-command runs it when an unrelated input changes.


@pytest.mark.parametrize("kind", ["classic", "vpc"])
def test_update_keeps_the_stored_result(fake: FakeCloud, kind: str) -> None:
    created = fake.run(*nlb_args("create", kind))
    before = len(fake.state()["calls"])
    run = fake.run(*nlb_args("update", kind, timeout="99"), env=fake.env(PULUMI_COMMAND_STDOUT=created.stdout))
    assert run.rc == 0, run.stderr
    assert run.stdout == created.stdout
    assert [c["argv"][2] for c in fake.state()["calls"][before:]] == ["ls"]
    assert "keeping the stored registration" in run.stderr


def test_update_keeps_the_stored_result_even_if_names_were_renamed_since(fake: FakeCloud) -> None:
    host = fake.register("classic", counter=4)
    stored = json.dumps({"hostname": host, "secretName": "custom-name", "secretNamespace": NS})
    run = fake.run(*nlb_args("update", "classic"), env=fake.env(PULUMI_COMMAND_STDOUT=stored + "\n"))
    assert run.rc == 0, run.stderr
    assert run.stdout == stored + "\n"


def test_update_does_not_block_on_a_renewal(fake: FakeCloud) -> None:
    host = fake.register("classic", counter=4, status="regenerating")
    stored = json.dumps({"hostname": host, "secretName": host.split(".")[0], "secretNamespace": NS}) + "\n"
    run = fake.run(*nlb_args("update", "classic"), env=fake.env(PULUMI_COMMAND_STDOUT=stored))
    assert run.rc == 0, run.stderr
    assert run.stdout == stored
    assert [c[2] for c in fake.calls()] == ["ls"]
    assert "certificate status 'regenerating' (renewal under way?)" in run.stderr


def test_update_without_a_usable_stored_result_behaves_like_create(fake: FakeCloud) -> None:
    fake.register("classic", counter=5)
    run = fake.run(*nlb_args("update", "classic"), env=fake.env(PULUMI_COMMAND_STDOUT="garbage"))
    assert run.rc == 0, run.stderr
    assert run.stdout == result_line("mycluster", counter=5)
    assert "ignoring PULUMI_COMMAND_STDOUT" in run.stderr
    assert "adopting existing registration" in run.stderr
    assert fake.calls("ks", "nlb-dns", "create") == []


def test_update_registers_again_when_the_stored_subdomain_lost_the_address(fake: FakeCloud) -> None:
    host = fake.register("classic", counter=1, ips=[])
    stored = json.dumps({"hostname": host, "secretName": host.split(".")[0], "secretNamespace": NS})
    run = fake.run(*nlb_args("update", "classic"), env=fake.env(PULUMI_COMMAND_STDOUT=stored))
    assert run.rc == 0, run.stderr
    assert run.stdout == result_line("mycluster", counter=2)
    assert len(fake.calls("ks", "nlb-dns", "create")) == 1


# ---------------------------------------------------------------------------------------------
# discover


@pytest.mark.parametrize("shape", ["new", "old"])
def test_discover_both_json_shapes(fake: FakeCloud, shape: str) -> None:
    state = fake.state()
    state["clusters"]["mycluster"].update(ingress_shape=shape, ingress_hostname="mycluster-0000.eu-de.containers.appdomain.cloud",
                                          ingress_secret="mycluster-0000")
    fake.write(state)
    run = fake.run("discover", "--cluster", "mycluster", *FAST)
    assert run.rc == 0, run.stderr
    assert run.stdout == json.dumps(
        {"albDomain": "mycluster-0000.eu-de.containers.appdomain.cloud", "albSecret": "mycluster-0000"}
    ) + "\n"
    assert fake.calls() == [["ks", "cluster", "get", "--cluster", "mycluster", "--output", "json"]]


def test_discover_missing_is_a_clear_error(fake: FakeCloud) -> None:
    state = fake.state()
    state["clusters"]["mycluster"]["ingress_shape"] = "none"
    fake.write(state)
    run = fake.run("discover", "--cluster", "mycluster", *FAST)
    assert run.rc == 1
    assert run.error().startswith("error: cluster 'mycluster' reports no Ingress subdomain and Ingress secret")
    assert "albDomain and albSecret" in run.error()


def test_discover_alb_function(fake: FakeCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in fake.env(IBMCLOUD_BIN=str(FAKE)).items():
        monkeypatch.setenv(key, value)
    info = ibmcloud.discover_alb("myvpc", timeout=10)
    assert info == ibmcloud.AlbInfo(f"myvpc-{HASH}-0000.us-south.containers.appdomain.cloud", f"myvpc-{HASH}-0000")
    assert (info.domain, info.secret) == tuple(info)
    with pytest.raises(ibmcloud.IbmCloudError, match="cluster 'nope' not found"):
        ibmcloud.discover_alb("nope", timeout=10)


def test_discover_alb_respects_its_timeout(fake: FakeCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.set(faults=[{"match": "cluster get", "kind": "hang", "seconds": 30, "times": -1}])
    for key, value in fake.env(IBMCLOUD_BIN=str(FAKE)).items():
        monkeypatch.setenv(key, value)
    start = time.monotonic()
    with pytest.raises(ibmcloud.IbmCloudError, match="no answer within"):
        ibmcloud.discover_alb("mycluster", timeout=1.0)
    assert time.monotonic() - start < 5
    for call in fake.state()["calls"]:
        assert_gone(call["pid"])


# ---------------------------------------------------------------------------------------------
# Faults


FATAL: dict[str, tuple[dict[str, Any], str]] = {
    "not-logged-in": ({"logged_in": False}, "Run `ibmcloud login`"),
    "no-plugin": ({"ks_plugin": False}, "Run `ibmcloud plugin install container-service`"),
    "unknown-cluster": ({"clusters": {}}, "Check the name with `ibmcloud ks cluster ls`"),
}


@pytest.mark.parametrize("fault", list(FATAL))
@pytest.mark.parametrize("action", ["create", "update", "delete", "discover"])
def test_fatal_faults_fail_at_once_with_the_fix(fake: FakeCloud, fault: str, action: str) -> None:
    changes, hint = FATAL[fault]
    fake.set(**changes)
    args = ["discover", "--cluster", "mycluster", *FAST] if action == "discover" else nlb_args(action, "classic")
    run = fake.run(*args)
    assert run.rc == 1
    assert run.stdout == ""
    assert hint in run.error()
    assert len(fake.state()["calls"]) == 1
    assert run.seconds < 5


def test_not_logged_in_quotes_ibm(fake: FakeCloud) -> None:
    fake.set(logged_in=False)
    run = fake.run(*nlb_args("create", "classic"))
    assert "said: Not logged in. Use 'ibmcloud login' to log in." in run.error()


def test_transient_5xx_is_retried_then_succeeds(fake: FakeCloud) -> None:
    fake.set(faults=[{"match": "nlb-dns ls", "times": 2, "message": "500 Internal Server Error"}])
    run = fake.run(*nlb_args("create", "classic"))
    assert run.rc == 0, run.stderr
    assert run.stdout == result_line("mycluster")
    assert "(500 Internal Server Error); attempt 2/3 in 0.05s" in run.stderr
    assert "(500 Internal Server Error); attempt 3/3 in 0.10s" in run.stderr
    rcs = [c["rc"] for c in fake.state()["calls"] if c["argv"][2] == "ls"]
    assert rcs[:3] == [1, 1, 0]


def test_transient_forever_fails_quoting_the_last_message(fake: FakeCloud) -> None:
    fake.set(faults=[{"match": "nlb-dns ls", "times": -1, "message": "503 Service Unavailable: upstream overloaded"}])
    run = fake.run(*nlb_args("create", "classic"))
    assert run.rc == 1
    assert "kept failing (3 attempts); last error: 503 Service Unavailable: upstream overloaded" in run.error()
    assert len(fake.state()["calls"]) == 3


def test_hung_call_is_killed_and_retried(fake: FakeCloud) -> None:
    fake.set(faults=[{"match": "nlb-dns ls", "kind": "hang", "seconds": 30, "times": 1}])
    run = fake.run(*nlb_args("create", "classic", "--call-timeout", "0.5"))
    assert run.rc == 0, run.stderr
    assert run.stdout == result_line("mycluster")
    assert "no answer within 0.5s (call killed)" in run.stderr
    assert run.seconds < 10
    assert_gone(fake.state()["calls"][0]["pid"])


def test_sigterm_stops_the_running_call_too(fake: FakeCloud) -> None:
    fake.set(faults=[{"match": "nlb-dns ls", "kind": "hang", "seconds": 30, "times": 1}])
    proc = subprocess.Popen(
        [sys.executable, "-m", "components.ibmcloud", *nlb_args("create", "classic", "--call-timeout", "20")],
        cwd=ROOT, env=fake.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not fake.state().get("calls") and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert stdout == ""
    assert "error: interrupted" in stderr and "Traceback" not in stderr
    assert_gone(fake.state()["calls"][0]["pid"])


def test_ibmcloud_missing(fake: FakeCloud) -> None:
    run = fake.run(*nlb_args("create", "classic"), env=fake.env(PATH=str(fake.bin)))
    assert run.rc == 1
    assert run.error().startswith("error: the IBM Cloud CLI `ibmcloud` is not on PATH: install it")


def test_ibmcloud_bin_override(fake: FakeCloud) -> None:
    run = fake.run(*nlb_args("create", "classic"), env=fake.env(PATH=str(fake.bin), IBMCLOUD_BIN=str(FAKE)))
    assert run.rc == 0, run.stderr
    bad = fake.run(*nlb_args("create", "classic"), env=fake.env(IBMCLOUD_BIN=str(fake.bin / "nope")))
    assert bad.rc == 1
    assert "IBMCLOUD_BIN=" in bad.error()


# ---------------------------------------------------------------------------------------------
# Bad arguments: exit 2, one line naming the argument, no call, never a traceback.


def _with(args: list[str], flag: str, value: str) -> list[str]:
    """``args`` with the value of ``flag`` replaced (``flag`` must occur once)."""
    i = args.index(flag)
    return [*args[: i + 1], value, *args[i + 2 :]]


def _argparse_says(argv: list[str], **kwargs: Any) -> str:
    """argparse's own words for a bad ``--type`` (their quoting changed in Python 3.12.8)."""
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--type", **kwargs)
    with pytest.raises(argparse.ArgumentError) as caught:
        parser.parse_args(argv)
    return str(caught.value)


DELETE = nlb_args("delete", "classic")
VPC_DELETE = nlb_args("delete", "vpc")
UNMIRROR = ["unmirror-secret", "--cluster", "mycluster", "--name", "s", "--from-namespace", "default", "--namespace", NS]
HELP = "(see `python3 -m components.ibmcloud delete --help`)"

#: case -> (argv, the one stderr line without "error: " and the help hint).
BAD_ARGS: dict[str, tuple[list[str], str]] = {
    "empty secret namespace": (_with(DELETE, "--secret-namespace", ""), "argument --secret-namespace: must not be empty"),
    "blank secret namespace": (_with(DELETE, "--secret-namespace", "  "),
                               "argument --secret-namespace: must not be only whitespace"),
    "secret namespace not a name": (_with(DELETE, "--secret-namespace", "Istio_System"),
                                    "argument --secret-namespace: is not a Kubernetes namespace name (lower-case "
                                    "letters, digits, '-'; at most 63): 'Istio_System'"),
    "empty cluster": (_with(DELETE, "--cluster", ""), "argument --cluster: must not be empty"),
    "blank cluster": (_with(DELETE, "--cluster", " \t"), "argument --cluster: must not be only whitespace"),
    "flag-like cluster": (["delete", "--cluster=-x", *DELETE[3:]],
                          "argument --cluster: must not start with '-' (it would read as a flag): '-x'"),
    "cluster with a line break": (_with(DELETE, "--cluster", "my\ncluster"),
                                  "argument --cluster: holds a control character (a line break or tab pasted with "
                                  "it?): 'my\\ncluster'"),
    "cluster with spaces": (_with(DELETE, "--cluster", "my cluster"),
                            "argument --cluster: is not an IKS cluster name or ID (letters, digits, '.', '_', '-'; "
                            "at most 100): 'my cluster'"),
    "cluster twice": ([*DELETE, "--cluster", "other"], "argument --cluster: given more than once"),
    "namespace twice": ([*DELETE, "--secret-namespace", "default"], "argument --secret-namespace: given more than once"),
    "classic address not an IP": (_with(DELETE, "--address", "gw.example.com"),
                                  "argument --address: 'gw.example.com' is not an IP address (classic clusters "
                                  "register NLB IPs)"),
    "vpc address not a hostname": (_with(VPC_DELETE, "--address", "10.0.0.1/24"),
                                   "argument --address: '10.0.0.1/24' is not a hostname (VPC load balancers have a "
                                   "hostname)"),
    "empty address": (_with(DELETE, "--address", ""), "argument --address: must not be empty"),
    "address with blanks": (_with(DELETE, "--address", " 169.61.10.5"),
                            "argument --address: holds blanks or control characters: ' 169.61.10.5'"),
    "two vpc addresses": ([*VPC_DELETE, "--address", "other-us-south.lb.appdomain.cloud"],
                          "argument --address: --type vpc takes exactly one: the VPC load balancer hostname"),
    "negative timeout": (_with(DELETE, "--timeout", "-5"), "argument --timeout: must be a positive number of seconds: '-5'"),
    "zero timeout": (_with(DELETE, "--timeout", "0"), "argument --timeout: must be a positive number of seconds: '0'"),
    "infinite timeout": (_with(DELETE, "--timeout", "inf"), "argument --timeout: must be a finite number of seconds: 'inf'"),
    "nan timeout": (_with(DELETE, "--timeout", "nan"), "argument --timeout: must be a finite number of seconds: 'nan'"),
    "timeout not a number": (_with(DELETE, "--timeout", "30m"), "argument --timeout: not a number: '30m'"),
    "zero call timeout": (_with(DELETE, "--call-timeout", "0"),
                          "argument --call-timeout: must be a positive number of seconds: '0'"),
    "negative call timeout": (_with(DELETE, "--call-timeout", "-1"),
                              "argument --call-timeout: must be a positive number of seconds: '-1'"),
    "huge call timeout": (_with(DELETE, "--call-timeout", "1e12"),
                          "argument --call-timeout: must be at most 86400 seconds: '1e12'"),
    "spinning poll": (_with(DELETE, "--poll-initial", "1e-300"),
                      "argument --poll-initial: must be at least 0.01 seconds: '1e-300'"),
    "zero poll": (_with(DELETE, "--poll-initial", "0"), "argument --poll-initial: must be a positive number of seconds: '0'"),
    "poll max below initial": (_with(_with(DELETE, "--poll-initial", "2"), "--poll-max", "1"),
                               "argument --poll-max: must be at least --poll-initial"),
    "zero attempts": (_with(DELETE, "--attempts", "0"), "argument --attempts: must be from 1 to 100: '0'"),
    "many attempts": (_with(DELETE, "--attempts", "1000"), "argument --attempts: must be from 1 to 100: '1000'"),
    "fractional attempts": (_with(DELETE, "--attempts", "1.5"), "argument --attempts: not a whole number: '1.5'"),
    "unknown type": (_with(DELETE, "--type", "iks"), _argparse_says(["--type", "iks"], choices=("classic", "vpc"))),
    "missing address": ([w for w in DELETE if w not in ("--address", CASES["classic"][1])],
                        "the following arguments are required: --address"),
    "abbreviated flag": (["delete", "--clus", "mycluster", *DELETE[3:]], "the following arguments are required: --cluster"),
    "unknown argument": ([*DELETE, "--force"], "unrecognized arguments: --force"),
}
BAD_MIRROR_ARGS: dict[str, tuple[list[str], str]] = {
    "empty secret name": (_with(UNMIRROR, "--name", ""), "argument --name: must not be empty"),
    "secret name not a name": (_with(UNMIRROR, "--name", "My.Secret"),
                               "argument --name: is not a Kubernetes secret name (lower-case letters, digits, '-', "
                               "'.'; at most 253): 'My.Secret'"),
    "empty namespace": (_with(UNMIRROR, "--namespace", ""), "argument --namespace: must not be empty"),
    "empty source namespace": (_with(UNMIRROR, "--from-namespace", ""), "argument --from-namespace: must not be empty"),
    "same namespaces": (_with(UNMIRROR, "--namespace", "default"),
                        "argument --namespace: must differ from --from-namespace (the secret is already there)"),
}


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("case", list(BAD_ARGS))
def test_bad_arguments_are_one_line_and_exit_2(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv, message = BAD_ARGS[case]
    with pytest.raises(SystemExit) as exited:
        ibmcloud.main(argv)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert _one_line(err) == f"error: {message} {HELP}"


@pytest.mark.parametrize("case", list(BAD_MIRROR_ARGS))
def test_bad_mirror_arguments_are_one_line_and_exit_2(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv, message = BAD_MIRROR_ARGS[case]
    with pytest.raises(SystemExit) as exited:
        ibmcloud.main(argv)
    assert exited.value.code == 2
    assert _one_line(capsys.readouterr().err) == (
        f"error: {message} (see `python3 -m components.ibmcloud unmirror-secret --help`)"
    )


@pytest.mark.parametrize(
    "argv",
    [[], ["destroy"], ["delete"], ["--cluster", "c"], ["delete", "--timeout"], ["\udcff"],
     _with(DELETE, "--cluster", "\udcff\x00"), _with(DELETE, "--timeout", "9" * 5000), _with(DELETE, "--address", "::1%\n")],
    ids=["nothing", "unknown-action", "no-flags", "flag-first", "flag-without-value", "undecodable-action",
         "undecodable-cluster", "enormous-number", "scoped-ipv6-line-break"],
)
def test_garbled_command_lines_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        ibmcloud.main(argv)
    assert exited.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: ") and line.endswith(" --help`)"), line


def test_bad_arguments_through_a_real_process(fake: FakeCloud) -> None:
    """As pulumi-command sees it: exit 2, one stderr line, nothing asked of IBM Cloud (not even a lookup)."""
    for argv, message in [BAD_ARGS["empty secret namespace"], BAD_ARGS["negative timeout"],
                          BAD_ARGS["zero call timeout"], BAD_MIRROR_ARGS["empty namespace"]]:
        run = fake.run(*argv, env=fake.env(PATH=str(fake.bin)))  # no ibmcloud on PATH: never got that far
        assert run.rc == 2, run.stderr
        assert run.stdout == ""
        assert _one_line(run.stderr).startswith(f"error: {message} (see `python3 -m components.ibmcloud ")
    assert not fake.state().get("calls")


@pytest.mark.skipif(PYTHON39 is None, reason="no Python 3.9 on this machine")
def test_bad_arguments_on_python39(fake: FakeCloud) -> None:
    """The same one line on the oldest Python the module supports (its argparse is older)."""
    python = PYTHON39
    assert python is not None
    for case, (argv, message) in BAD_ARGS.items():
        if case == "unknown type":  # argparse's own quoting differs between versions
            continue
        run = fake.run(*argv, python=python, flags=("-S",))
        assert (run.rc, run.stdout) == (2, ""), (case, run.stderr)
        assert _one_line(run.stderr) == f"error: {message} {HELP}", case
    assert not fake.state().get("calls")


def test_bad_arguments_are_documented() -> None:
    missing = [case for case, (_, message) in {**BAD_ARGS, **BAD_MIRROR_ARGS}.items()
               if not is_documented(f"{message} {HELP}")]
    assert not missing, missing


# ---------------------------------------------------------------------------------------------
# mirror-secret / unmirror-secret: an IKS-managed copy of the ALB's TLS secret.

ALB_SECRET = f"mycluster-{HASH}-0000"
ALB_CRN = f"crn:v1:bluemix:public:secrets-manager:us-south:a/acct:inst:secret:{ALB_SECRET}"
MIRROR = ["--cluster", "mycluster", "--name", ALB_SECRET, "--from-namespace", "default", "--namespace", NS, *FAST]


def test_mirror_command_line_round_trips() -> None:
    for action in ibmcloud.MIRROR_ACTIONS:
        line = ibmcloud.mirror_command_line(action, cluster="My_Cluster.1", name="s.tls", source_namespace="default",
                                            namespace=NS)
        argv = shlex.split(line)
        assert argv[:4] == ["python3", "-m", "components.ibmcloud", action]
        args = ibmcloud.build_parser().parse_args(argv[3:])
        assert (args.action, args.cluster, args.name, args.from_namespace, args.namespace) == (
            action, "My_Cluster.1", "s.tls", "default", NS,
        )
    for bad in [{"cluster": "my cluster"}, {"name": ""}, {"name": "S"}, {"namespace": "-n"}, {"source_namespace": " "}]:
        kwargs = {"cluster": "c", "name": "s", "source_namespace": "default", "namespace": NS, **bad}
        with pytest.raises(ValueError, match=f"^{next(iter(bad))} "):
            ibmcloud.mirror_command_line("unmirror-secret", **kwargs)
    with pytest.raises(ValueError, match="must differ"):
        ibmcloud.mirror_command_line("mirror-secret", cluster="c", name="s", source_namespace=NS, namespace=NS)
    with pytest.raises(ValueError, match="action must be"):
        ibmcloud.mirror_command_line("create", cluster="c", name="s", source_namespace="default", namespace=NS)


def test_parse_mirror_result() -> None:
    assert ibmcloud.parse_mirror_result(json.dumps({"secretName": "s", "namespace": NS, "crn": "crn:x"})) == "s"
    for bad in ["", "x", "{}", '{"secretName": ""}']:
        with pytest.raises(ValueError, match="mirror result"):
            ibmcloud.parse_mirror_result(bad)


def _ingress_calls(fake: FakeCloud) -> list[str]:
    return [c[3] for c in fake.calls("ks", "ingress", "secret")]


def test_mirror_secret_copies_then_is_idempotent(fake: FakeCloud) -> None:
    run = fake.run("mirror-secret", *MIRROR)
    assert run.rc == 0, run.stderr
    assert run.stdout == json.dumps({"secretName": ALB_SECRET, "namespace": NS, "crn": ALB_CRN}) + "\n"
    assert fake.calls("ks", "ingress", "secret", "create") == [
        ["ks", "ingress", "secret", "create", "--cluster", "mycluster", "--cert-crn", ALB_CRN, "--name", ALB_SECRET,
         "--namespace", NS]
    ]
    again = fake.run("mirror-secret", *MIRROR)
    assert again.rc == 0, again.stderr
    assert again.stdout == run.stdout
    assert _ingress_calls(fake) == ["get", "get", "create", "get", "get"]
    copies = [x for x in fake.state()["ingress_secrets"] if x["namespace"] == NS]
    assert copies == [{"cluster": "mycluster", "name": ALB_SECRET, "namespace": NS, "crn": ALB_CRN, "status": "created"}]


def test_mirror_secret_repoints_a_stale_copy(fake: FakeCloud) -> None:
    fake.set(ingress_secrets=[
        {"cluster": "mycluster", "name": ALB_SECRET, "namespace": "default", "crn": ALB_CRN},
        {"cluster": "mycluster", "name": ALB_SECRET, "namespace": NS, "crn": "crn:old"},
    ])
    run = fake.run("mirror-secret", *MIRROR)
    assert run.rc == 0, run.stderr
    assert _ingress_calls(fake) == ["get", "get", "update"]
    assert fake.state()["ingress_secrets"][1]["crn"] == ALB_CRN


def test_unmirror_secret_is_idempotent(fake: FakeCloud) -> None:
    assert fake.run("mirror-secret", *MIRROR).rc == 0
    run = fake.run("unmirror-secret", *MIRROR)
    assert run.rc == 0, run.stderr
    assert run.stdout == ""
    assert [x for x in fake.state()["ingress_secrets"] if x["namespace"] == NS] == []
    again = fake.run("unmirror-secret", *MIRROR)
    assert again.rc == 0, again.stderr
    assert "already gone" in again.stderr


@pytest.mark.parametrize("wording", list(GONE_WORDINGS))
def test_unmirror_that_failed_but_is_gone_is_success(fake: FakeCloud, wording: str) -> None:
    assert fake.run("mirror-secret", *MIRROR).rc == 0
    fake.set(faults=[{"match": "ingress secret rm", "after": True, "times": 1, **GONE_WORDINGS[wording]}])
    before = len(fake.state()["calls"])
    run = fake.run("unmirror-secret", *MIRROR)
    assert run.rc == 0, run.stderr
    assert [c["argv"] for c in fake.state()["calls"][before:]] == [
        calls.ingress_secret_rm("mycluster", ALB_SECRET, NS), calls.ingress_secret_ls("mycluster"),
    ]
    assert [x for x in fake.state()["ingress_secrets"] if x["namespace"] == NS] == []
    said = GONE_WORDINGS[wording].get("message", "(no output)")
    assert f"already gone: {NS}/{ALB_SECRET} (`ibmcloud ks ingress secret rm" in run.stderr
    assert f"said: {said}; a fresh `ingress secret ls` agrees)" in run.stderr


def test_unmirror_that_says_not_found_but_is_still_listed_fails(fake: FakeCloud) -> None:
    assert fake.run("mirror-secret", *MIRROR).rc == 0
    message = f"The specified Ingress secret {NS}/{ALB_SECRET} could not be found."
    fake.set(faults=[{"match": "ingress secret rm", "times": -1, "message": message}])
    run = fake.run("unmirror-secret", *MIRROR)
    assert run.rc == 1
    assert run.error() == (
        f"error: `ibmcloud ks ingress secret rm --cluster mycluster --name {ALB_SECRET} --namespace {NS}` failed: "
        f"{message}; a fresh `ingress secret ls` still lists {NS}/{ALB_SECRET}"
    )
    assert [x["namespace"] for x in fake.state()["ingress_secrets"] if x["cluster"] == "mycluster"] == ["default", NS]
    assert is_documented(run.error().removeprefix("error: "))


def test_unmirror_keeps_the_original_when_only_another_namespace_lists_the_name(fake: FakeCloud) -> None:
    """The fresh look matches namespace and name: the original in `default` does not count as the copy."""
    fake.set(faults=[{"match": "ingress secret rm", "times": -1, "silent": True}])
    run = fake.run("unmirror-secret", *MIRROR)
    assert run.rc == 0, run.stderr
    assert [x["namespace"] for x in fake.state()["ingress_secrets"] if x["cluster"] == "mycluster"] == ["default"]
    assert fake.calls("ks", "ingress", "secret", "ls") == [calls.ingress_secret_ls("mycluster")]
    assert "a fresh `ingress secret ls` agrees" in run.stderr


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ([], "no Ingress secret"),
        ([{"cluster": "mycluster", "name": ALB_SECRET, "namespace": "default", "crn": ""}], "albTlsMode=default-certificate"),
    ],
)
def test_mirror_secret_errors(fake: FakeCloud, secrets: list[dict[str, str]], message: str) -> None:
    fake.set(ingress_secrets=secrets)
    run = fake.run("mirror-secret", *MIRROR)
    assert run.rc == 1
    assert message in run.error()
    assert fake.calls("ks", "ingress", "secret", "create") == []


def test_mirror_through_the_shell_line(fake: FakeCloud) -> None:
    line = ibmcloud.mirror_command_line("mirror-secret", cluster="mycluster", name=ALB_SECRET,
                                        source_namespace="default", namespace=NS)
    proc = subprocess.run(["/bin/sh", "-c", line], cwd=ROOT, env=fake.env(), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert ibmcloud.parse_mirror_result(proc.stdout) == ALB_SECRET


# ---------------------------------------------------------------------------------------------
# Command lines earlier versions stored in Pulumi state still run (tests/data/ibmcloud_stored_lines.json).

STORED_LINES: list[dict[str, Any]] = json.loads((ROOT / "tests" / "data" / "ibmcloud_stored_lines.json").read_text())["lines"]


def _replay(fake: FakeCloud, line: str, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["/bin/sh", "-c", line], cwd=ROOT, env=fake.env(**env), capture_output=True, text=True,
                          timeout=60, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _prepare(fake: FakeCloud, entry: dict[str, Any]) -> None:
    """The cluster as it was when the line was stored: the registration (or the copy) it removes."""
    inputs = entry["inputs"]
    state = fake.state()
    kind = inputs.get("cluster_type", "classic")
    state["clusters"].setdefault(inputs["cluster"], {"type": kind, "id": "c9"})
    if entry["action"] == "delete":
        host = json.loads(entry["create_stdout"])["hostname"]
        state["registrations"] = [{
            "subdomain": host, "cluster": inputs["cluster"], "type": kind,
            "ips": inputs["addresses"] if kind == "classic" else [], "lb_host": inputs["addresses"][0] if kind == "vpc" else "",
            "secret_name": host.split(".")[0], "secret_namespace": inputs["secret_namespace"], "secret_removed": False,
            "created_at": time.time() - 100, "status_sequence": [[0, "created"]],
        }]
    else:
        crn = f"crn:v1:bluemix:public:secrets-manager:us-south:a/acct:inst:secret:{inputs['name']}"
        state["ingress_secrets"] = [
            {"cluster": inputs["cluster"], "name": inputs["name"], "namespace": ns, "crn": crn, "status": "created"}
            for ns in (inputs["source_namespace"], inputs["namespace"])
        ]
    fake.write(state)


def test_the_stored_lines_fixture_covers_every_version() -> None:
    makers = {by.split(" ")[0] for entry in STORED_LINES for by in entry["made_by"]}
    assert makers == {"49008da:components/ibmcloud.py", "4b3d2bb:components/ibmcloud/cmdline.py"}
    assert {entry["action"] for entry in STORED_LINES} == {"delete", "unmirror-secret"}
    assert {entry["inputs"].get("cluster_type") for entry in STORED_LINES} >= {"classic", "vpc"}


@pytest.mark.parametrize("entry", STORED_LINES, ids=[e["case"] for e in STORED_LINES])
def test_a_stored_line_of_an_earlier_version_still_runs(fake: FakeCloud, entry: dict[str, Any]) -> None:
    """Replayed as pulumi-command does (``sh -c``, the create's stdout in PULUMI_COMMAND_STDOUT), and again."""
    _prepare(fake, entry)
    inputs = entry["inputs"]
    env = {"PULUMI_COMMAND_STDOUT": entry["create_stdout"]} if entry["action"] == "delete" else {}
    first = _replay(fake, entry["line"], **env)
    assert (first.returncode, first.stdout) == (0, ""), first.stderr
    if entry["action"] == "delete":
        (reg,) = fake.state()["registrations"]
        assert (reg["ips"], reg["lb_host"], reg["secret_removed"]) == ([], "", True)
        ips = inputs["addresses"] if inputs["cluster_type"] == "classic" else []
        assert len(fake.calls("ks", "nlb-dns", "rm")) == max(1, len(ips))
    else:
        assert [x["namespace"] for x in fake.state()["ingress_secrets"]] == [inputs["source_namespace"]]
    again = _replay(fake, entry["line"], **env)
    assert (again.returncode, again.stdout) == (0, ""), again.stderr
    assert "already" in again.stderr or "nothing to delete" in again.stderr, again.stderr


@pytest.mark.skipif(PYTHON39 is None, reason="no Python 3.9 on this machine")
def test_the_stored_lines_run_on_python39(fake: FakeCloud) -> None:
    """``python3`` in a stored line is whatever is on PATH, maybe 3.9."""
    (fake.bin / "python3").write_text(f'#!/bin/sh\nexec {shlex.quote(str(PYTHON39))} -S "$@"\n')
    for entry in STORED_LINES:
        _prepare(fake, entry)
        env = {"PULUMI_COMMAND_STDOUT": entry["create_stdout"]} if entry["action"] == "delete" else {}
        proc = _replay(fake, entry["line"], **env)
        assert proc.returncode == 0, (entry["case"], proc.stderr)
    assert "3.9" in subprocess.run([str(fake.bin / "python3"), "--version"], capture_output=True, text=True,
                                   check=False).stdout


# ---------------------------------------------------------------------------------------------
# One builder per call: what the module runs is what the offline render says it runs.


def _shell(fake: FakeCloud, line: str, **env: str) -> tuple[str, list[list[str]]]:
    """Run a stored command line as pulumi-command does (``sh -c``): its stdout, the calls it made."""
    before = len(fake.state().get("calls", []))
    proc = subprocess.run(["/bin/sh", "-c", line], cwd=ROOT, env=fake.env(**env), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, [c["argv"] for c in fake.state()["calls"][before:]]


def _listed(line: str, values: dict[str, str]) -> list[list[str]]:
    """The calls ``render.ibmcloud_calls`` lists for a line, as argv after ``ibmcloud``, placeholders filled in."""
    stored = values.get("<subdomain>", render.GATEWAY_DOMAIN.sentinel)
    listed = []
    for call, _ in render.ibmcloud_calls(line, stored_hostname=stored):
        if call:
            word, *args = call.split(" ")
            assert word == "ibmcloud", call
            listed.append([values.get(arg, arg) for arg in args])
    return listed


def _in_order(made: list[list[str]], listed: list[list[str]]) -> bool:
    """Whether every call made is listed, in the listed order (listed calls may be skipped or repeat)."""
    position = 0
    for argv in made:
        if argv not in listed[position:]:
            return False
        position = listed.index(argv, position)
    return True


def test_the_render_lists_exactly_the_calls_the_module_makes(fake: FakeCloud) -> None:
    """Every stored line, run against the fake: each call it makes is one the render's summary lists for
    that line, in that order, and each call the summary lists is made by some run.
    """
    ips = ["169.61.10.5", "169.61.20.5"]
    lb = CASES["vpc"][1]
    classic = {a: ibmcloud.command_line(a, cluster="mycluster", cluster_type="classic", addresses=ips,
                                        secret_namespace=NS, timeout_seconds=30) for a in ibmcloud.ACTIONS}
    vpc = {a: ibmcloud.command_line(a, cluster="myvpc", cluster_type="vpc", addresses=[lb],
                                    secret_namespace=NS, timeout_seconds=30) for a in ibmcloud.ACTIONS}
    mirror = {a: ibmcloud.mirror_command_line(a, cluster="mycluster", name=ALB_SECRET, source_namespace="default",
                                              namespace=NS) for a in ibmcloud.MIRROR_ACTIONS}
    adopted = fake.register("classic", counter=3, ips=ips[:1])  # lacks the second IP: `nlb-dns add`
    made_all: list[list[str]] = []
    listed_all: list[list[str]] = []

    def check(line: str, values: dict[str, str], **env: str) -> str:
        stdout, made = _shell(fake, line, **env)
        listed = _listed(line, values)
        assert made and _in_order(made, listed), (line, made, listed)
        made_all.extend(made)
        listed_all.extend(listed)
        return stdout

    classic_values = {"<ip>": ips[1], "<subdomain>": adopted}
    stored = check(classic["create"], classic_values)  # ls, add, ls
    assert json.loads(stored)["hostname"] == adopted
    check(classic["delete"], classic_values, PULUMI_COMMAND_STDOUT=stored)  # ls, rm, rm, secret rm
    check(classic["update"], classic_values)  # nothing holds the IPs now: ls, create, ls
    stored = check(vpc["create"], {})  # ls, create, ls
    vpc_values = {"<subdomain>": json.loads(stored)["hostname"]}
    check(vpc["update"], vpc_values, PULUMI_COMMAND_STDOUT=stored)  # ls (the stored one is kept)
    check(vpc["delete"], vpc_values, PULUMI_COMMAND_STDOUT=stored)  # ls, rm, secret rm
    check(mirror["mirror-secret"], {"<crn>": ALB_CRN})  # get, get, create
    check(mirror["unmirror-secret"], {})  # rm
    assert set(map(tuple, made_all)) == set(map(tuple, listed_all))
    assert {tuple(argv[:4]) for argv in made_all} >= {
        ("ks", "nlb-dns", "ls", "--cluster"), ("ks", "nlb-dns", "add", "--cluster"),
        ("ks", "nlb-dns", "create", "classic"), ("ks", "nlb-dns", "create", "vpc-gen2"),
        ("ks", "nlb-dns", "rm", "classic"), ("ks", "nlb-dns", "rm", "vpc-gen2"), ("ks", "nlb-dns", "secret", "rm"),
        ("ks", "ingress", "secret", "get"), ("ks", "ingress", "secret", "create"), ("ks", "ingress", "secret", "rm"),
    }

    # The calls the summary names in prose: repointing a stale copy, and the program's own discovery.
    fake.set(ingress_secrets=[
        {"cluster": "mycluster", "name": ALB_SECRET, "namespace": "default", "crn": ALB_CRN},
        {"cluster": "mycluster", "name": ALB_SECRET, "namespace": NS, "crn": "crn:old"},
    ])
    _, made = _shell(fake, mirror["mirror-secret"])
    assert made[-1] == calls.ingress_secret_update("mycluster", ALB_SECRET, NS, ALB_CRN)
    assert [n for c, n in render.ibmcloud_calls(mirror["mirror-secret"]) if "`ingress secret update`" in n]
    before = len(fake.state()["calls"])
    assert fake.run("discover", "--cluster", "mycluster", *FAST).rc == 0
    assert [c["argv"] for c in fake.state()["calls"][before:]] == [calls.cluster_get("mycluster")]
    summary = render.render_stack(ROOT, "dev", {"albDomain": "", "albSecret": ""}).summary
    assert f"`{' '.join(['ibmcloud', *calls.cluster_get('mycluster')])}`" in summary
