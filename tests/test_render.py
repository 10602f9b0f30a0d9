"""The offline render (``python -m tools.render``): the stack's config, one file per object in
dependency order, secrets redacted, cluster-only values as marked placeholders, the ``ibmcloud``
commands quoted as the shell reads them, files that pass the schema checks of test_schemas.py, and
every bad argument, input file or output directory refused in one documented line (exit status 2).
The new shapes render from their own stack files: ``apps`` (a VirtualService per entry, an Ingress
rule per host, what the program reads from the cluster answered by stand-ins the summary names),
``gatewayCertSource=private-ca`` (no nlb-dns call) and ``platform=generic`` (no ibmcloud call at all).
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import ibmcloud, settings
from components.ibmcloud import calls
from tests.support import documented, schemas, stacks
from tests.support.cluster import ALB_DOMAIN, ROOT
from tests.support.schemas import VERSIONS, crd_catalog
from tests.support.schemas import every_version_problems as builtin_problems
from tools import manifests, render

ALB_HOST = f"httpbin.{ALB_DOMAIN}"
SENTINELS = [p.sentinel for p in render.PLACEHOLDERS]


@pytest.fixture(scope="module")
def dev() -> render.OfflineRender:
    return render.render_stack(ROOT, "dev")


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The command of docs/review.md, run as a user runs it."""
    out = tmp_path_factory.mktemp("render") / "manifests"
    done = subprocess.run([sys.executable, "-m", "tools.render", "--stack", "dev", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    return out, done


def _objects(out: Path) -> dict[str, dict[str, Any]]:
    docs = {}
    for path in sorted(out.glob("*.yaml")):
        loaded = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert len(loaded) == 1, f"{path.name}: one object per file"
        docs[path.name] = loaded[0]
    return docs


def _one(objects: dict[str, dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects.values() if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


# --- the command ---------------------------------------------------------------------------------


def test_the_command_writes_one_file_per_object_and_the_summary(cli_out: tuple[Path, Any], dev: render.OfflineRender) -> None:
    out, done = cli_out
    assert done.returncode == 0, done.stderr
    assert f"wrote {len(dev.files)} files to {out}" in done.stdout
    assert "## Dependency order" in done.stdout and "## ibmcloud commands" in done.stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(dev.files)
    objects = _objects(out)
    assert sorted(o["kind"] for o in objects.values()) == sorted(
        ["Namespace", "ServiceAccount", "Service", "Deployment", "Secret", "Secret", "Gateway", "VirtualService", "Ingress"])
    assert (out / render.SUMMARY).read_text() == dev.summary


def test_the_files_are_numbered_in_dependency_order(dev: render.OfflineRender) -> None:
    files = [s.file for s in dev.steps if s.file]
    assert files == sorted(files) and [int(f[:2]) for f in files] == list(range(1, len(files) + 1))
    position = {(m["kind"], m["metadata"]["name"]): i for i, m in enumerate(dev.manifests)}
    cacert = next(k for k in position if k[0] == "Secret" and k[1].endswith("-cacert"))
    assert position[("Namespace", "httptools")] < position[("Deployment", "httpbin")]
    assert position[cacert] < position[("Gateway", "httpbin-gateway")]
    assert position[("Gateway", "httpbin-gateway")] < position[("VirtualService", "httpbin")] < position[("Ingress", "httpbin-alb")]
    assert position[("Secret", "alb-certs")] < position[("Ingress", "httpbin-alb")]
    steps = {s.what: s.step for s in dev.steps}
    assert steps["Ingress `istio-system/httpbin-alb`"] > steps["VirtualService `istio-system/httpbin`"] \
        > steps["Gateway `istio-system/httpbin-gateway`"]


def test_the_stack_file_and_pulumi_yaml_defaults_are_applied(dev: render.OfflineRender) -> None:
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    ingress = next(m for m in dev.manifests if m["kind"] == "Ingress")
    paths = [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]]
    assert paths == stack["iks-alb-istio-mtls:routes"] == ["/status", "/headers"]
    assert ingress["spec"]["rules"][0]["host"] == f"httpbin.{stack['iks-alb-istio-mtls:albDomain']}"
    assert ingress["spec"]["tls"][0]["secretName"] == stack["iks-alb-istio-mtls:albSecret"]
    assert ingress["metadata"]["namespace"] == "istio-system"  # Pulumi.yaml default of gatewayNamespace
    assert "--cluster mycluster" in dev.summary


def test_the_rendered_files_pass_the_builtin_schemas(cli_out: tuple[Path, Any]) -> None:
    objects = _objects(cli_out[0])
    builtin = {name: o for name, o in objects.items() if not schemas.is_custom(o)}
    assert len(builtin) == 7
    assert {name: p for name, o in builtin.items() if (p := builtin_problems(o))} == {}


def test_the_rendered_files_pass_the_crd_schemas(cli_out: tuple[Path, Any]) -> None:
    catalog = crd_catalog()
    custom = {name: o for name, o in _objects(cli_out[0]).items() if schemas.is_custom(o)}
    assert sorted(o["kind"] for o in custom.values()) == ["Gateway", "VirtualService"]
    problems = {name: catalog.problems(o, metadata_version=VERSIONS[-1]) for name, o in custom.items()}
    assert {k: v for k, v in problems.items() if v} == {}


@pytest.mark.parametrize("flavor", settings.ALB_FLAVORS)
def test_every_flavour_renders_and_passes_the_schemas(flavor: str) -> None:
    result = render.render_stack(ROOT, "dev", {"albFlavor": flavor})
    builtin = [m for m in result.manifests if not schemas.is_custom(m)]
    assert [p for m in builtin for p in builtin_problems(m)] == []
    catalog = crd_catalog()
    assert [p for m in result.manifests if schemas.is_custom(m) for p in catalog.problems(m, metadata_version=VERSIONS[-1])] == []


# --- secrets and placeholders --------------------------------------------------------------------


def test_secret_values_are_redacted_and_no_key_is_on_disk(cli_out: tuple[Path, Any]) -> None:
    out = cli_out[0]
    for path in out.iterdir():
        text = path.read_text()
        assert "PRIVATE KEY" not in text and "-----BEGIN" not in text, path.name
        assert "LS0tLS1CRUdJTi" not in text, path.name  # nor base64 PEM
    objects = _objects(out)
    alb_certs = _one(objects, "Secret", "alb-certs")
    assert alb_certs["stringData"] == {
        "ca.crt": "<redacted: 2 PEM certificates>", "tls.crt": "<redacted: 1 PEM certificate>", "tls.key": "<redacted>"}
    cacert = next(o for o in objects.values() if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-cacert"))
    assert cacert["stringData"] == {"ca.crt": "<redacted: 1 PEM certificate>"}


def test_redaction_follows_pulumi_secret_paths() -> None:
    manifest: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                "data": {"tls.key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n", "plain": "ok"},
                "spec": {"items": [{"token": "abc"}, {"token": "def"}]}}
    out = manifests.redact(manifest, ["data.tls.key", "spec.items[1].token"])
    assert out["data"] == {"tls.key": "<redacted>", "plain": "ok"}
    assert out["spec"]["items"] == [{"token": "abc"}, {"token": "<redacted>"}]
    assert manifest["data"]["tls.key"].startswith("-----BEGIN"), "the input is left alone"


def test_cluster_only_values_are_marked_placeholders(dev: render.OfflineRender) -> None:
    gateway = next(m for m in dev.manifests if m["kind"] == "Gateway")
    server = gateway["spec"]["servers"][0]
    assert server["hosts"] == ["<gateway-nlb-dns-subdomain>", ALB_HOST]
    assert server["tls"]["credentialName"] == "<gateway-nlb-dns-secret>"
    ingress = next(m for m in dev.manifests if m["kind"] == "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-ssl-name"] == "<gateway-nlb-dns-subdomain>"
    assert "05-secret-istio-system-gateway-nlb-dns-secret-cacert.yaml" in dev.files
    everything = "".join(dev.files.values())
    assert not [s for s in SENTINELS if s in everything], "every sentinel replaced by its marker"
    for marker in ("<gateway-nlb-dns-subdomain>", "<gateway-nlb-dns-secret>", "<gateway-lb-ip>"):
        assert re.search(rf"^\| `{re.escape(marker)}` \| \w", dev.summary, re.M), marker
    assert "<alb-ingress-subdomain>" not in dev.summary, "albDomain is set in Pulumi.dev.yaml: no placeholder"


def test_the_ip_placeholder_matches_whole_addresses_only() -> None:
    assert render.mark("--address 192.0.2.1 --address 192.0.2.10 x192.0.2.1") == \
        "--address <gateway-lb-ip> --address 192.0.2.10 x<gateway-lb-ip>"


def test_the_render_is_identical_every_time(dev: render.OfflineRender) -> None:
    assert render.render_stack(ROOT, "dev").files == dev.files


# --- the summary: order and ibmcloud commands ----------------------------------------------------


def test_the_summary_lists_the_ibmcloud_commands(dev: render.OfflineRender) -> None:
    summary = dev.summary
    assert ("`python3 -m components.ibmcloud create --cluster mycluster --type classic --address <gateway-lb-ip> "
            "--secret-namespace istio-system --timeout 1800` runs") in summary
    assert ("`ibmcloud ks nlb-dns create classic --cluster mycluster --ip <gateway-lb-ip> "
            "--secret-namespace istio-system`") in summary
    assert "`ibmcloud ks nlb-dns rm classic --cluster mycluster --ip <gateway-lb-ip> --nlb-host <gateway-nlb-dns-subdomain>`" in summary
    assert "`ibmcloud ks nlb-dns secret rm --cluster mycluster --nlb-subdomain <gateway-nlb-dns-subdomain>`" in summary
    assert f"`ibmcloud ks ingress secret create --cluster mycluster --cert-crn <crn> --name {ALB_DOMAIN.split('.')[0]} " \
           "--namespace istio-system`" in summary
    assert "ibmcloud ks cluster get" not in summary, "albDomain/albSecret set: nothing discovered"
    rows = [line for line in summary.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) == len(dev.steps) and [int(r.split("|")[1]) for r in rows] == sorted(int(r.split("|")[1]) for r in rows)


def test_discovery_and_vpc_placeholders() -> None:
    result = render.render_stack(ROOT, "dev", {"albDomain": "", "albSecret": "", "clusterType": "vpc"})
    ingress = next(m for m in result.manifests if m["kind"] == "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "httpbin.<alb-ingress-subdomain>"
    assert ingress["spec"]["tls"][0]["secretName"] == "<alb-ingress-secret>"
    assert "`ibmcloud ks cluster get --cluster mycluster --output json`" in result.summary
    assert "--type vpc --address <gateway-lb-hostname>" in result.summary
    assert "`ibmcloud ks nlb-dns rm vpc-gen2 --cluster mycluster --nlb-subdomain <gateway-nlb-dns-subdomain>`" in result.summary
    for marker in ("<alb-ingress-subdomain>", "<alb-ingress-secret>", "<gateway-lb-hostname>"):
        assert f"| `{marker}` |" in result.summary


def test_an_existing_gateway_domain_needs_no_placeholder_and_no_nlb_dns() -> None:
    result = render.render_stack(ROOT, "dev", {"gatewayDomain": "gw.example.com", "gatewaySecret": "gw-cert",
                                               "albSecretNamespace": "istio-system"})
    everything = "".join(result.files.values())
    assert [p.marker for p in render.PLACEHOLDERS if p.marker in everything] == []
    assert _ibmcloud_listed(result.summary) == []
    assert "- none: gatewayDomain and gatewaySecret are set, and the ALB secret is used where it is." in result.summary


# --- the new shapes: apps, private-ca, generic ----------------------------------------------------

#: Stack files of the new shapes, as a user writes them (apps as a YAML list).
NEW_STACKS: dict[str, dict[str, Any]] = {
    "apps": {"cluster": "mycluster", "albDomain": ALB_DOMAIN, "albSecret": ALB_DOMAIN.split(".")[0], "apps": stacks.APPS},
    "privateca": {"cluster": "mycluster", "gatewayCertSource": "private-ca", "albFlavor": "traefik"},
    "generic": stacks.generic("nginx"),
    "generictraefik": {**stacks.generic("traefik"), "apps": stacks.APPS},
    "badapp": {"cluster": "mycluster", "apps": [{"name": "web", "host": "web", "service": "frontend", "namespace": "web"}]},
    "overlap": {"cluster": "mycluster", "apps": [
        {"name": "a", "host": "web", "paths": ["/"], "service": "a", "namespace": "web", "port": 80, "createNamespace": True},
        {"name": "b", "host": "web", "paths": ["/api"], "service": "b", "namespace": "web", "port": 80, "createNamespace": True}]},
}


@pytest.fixture(scope="module")
def new_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("new-shapes")
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    for stack, config in NEW_STACKS.items():
        body = {"config": {f"iks-alb-istio-mtls:{key}": value for key, value in config.items()}}
        (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return project


@pytest.fixture(scope="module")
def apps_cli(new_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("apps-render") / "manifests"
    done = subprocess.run([sys.executable, "-m", "tools.render", "--stack", "apps", "--project-dir", str(new_project),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    return out, done


def test_an_apps_stack_renders_a_virtual_service_per_app_and_a_rule_per_host(apps_cli: tuple[Path, Any]) -> None:
    out, done = apps_cli
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    objects = _objects(out)
    virtual_services = [o for o in objects.values() if o["kind"] == "VirtualService"]
    assert sorted(vs["metadata"]["name"] for vs in virtual_services) == stacks.APP_VIRTUAL_SERVICES
    assert all(vs["spec"]["gateways"] == ["istio-system/httpbin-gateway"] for vs in virtual_services)
    routes = {vs["metadata"]["name"]: (vs["spec"]["hosts"], vs["spec"]["http"][0]["route"][0]["destination"])
              for vs in virtual_services}
    assert routes["alb-mtls-users"] == ([stacks.API_HOST], {"host": "users.shop.svc.cluster.local", "port": {"number": 9001}})
    ingress = _one(objects, "Ingress")
    rules = {rule["host"]: [p["path"] for p in rule["http"]["paths"]] for rule in ingress["spec"]["rules"]}
    assert rules == {stacks.WEB_HOST: ["/"], stacks.API_HOST: ["/orders", "/users", "/login"], stacks.CUSTOM_HOST: ["/"]}
    assert list(rules) == stacks.APP_HOSTS
    assert {"hosts": [stacks.CUSTOM_HOST], "secretName": stacks.CUSTOM_SECRET} in ingress["spec"]["tls"]
    gateway = _one(objects, "Gateway")
    assert gateway["spec"]["servers"][0]["hosts"] == ["<gateway-nlb-dns-subdomain>", *stacks.APP_HOSTS]
    # Created: namespace web; only read, so never written: namespace shop and the custom domain's secret.
    assert [o["metadata"]["name"] for o in objects.values() if o["kind"] == "Namespace"] == ["web"]
    assert not [o for o in objects.values() if o["metadata"]["name"] == stacks.CUSTOM_SECRET]
    assert not [o for o in objects.values() if o["kind"] == "Deployment"], "no httpbin with apps"
    for path in out.iterdir():
        text = path.read_text()
        assert "-----BEGIN" not in text and "LS0tLS1CRUdJTi" not in text, path.name


def test_the_apps_render_names_its_stand_ins(apps_cli: tuple[Path, Any], dev: render.OfflineRender) -> None:
    summary = (apps_cli[0] / render.SUMMARY).read_text()
    section = summary.split("## Read from the cluster: stand-ins offline", 1)[1].split("\n## ", 1)[0]
    notes = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(notes) == 2, notes
    assert notes[0].startswith("- Namespace `shop`: apps entries 'orders', 'users', 'shop' (createNamespace false)")
    assert notes[1].startswith(f"- Secret `istio-system/{stacks.CUSTOM_SECRET}`: the tlsSecret of apps entry 'shop' "
                               f"({stacks.CUSTOM_HOST})")
    assert "throwaway certificate" in notes[1] and "offline it is taken to exist" in notes[0]
    assert "2 object(s) the program reads from the cluster are stand-ins here" in summary
    assert "| 1 | read | Namespace `shop` |  |" in summary
    assert "stand-ins offline" not in dev.summary, "nothing is assumed without apps"


def test_the_apps_render_passes_the_schemas_and_is_identical_every_time(new_project: Path) -> None:
    first = render.render_stack(new_project, "apps")
    assert render.render_stack(new_project, "apps").files == first.files, "the stand-in certificate is never written"
    assert [p for m in first.manifests if not schemas.is_custom(m) for p in builtin_problems(m)] == []
    catalog = crd_catalog()
    assert [p for m in first.manifests if schemas.is_custom(m) for p in catalog.problems(m, metadata_version=VERSIONS[-1])] == []


def _ibmcloud_listed(summary: str) -> list[str]:
    """Every ibmcloud call or components.ibmcloud command line the summary lists (as code)."""
    return re.findall(r"`+ ?((?:ibmcloud |python3 -m components\.ibmcloud )[^`]*)`", summary)


@pytest.mark.parametrize("stack", ["generic", "generictraefik"])
def test_generic_renders_with_no_ibmcloud_call(new_project: Path, stack: str) -> None:
    result = render.render_stack(new_project, stack)
    assert _ibmcloud_listed(result.summary) == []
    assert [s for s in result.steps if s.record is not None and s.record.type == "command:local:Command"] == []
    assert "- none: platform generic makes no ibmcloud call" in result.summary
    assert "(platform `generic`, albFlavor" in result.summary and "clusterType" not in result.summary.split("\n## ")[0]
    secret = next(m for m in result.manifests if m["metadata"]["name"] == "alb-mtls-gateway-cert")
    assert secret["type"] == "kubernetes.io/tls" and secret["stringData"] == {
        "tls.crt": "<redacted: 1 PEM certificate>", "tls.key": "<redacted>"}
    everything = "".join(result.files.values())
    assert stacks.PRIVATE_GATEWAY_NAME in everything
    assert [p.marker for p in render.PLACEHOLDERS if p.marker in everything] == [], "generic: nothing comes from IBM Cloud"
    assert "`gatewayCertificateNotAfter`: (known after `pulumi up`)" in result.summary
    # The control: an iks stack does list its calls.
    assert _ibmcloud_listed(render.render_stack(ROOT, "dev").summary)


def test_private_ca_renders_without_nlb_dns(new_project: Path) -> None:
    result = render.render_stack(new_project, "privateca")
    listed = _ibmcloud_listed(result.summary)
    assert listed, "the ALB certificate's mirror still runs on iks"
    assert [c for c in listed if "nlb-dns" in c or re.search(r"components\.ibmcloud (create|update|delete) ", c)] == []
    assert "- no nlb-dns: gatewayCertSource=private-ca, so the program's CA issues the gateway's certificate for " \
           f"`{stacks.PRIVATE_GATEWAY_NAME}`" in result.summary
    transport = next(m for m in result.manifests if m["kind"] == "ServersTransport")
    assert transport["spec"]["serverName"] == stacks.PRIVATE_GATEWAY_NAME
    everything = "".join(result.files.values())
    assert "<gateway-nlb-dns-subdomain>" not in everything and "<gateway-nlb-dns-secret>" not in everything


@pytest.fixture(scope="module")
def apps_refusals(new_project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("apps-refusals")

    def job(stack: str) -> Callable[[], subprocess.CompletedProcess[str]]:
        argv = [sys.executable, "-m", "tools.render", "--stack", stack, "--project-dir", str(new_project), "--out", str(out / stack)]
        return lambda: subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)

    return run_concurrently({stack: job(stack) for stack in ("badapp", "overlap")})


@pytest.mark.parametrize(
    ("stack", "says"),
    [("badapp", "render: config iks-alb-istio-mtls:apps: entry 1 ('web') needs 'port' (every entry has name, host, "
                "service, namespace, port)"),
     ("overlap", "render: config iks-alb-istio-mtls:apps: entry 2 ('b') path /api and entry 1 ('a') path / overlap on "
                 "host web.<alb-ingress-subdomain>: Istio merges")],
)
def test_a_bad_apps_entry_is_one_line_naming_apps(
    apps_refusals: dict[str, subprocess.CompletedProcess[str]], new_project: Path, stack: str, says: str
) -> None:
    done = apps_refusals[stack]
    assert done.returncode == 1, done.stdout + done.stderr
    line = one_documented_line(done, "render")
    assert line.startswith(says), line
    assert done.stdout == ""
    with pytest.raises(render.RenderError) as refused:
        render.render_stack(new_project, stack)
    assert f"render: {refused.value}" == line


# That the ibmcloud calls the summary lists are the ones components.ibmcloud makes (both are built by
# components.ibmcloud.calls) is checked by running the module against the fake ibmcloud:
# tests/test_ibmcloud.py::test_the_render_lists_exactly_the_calls_the_module_makes.


# --- refusals ------------------------------------------------------------------------------------


def _project(tmp_path: Path, stack_config: dict[str, Any]) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.ci.yaml").write_text(yaml.safe_dump({"config": stack_config}))
    return tmp_path


def test_an_encrypted_value_must_be_given_on_the_command_line(tmp_path: Path) -> None:
    project = _project(tmp_path, {"iks-alb-istio-mtls:cluster": "c1", "kubernetes:context": "x",
                                  "iks-alb-istio-mtls:albSecret": {"secure": "v1:abcd"}})
    with pytest.raises(render.RenderError, match=r"albSecret in Pulumi.ci.yaml is encrypted .* --config albSecret=VALUE"):
        render.render_stack(project, "ci")
    result = render.render_stack(project, "ci", {"albSecret": "given"})
    assert "--name given" in result.summary and "--cluster c1" in result.summary


def test_a_bad_config_value_fails_with_the_programs_message(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tools.render", "--stack", "dev", "--out", str(tmp_path / "o"),
                           "--config", "albFlavor=haproxy"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "render: config iks-alb-istio-mtls:albFlavor: must be one of nginx, ibm-legacy, traefik; got 'haproxy'"]
    assert not (tmp_path / "o").exists()


def test_a_missing_stack_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(render.InputError, match=r"Pulumi.nope.yaml does not exist \(stacks with a file here: dev\)"):
        render.render_stack(ROOT, "nope")


def test_the_alb_client_certificate_source_is_refused_offline() -> None:
    with pytest.raises(render.RenderError, match=r"clientCertSource=alb: .* --config clientCertSource=private-ca"):
        render.render_stack(ROOT, "dev", {"clientCertSource": "alb"})


def test_writing_replaces_an_earlier_render_and_nothing_else(tmp_path: Path, dev: render.OfflineRender) -> None:
    (tmp_path / "notes.yaml").write_text("mine: true\n")
    (tmp_path / "99-old-object.yaml").write_text(f"# {render.MARK} (older)\nkind: Old\n")
    render.write(dev, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == set(dev.files) | {"notes.yaml"}


def test_a_secret_is_redacted_even_when_pulumi_does_not_mark_it() -> None:
    key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"tls.key": base64.b64encode(key.encode()).decode()}, "stringData": {"token": "hunter2"}}
    out = manifests.redact(secret)
    assert out["data"] == {"tls.key": "<redacted>"} and out["stringData"] == {"token": "<redacted>"}


# --- bad arguments, input files and output directories: exit 2, one line ------------------------


@dataclass(frozen=True)
class BadInput:
    """One wrong way to run ``python -m tools.render``: its arguments ({p}: the broken project,
    {t}: a scratch directory) and what the one line on stderr must contain."""

    case: str
    args: tuple[str, ...]
    says: str


def _bad_project(root: Path) -> None:
    """Stack and project files broken every way the refusals cover, under ``root``."""
    project = root / "p"
    project.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    files: dict[str, bytes] = {
        "list": b"config:\n  - iks-alb-istio-mtls:cluster\n",
        "text": b"config: cluster\n",
        "toplist": b"- config\n",
        "latin1": "config:\n  iks-alb-istio-mtls:cluster: caf\u00e9\n".encode("latin-1"),
        "syntax": b"config: [\n",
        "tab": b"config:\n\tiks-alb-istio-mtls:cluster: c1\n",
        "nul": b"config:\n  iks-alb-istio-mtls:cluster: \"c\x00\"\n",
        "twodocs": b"config: {}\n---\nconfig: {}\n",
        "date": b"config:\n  iks-alb-istio-mtls:cluster: c1\n  iks-alb-istio-mtls:albDomain: 2024-01-01\n",
        "inf": b"config:\n  iks-alb-istio-mtls:cluster: c1\n  iks-alb-istio-mtls:certWaitTimeoutSeconds: .inf\n",
        "intkey": b"config:\n  1: x\n",
        "secure": b"config:\n  iks-alb-istio-mtls:cluster: c1\n  iks-alb-istio-mtls:albSecret:\n    secure: v1:abcd\n",
        "huge": b"config: {}\n" + b"#" * (render.MAX_INPUT_BYTES + 1),
    }
    for name, data in files.items():
        (project / f"Pulumi.{name}.yaml").write_bytes(data)
    (project / "Pulumi.dir.yaml").mkdir()
    os.mkfifo(project / "Pulumi.fifo.yaml")
    for name, text in {"notmap": b"- name\n", "configlist": b"name: iks-alb-istio-mtls\nconfig:\n  - cluster\n",
                       "other": b"name: another-project\n", "latin1proj": "name: caf\u00e9\n".encode("latin-1")}.items():
        (root / name).mkdir()
        (root / name / "Pulumi.yaml").write_bytes(text)
        shutil.copy(project / "Pulumi.list.yaml", root / name / "Pulumi.dev.yaml")
    (root / "noproject").mkdir()
    (root / "afile").write_text("not a directory\n")
    (root / "conflict").mkdir()
    (root / "conflict" / render.SUMMARY).write_text("my own notes\n")


def _not_writable(root: Path) -> str:
    """An --out that cannot be made: a read-only directory, or (root ignores modes) a path in /proc."""
    if os.geteuid() == 0:
        return "/proc/iks-alb-istio-mtls-render-test/out"
    locked = root / "locked"
    locked.mkdir(mode=0o500)
    return str(locked / "out")


RENDER_BAD: tuple[BadInput, ...] = (
    BadInput("no --stack", (), "the following arguments are required: --stack"),
    BadInput("unknown option", ("--stack", "dev", "--bogus"), "unrecognized arguments: --bogus"),
    BadInput("option without value", ("--stack",), "argument --stack: expected one argument"),
    BadInput("--stack a path", ("--stack", "../dev"), "argument --stack: '../dev' is not a stack name"),
    BadInput("--stack empty", ("--stack", ""), "argument --stack: '' is not a stack name"),
    BadInput("--config without =", ("--stack", "dev", "--config", "albFlavor"), "argument --config: expected KEY=VALUE"),
    BadInput("--config other namespace", ("--stack", "dev", "--config", "kubernetes:context=x"),
             "argument --config: 'kubernetes:context' is not a key of iks-alb-istio-mtls"),
    BadInput("--project-dir missing", ("--stack", "dev", "--project-dir", "{t}/missing"), "argument --project-dir: {t}/missing does not exist"),
    BadInput("--project-dir a file", ("--stack", "dev", "--project-dir", "{t}/afile"), "argument --project-dir: {t}/afile is not a directory"),
    BadInput("--project-dir empty", ("--stack", "dev", "--project-dir", ""), "argument --project-dir: must not be empty"),
    BadInput("no Pulumi.yaml", ("--stack", "dev", "--project-dir", "{t}/noproject"), "{t}/noproject/Pulumi.yaml does not exist"),
    BadInput("Pulumi.yaml a list", ("--stack", "dev", "--project-dir", "{t}/notmap"), "{t}/notmap/Pulumi.yaml: the top level is a list"),
    BadInput("Pulumi.yaml config a list", ("--stack", "dev", "--project-dir", "{t}/configlist"),
             "{t}/configlist/Pulumi.yaml: config: holds a list where a mapping of config keys belongs"),
    BadInput("Pulumi.yaml of another project", ("--stack", "dev", "--project-dir", "{t}/other"),
             "{t}/other/Pulumi.yaml is not the iks-alb-istio-mtls project (name: 'another-project')"),
    BadInput("Pulumi.yaml not UTF-8", ("--stack", "dev", "--project-dir", "{t}/latin1proj"),
             "{t}/latin1proj/Pulumi.yaml is not UTF-8 text (byte 0xe9 at offset 9)"),
    BadInput("stack file missing", ("--stack", "nope", "--project-dir", "{p}"), "{p}/Pulumi.nope.yaml does not exist (stacks with a file here: "),
    BadInput("stack config a list", ("--stack", "list", "--project-dir", "{p}"),
             "{p}/Pulumi.list.yaml: config: holds a list where a mapping of config keys to values belongs"),
    BadInput("stack config text", ("--stack", "text", "--project-dir", "{p}"), "{p}/Pulumi.text.yaml: config: holds text where a mapping"),
    BadInput("stack file a list", ("--stack", "toplist", "--project-dir", "{p}"), "{p}/Pulumi.toplist.yaml: the top level is a list"),
    BadInput("stack file not UTF-8", ("--stack", "latin1", "--project-dir", "{p}"), "{p}/Pulumi.latin1.yaml is not UTF-8 text (byte 0xe9"),
    BadInput("stack file a directory", ("--stack", "dir", "--project-dir", "{p}"), "{p}/Pulumi.dir.yaml is a directory, not a file"),
    BadInput("stack file a FIFO", ("--stack", "fifo", "--project-dir", "{p}"), "{p}/Pulumi.fifo.yaml is not a regular file"),
    BadInput("stack file too large", ("--stack", "huge", "--project-dir", "{p}"), "too large for a Pulumi project or stack file"),
    BadInput("YAML syntax", ("--stack", "syntax", "--project-dir", "{p}"), "{p}/Pulumi.syntax.yaml is not valid YAML: "),
    BadInput("YAML tab", ("--stack", "tab", "--project-dir", "{p}"), "{p}/Pulumi.tab.yaml is not valid YAML: "),
    BadInput("YAML NUL", ("--stack", "nul", "--project-dir", "{p}"),
             "{p}/Pulumi.nul.yaml is not valid YAML: special characters are not allowed (line 2, column"),
    BadInput("two YAML documents", ("--stack", "twodocs", "--project-dir", "{p}"), "is not valid YAML: expected a single document in the stream, but found another document (line 2, column 1)"),
    BadInput("a date value", ("--stack", "date", "--project-dir", "{p}"),
             "config iks-alb-istio-mtls:albDomain holds a YAML date or time (2024-01-01)"),
    BadInput("an infinite number", ("--stack", "inf", "--project-dir", "{p}"),
             "config iks-alb-istio-mtls:certWaitTimeoutSeconds holds inf, a number out of the range"),
    BadInput("a key that is a number", ("--stack", "intkey", "--project-dir", "{p}"), "config: the key 1 is a number, not a config key name"),
    BadInput("an encrypted value", ("--stack", "secure", "--project-dir", "{p}"),
             "config iks-alb-istio-mtls:albSecret in Pulumi.secure.yaml is encrypted (secure:)"),
    BadInput("--out empty", ("--stack", "dev", "--out", ""), "--out: must not be empty"),
    BadInput("--out a file", ("--stack", "dev", "--out", "{t}/afile"), "--out {t}/afile: {t}/afile is a file, not a directory"),
    BadInput("--out inside a file", ("--stack", "dev", "--out", "{t}/afile/manifests"),
             "--out {t}/afile/manifests: {t}/afile is a file, so {t}/afile/manifests cannot be made inside it"),
    BadInput("--out not writable", ("--stack", "dev", "--out", "{ro}"), "--out {ro}: "),
    BadInput("--out holds a file of ours it did not write", ("--stack", "dev", "--out", "{t}/conflict"),
             "--out {t}/conflict: SUMMARY.md exists and was not written by tools.render"),
)


def run_concurrently(jobs: dict[str, Callable[[], subprocess.CompletedProcess[str]]]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each job's result; a few at a time, since each one starts Python and imports Pulumi."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def render_refusals(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, subprocess.CompletedProcess[str]]]:
    root = tmp_path_factory.mktemp("bad-render")
    _bad_project(root)
    values = {"p": str(root / "p"), "t": str(root), "ro": _not_writable(root)}

    def job(number: int, bad: BadInput) -> Callable[[], subprocess.CompletedProcess[str]]:
        argv = [sys.executable, "-m", "tools.render", *(a.format(**values) for a in bad.args)]
        if "--out" not in bad.args:  # never the project's own manifests/
            argv += ["--out", str(root / f"out-{number}")]
        return lambda: subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180)

    return values, run_concurrently({bad.case: job(number, bad) for number, bad in enumerate(RENDER_BAD)})


def one_documented_line(done: subprocess.CompletedProcess[str], tool: str) -> str:
    """The refusal's one stderr line, after checking there is exactly one, no traceback anywhere and
    nothing on stdout, and that docs/troubleshooting.md lists it."""
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{tool}: "), lines[0]
    message = lines[0][len(tool) + 2:]
    assert documented.is_documented(message), f"docs/troubleshooting.md lacks: {documented.as_documented(message)}"
    return lines[0]


@pytest.mark.parametrize("bad", RENDER_BAD, ids=lambda b: b.case)
def test_a_bad_argument_file_or_output_is_one_line_and_exit_2(
    bad: BadInput, render_refusals: tuple[dict[str, str], dict[str, subprocess.CompletedProcess[str]]]
) -> None:
    values, results = render_refusals
    done = results[bad.case]
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_documented_line(done, "render")
    assert bad.says.format(**values) in line, line
    assert done.stdout == ""


def test_a_refused_out_leaves_its_files_alone(render_refusals: tuple[dict[str, str], Any]) -> None:
    values, _ = render_refusals
    conflict = Path(values["t"]) / "conflict"
    assert sorted(p.name for p in conflict.iterdir()) == [render.SUMMARY]
    assert (conflict / render.SUMMARY).read_text() == "my own notes\n"
    assert not Path(values["ro"]).exists()


def test_every_stack_file_value_is_checked_before_the_program_sees_it(tmp_path: Path) -> None:
    """Bounded: an alias bomb is refused by counting, before JSON would expand it."""
    bomb = "config:\n  iks-alb-istio-mtls:cluster: c1\n  other:a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 8):  # keys of another namespace: never read, so never expanded
        bomb += f"  other:a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]\n"
    bomb += "  iks-alb-istio-mtls:routes: *a7\n"
    project = _project(tmp_path, {})
    (project / "Pulumi.ci.yaml").write_text(bomb)
    with pytest.raises(render.InputError, match=r"routes holds more than 10000 values"):
        render.load_stack_config(project, "ci")


# --- the summary quotes every command as the shell reads it --------------------------------------


def _stored(*words: str) -> str:
    """A stored command line as ``command_line`` builds one (every word shell-quoted), for values it
    would refuse today: the summary's quoting must not depend on the values being tame."""
    return shlex.join(["python3", "-m", "components.ibmcloud", *words])


def test_each_stored_command_line_is_shown_exactly_as_stored(dev: render.OfflineRender) -> None:
    records = [s.record for s in dev.steps if s.record is not None and s.record.type == "command:local:Command"]
    assert len(records) == 2
    for record in records:
        for key in ("create", "update", "delete"):
            line = str(record.inputs.get(key) or "")
            assert line, (record.name, key)
            assert f"`{render.mark(line)}` runs" in dev.summary
            assert shlex.split(line)[:3] == ["python3", "-m", "components.ibmcloud"]


def test_each_ibmcloud_call_is_quoted_with_shlex_join() -> None:
    line = _stored("create", "--cluster", "my cluster", "--type", "classic", "--address", "10.0.0.1",
                   "--address", "10.0.0.2", "--secret-namespace", "ns; rm -rf ~", "--timeout", "60")
    listed = [call for call, _ in render.ibmcloud_calls(line) if call]
    create = calls.nlb_dns_create("my cluster", "classic", ["10.0.0.1", "10.0.0.2"], "ns; rm -rf ~")
    assert listed[0] == "ibmcloud ks nlb-dns ls --cluster 'my cluster' --output json"
    assert listed[1] == shlex.join(["ibmcloud", *create])
    assert listed[1].endswith("--secret-namespace 'ns; rm -rf ~'")
    # The one choice made for readability, pinned: values only known at run time stay bare ...
    assert listed[2] == "ibmcloud ks nlb-dns add --cluster 'my cluster' --ip <ip> --nlb-host <subdomain>"
    # ... and are known by type, not text: a real value that reads like one is quoted.
    odd = [c for c, _ in render.ibmcloud_calls(line.replace("'my cluster'", "'<ip>'")) if c]
    assert odd[2] == "ibmcloud ks nlb-dns add --cluster '<ip>' --ip <ip> --nlb-host <subdomain>"
    delete = _stored("delete", "--cluster", "c$(id)", "--type", "vpc", "--address", "lb `x`", "--secret-namespace", "ns")
    assert [c for c, _ in render.ibmcloud_calls(delete, stored_hostname="sub domain") if c] == [
        "ibmcloud ks nlb-dns ls --cluster 'c$(id)' --output json",
        "ibmcloud ks nlb-dns rm vpc-gen2 --cluster 'c$(id)' --nlb-subdomain 'sub domain'",
        "ibmcloud ks nlb-dns secret rm --cluster 'c$(id)' --nlb-subdomain 'sub domain'",
    ]
    mirror = _stored("mirror-secret", "--cluster", "c1", "--name", "it's", "--from-namespace", "default", "--namespace", "istio system")
    assert [c for c, _ in render.ibmcloud_calls(mirror)][2] == (
        "ibmcloud ks ingress secret create --cluster c1 --cert-crn <crn> --name 'it'\"'\"'s' --namespace 'istio system'")


def test_the_summary_lines_of_a_command_keep_their_quotes_in_markdown() -> None:
    create = _stored("create", "--cluster", "a`b c", "--type", "classic", "--address", "192.0.2.1",
                     "--secret-namespace", "ns", "--timeout", "60")
    lines = render.command_lines({"create": create, "update": create, "delete": create.replace(" create ", " delete ", 1)})
    assert lines[0] == f"  - on create and update: `` {create.replace('192.0.2.1', '<gateway-lb-ip>')} `` runs"
    assert "--address <gateway-lb-ip>" in lines[0], "a placeholder marker stays bare"
    assert lines[1] == "    - `` ibmcloud ks nlb-dns ls --cluster 'a`b c' --output json ``"
    assert render.code_span("plain") == "`plain`" and render.code_span("a``b") == "``` a``b ```"


def test_stored_lines_from_the_builders_show_unchanged() -> None:
    """What the program stores (tame values) reads the same through shell_line as through shlex.join."""
    line = ibmcloud.command_line("update", cluster="mycluster", cluster_type="classic", addresses=["169.61.10.5"],
                                 secret_namespace="istio-system", timeout_seconds=1800)
    for call, _ in render.ibmcloud_calls(line):
        if call and "<" not in call:
            assert call == shlex.join(shlex.split(call))


# --- the interpreter's exit ----------------------------------------------------------------------


def test_every_event_loop_pulumi_made_is_closed() -> None:
    """The cause of "ValueError: Invalid file descriptor: -1" at exit: the loops Pulumi's mock monitor
    makes in its worker threads were never closed; close_event_loops closes them all."""
    script = (
        "import asyncio, gc\n"
        "from tools import mock_program, render\n"
        "render.render_stack(render.ROOT, 'dev')\n"
        "def unclosed():\n"
        "    return sum(isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed() for o in gc.get_objects())\n"
        "before = unclosed()\n"
        "mock_program.close_event_loops()\n"
        "print(before, unclosed())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stderr == ""
    before, after = (int(n) for n in done.stdout.split())
    assert before > 1, "the worker threads' loops, besides the main one"
    assert after == 0
