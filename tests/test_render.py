"""The offline render (``python -m tools.render``): the stack's config, one file per object in
dependency order, secrets redacted, cluster-only values as marked placeholders, the ``ibmcloud``
commands, and files that pass the schema checks of test_schemas.py.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import settings
from tests.support import schemas
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
    assert "nlb-dns" not in result.summary and "- none:" in result.summary


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
    assert done.stderr.startswith("error: config iks-alb-istio-mtls:albFlavor: must be one of")
    assert not (tmp_path / "o").exists()


def test_a_missing_stack_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(render.RenderError, match=r"Pulumi.nope.yaml does not exist"):
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
