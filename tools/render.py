"""``python -m tools.render --stack dev --out manifests/``: what ``pulumi up`` would apply, offline.

Runs the program with the stack's configuration (``Pulumi.<stack>.yaml`` over the defaults in
``Pulumi.yaml``, as the CLI merges them) under the in-process renderer
(:mod:`tools.mock_program`): no Pulumi CLI, cluster or IBM Cloud.  Writes one YAML file per
Kubernetes/Istio object, numbered in dependency order, with secret values redacted, and
``SUMMARY.md``: the order, the ``ibmcloud`` commands the update would run, the stack outputs.

Values only the cluster or IBM Cloud knows become marked placeholders such as
``<gateway-nlb-dns-subdomain>``.  The program is run with *sentinels* that pass its own checks
(a DNS name under the reserved ``.invalid`` domain, an RFC 5737 documentation IP), and each
sentinel is replaced by its marker in the written files.  So the program runs its real code
paths, a missed sentinel could never resolve or route anywhere, and a marked file is refused by
the API server (``<`` is not valid in a name or host) if someone applies it by mistake.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from components.ibmcloud import calls
from components.settings import PROJECT, ConfigError, Settings, parse_settings

from . import manifests, mock_program

ROOT: Final = Path(__file__).resolve().parent.parent
MARK: Final = "rendered offline by tools.render"
SUMMARY: Final = "SUMMARY.md"


class RenderError(Exception):
    """The stack cannot be rendered offline; the message says why and what to do."""


@dataclass(frozen=True)
class Placeholder:
    """A value only the cluster or IBM Cloud knows: the sentinel the program sees, the marker written."""

    sentinel: str
    marker: str
    meaning: str

    def pattern(self) -> re.Pattern[str]:
        if self.sentinel[0].isdigit():  # an IP: 192.0.2.1 must not match inside 192.0.2.10
            return re.compile(rf"(?<![\d.]){re.escape(self.sentinel)}(?!\d)")
        return re.compile(re.escape(self.sentinel))  # the names are unique


GATEWAY_DOMAIN: Final = Placeholder(
    "gateway-nlb-dns-subdomain.placeholder.invalid", "<gateway-nlb-dns-subdomain>",
    "the nlb-dns subdomain IBM Cloud registers for the gateway's load balancer (stack output gatewayDomain)",
)
GATEWAY_SECRET: Final = Placeholder(
    "placeholder-gateway-nlb-dns-secret", "<gateway-nlb-dns-secret>",
    "its certificate secret, which IKS creates in gatewayNamespace (the Gateway's credentialName)",
)
GATEWAY_IP: Final = Placeholder(
    "192.0.2.1", "<gateway-lb-ip>",
    "the gateway Service's load-balancer IP, read from the cluster (one --address per IP of a multizone cluster)",
)
GATEWAY_HOSTNAME: Final = Placeholder(
    "gateway-lb-hostname.placeholder.invalid", "<gateway-lb-hostname>",
    "the gateway Service's VPC load-balancer hostname, read from the cluster",
)
ALB_DOMAIN: Final = Placeholder(
    "alb-ingress-subdomain.placeholder.invalid", "<alb-ingress-subdomain>",
    "the cluster's Ingress subdomain, discovered with `ibmcloud ks cluster get` (or set albDomain)",
)
ALB_SECRET: Final = Placeholder(
    "placeholder-alb-ingress-secret", "<alb-ingress-secret>",
    "the cluster's Ingress TLS secret, discovered likewise (or set albSecret)",
)
PLACEHOLDERS: Final = (GATEWAY_DOMAIN, GATEWAY_SECRET, GATEWAY_IP, GATEWAY_HOSTNAME, ALB_DOMAIN, ALB_SECRET)


def mark(text: str) -> str:
    """Every sentinel in ``text`` replaced by its marker."""
    for placeholder in PLACEHOLDERS:
        text = placeholder.pattern().sub(placeholder.marker, text)
    return text


def placeholder_cluster(settings: Settings) -> mock_program.ClusterStandIn:
    """A stand-in cluster that answers with sentinels where only the cluster or IBM Cloud knows the value."""
    address = GATEWAY_IP if settings.cluster_type == "classic" else GATEWAY_HOSTNAME
    return mock_program.ClusterStandIn(
        # As the cluster would: what the config names (the mirror command echoes the name it was given).
        alb_domain=settings.alb_domain or ALB_DOMAIN.sentinel,
        alb_secret=settings.alb_secret or ALB_SECRET.sentinel,
        gateway_addresses=[address.sentinel],
        gateway_domain=GATEWAY_DOMAIN.sentinel,
        gateway_secret=GATEWAY_SECRET.sentinel,
        secret_namespace=settings.gateway_namespace,
    )


# --- configuration -------------------------------------------------------------------------------


def _yaml_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise RenderError(f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise RenderError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RenderError(f"{path} is not a YAML mapping")
    return data


def load_stack_config(project_dir: Path, stack: str, overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The config the CLI would hand the program: Pulumi.yaml defaults, the stack file, ``--config``.

    Keys come back without the project prefix; keys of other namespaces (``kubernetes:...``) do
    not reach the program and are left out.  Encrypted (``secure:``) values cannot be read
    without the CLI: pass them with ``--config``.
    """
    overrides = overrides or {}
    project = _yaml_file(project_dir / "Pulumi.yaml")
    if project.get("name") != PROJECT:
        raise RenderError(f"{project_dir / 'Pulumi.yaml'} is not the {PROJECT} project (name: {project.get('name')!r})")
    config: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        if isinstance(spec, dict) and "default" in spec:
            config[key] = spec["default"]
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    values = _yaml_file(stack_file).get("config") or {}
    for key, value in dict(values).items():
        namespace, _, name = str(key).rpartition(":")
        if namespace not in ("", PROJECT):
            continue
        if isinstance(value, dict) and "secure" in value and name not in overrides:
            raise RenderError(
                f"config {PROJECT}:{name} in {stack_file.name} is encrypted (secure:), which only the Pulumi CLI can "
                f"decrypt: pass it with --config {name}=VALUE"
            )
        config[name] = value
    for key, value in overrides.items():
        config[key.rpartition(":")[2]] = value
    return config


# --- rendering -----------------------------------------------------------------------------------


@dataclass
class Step:
    """One resource of the update, in dependency order."""

    step: int
    action: str
    what: str
    file: str | None = None
    record: mock_program.Registered | None = None


@dataclass
class OfflineRender:
    """What one stack would apply: the files to write, and the same objects for the tests."""

    stack: str
    files: dict[str, str] = field(default_factory=dict)
    manifests: list[dict[str, Any]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    summary: str = ""


def _k8s_object(record: mock_program.Registered) -> bool:
    return record.custom and not record.read and record.type.startswith("kubernetes:")


def _describe(record: mock_program.Registered) -> tuple[str, str]:
    """(action, what) of one resource, as the summary shows it."""
    meta = record.inputs.get("metadata") or {}
    kind = record.type.rpartition(":")[2]
    if record.type.startswith("kubernetes:"):
        ref = "/".join(str(p) for p in (meta.get("namespace"), meta.get("name")) if p) or record.id
        return ("read" if record.read else "create", f"{kind} `{ref}`")  # `...`: markers are not HTML tags
    if record.type == "command:local:Command":
        action = shlex.split(str(record.inputs.get("create", "")))[3:4] or ["?"]
        return ("run", f"`python3 -m components.ibmcloud {action[0]} ...` ({record.name}; see below)")
    if record.type.startswith("tls:"):
        return ("create", f"pulumi-tls {kind} {record.name} (kept in Pulumi state only)")
    return ("create", f"{record.type} {record.name}")


def render_stack(project_dir: Path, stack: str, overrides: Mapping[str, str] | None = None) -> OfflineRender:
    """Run the program for ``stack`` offline and compile the files a reviewer reads."""
    raw = load_stack_config(project_dir, stack, overrides)
    try:
        settings = parse_settings(raw)
    except ConfigError as exc:
        raise RenderError(str(exc)) from None
    if settings.client_cert_source == "alb":
        raise RenderError(
            "clientCertSource=alb: the program reads the ALB's certificate from the cluster and checks it before it "
            "renders anything that carries it, and offline there is no cluster; review the rest with "
            "--config clientCertSource=private-ca"
        )
    cluster = placeholder_cluster(settings)
    rendering = mock_program.render(raw, cluster, stack=stack)
    if rendering.error is not None:
        raise RenderError(f"the program failed: {rendering.error}")

    records = [r for r in rendering.resources if r.custom and not r.type.startswith("pulumi:providers:")]
    order = manifests.dependency_steps({r.urn: r.dependencies for r in records})
    records.sort(key=lambda r: (order[r.urn], not r.read, r.type, r.name))
    out = OfflineRender(stack=stack)
    command = regenerate_command(stack, overrides)
    header = [
        f"{MARK} ({command}): what `pulumi up` would apply.",
        "Secret values are redacted; <...> marks a value only the cluster or IBM Cloud knows. Do not apply.",
    ]
    for record in records:
        action, what = _describe(record)
        step = Step(order[record.urn], action, mark(what), record=record)
        if _k8s_object(record):
            body = manifests.substitute(manifests.redact(record.manifest(), record.secret_paths), mark)
            leaks = [path for path, text in manifests.strings(body) if manifests.PRIVATE_KEY_RE.search(text)]
            if leaks:  # redact() makes this impossible; never write a key even if it breaks
                raise RenderError(f"refusing to write {what}: a private key survived redaction at {', '.join(leaks)}")
            step.file = manifests.file_name(len(out.manifests) + 1, body)
            out.manifests.append(body)
            out.files[step.file] = manifests.to_yaml(body, header)
        out.steps.append(step)
    out.summary = _summary(command, stack, settings, rendering, cluster, out.steps, list(out.files.values()))
    out.files[SUMMARY] = out.summary
    return out


# --- the summary ---------------------------------------------------------------------------------


def _flag(argv: Sequence[str], name: str) -> list[str]:
    """Every value of ``name`` in a stored command line (``--address`` repeats)."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == name]


def ibmcloud_calls(command_line: str, *, stored_hostname: str = GATEWAY_DOMAIN.sentinel) -> list[tuple[str, str]]:
    """The ``ibmcloud`` calls one stored command line makes, as (call, note).

    Built by the functions the module runs (:mod:`components.ibmcloud.calls`), so the summary
    cannot drift from what runs; values only known at run time are passed as ``<ip>``,
    ``<subdomain>``, ``<crn>``.  ``stored_hostname``: the subdomain a delete finds in the stored
    result of the create.
    """

    def shown(args: Sequence[str]) -> str:
        return " ".join(["ibmcloud", *args])  # not shell-quoted: the <...> placeholders read as they are

    argv = shlex.split(command_line)
    action = argv[3] if len(argv) > 3 else ""
    cluster = " ".join(_flag(argv, "--cluster"))
    addresses = _flag(argv, "--address")
    cluster_type = "vpc" if _flag(argv, "--type") == ["vpc"] else "classic"
    ls = (shown(calls.nlb_dns_ls(cluster)), "")
    if action in ("create", "update"):
        namespace = " ".join(_flag(argv, "--secret-namespace"))
        listed = [ls]
        if action == "update":
            listed.append(("", "keeps the stored registration while `nlb-dns ls` shows it for these addresses; otherwise:"))
        listed.append((shown(calls.nlb_dns_create(cluster, cluster_type, addresses, namespace)),
                       "unless a registration holds the address already: that one is adopted"))
        if cluster_type == "classic":
            listed.append((shown(calls.nlb_dns_add(cluster, ["<ip>"], "<subdomain>")),
                           "only to add an IP that an adopted registration lacks"))
        timeout = " ".join(_flag(argv, "--timeout"))
        listed.append((ls[0], f"repeated until the certificate is ready, at most {timeout} s"))
        return listed
    if action == "delete":
        host = stored_hostname
        if cluster_type == "vpc":
            remove = [(shown(calls.nlb_dns_rm_vpc(cluster, host)), "")]
        else:
            remove = [(shown(calls.nlb_dns_rm_classic(cluster, a, host)), "") for a in addresses]
        secret = (shown(calls.nlb_dns_secret_rm(cluster, host)), "unless other load balancers still use the subdomain")
        return [ls, *remove, secret]
    name, namespace = " ".join(_flag(argv, "--name")), " ".join(_flag(argv, "--namespace"))
    if action == "unmirror-secret":
        return [(shown(calls.ingress_secret_rm(cluster, name, namespace)), "")]
    if action == "mirror-secret":
        source = " ".join(_flag(argv, "--from-namespace"))
        return [
            (shown(calls.ingress_secret_get(cluster, name, source)), "the certificate's CRN"),
            (shown(calls.ingress_secret_get(cluster, name, namespace)), "is the copy there and current?"),
            (shown(calls.ingress_secret_create(cluster, name, namespace, "<crn>")),
             "when there is no copy (`ingress secret update` when it points at another certificate)"),
        ]
    return [("", f"unknown action {action!r}")]


def _call_line(call: str, note: str) -> str:
    text = f"`{mark(call)}`" if call else ""
    return f"    - {text}{' — ' if call and note else ''}{note}"


def regenerate_command(stack: str, overrides: Mapping[str, str] | None) -> str:
    """The command line that made a render; ``--config`` values left out (they may be secret)."""
    keys = "".join(f" --config {key}=..." for key in sorted(overrides or {}))
    return f"python -m tools.render --stack {stack}{keys}"


def _summary(
    command: str,
    stack: str,
    settings: Settings,
    rendering: mock_program.Rendering,
    cluster: mock_program.ClusterStandIn,
    steps: Sequence[Step],
    files: Sequence[str],
) -> str:
    lines = [
        "", "## Dependency order", "",
        "A step starts when the steps it depends on are done; resources of one step run in parallel.", "",
        "| step | action | what | file |", "|---|---|---|---|",
    ]
    lines += [f"| {s.step} | {s.action} | {s.what} | {f'`{s.file}`' if s.file else ''} |" for s in steps]
    lines += ["", "## ibmcloud commands", ""]
    if cluster.discover_calls:
        lines.append(
            f"- The program itself, during preview and update: `{shlex.join(['ibmcloud', *calls.cluster_get(settings.cluster)])}` "
            "(albDomain/albSecret are not set)."
        )
    commands = [s for s in steps if s.record is not None and s.record.type == "command:local:Command"]
    for s in commands:
        assert s.record is not None
        lines.append(f"- `{s.record.name}` (pulumi-command, step {s.step}):")
        create, update = (str(s.record.inputs.get(k) or "") for k in ("create", "update"))
        actions = [("on create and update", "create")] if create == update else [("on create", "create"), ("on update", "update")]
        for when, key in (*actions, ("on destroy", "delete")):
            line = str(s.record.inputs.get(key) or "")
            if line:
                lines.append(f"  - {when}: `{mark(line)}` runs")
                lines += [_call_line(call, note) for call, note in ibmcloud_calls(line)]
    if not commands and not cluster.discover_calls:
        lines.append("- none: gatewayDomain and gatewaySecret are set, and the ALB secret is used where it is.")
    lines += ["", "## Stack outputs", ""]
    for name, value in rendering.outputs.items():
        if name in rendering.secret_outputs:
            lines.append(f"- `{name}`: [secret]")
        elif name == "clientCertificateNotAfter":
            lines.append(f"- `{name}`: (known after `pulumi up`)")
        else:
            items = value if isinstance(value, list) else [value]
            lines.append(f"- `{name}`: " + ", ".join(f"`{mark(str(item))}`" for item in items))
    body = "\n".join(lines)
    used = [p for p in PLACEHOLDERS if p.marker in body or any(p.marker in text for text in files)]
    head = [
        f"<!-- {MARK}; regenerate with `{command}`, do not edit -->",
        f"# Offline render of stack `{stack}` ({PROJECT})",
        "",
        "What `pulumi up` would apply, rendered without the Pulumi CLI, a cluster or IBM Cloud "
        f"(albFlavor `{settings.alb_flavor}`, clusterType `{settings.cluster_type}`, clientCertSource "
        f"`{settings.client_cert_source}`). Secret values are redacted.",
    ]
    if used:
        head += ["", "Values only the cluster or IBM Cloud knows are placeholders:", "",
                 "| placeholder | stands for |", "|---|---|"]
        head += [f"| `{p.marker}` | {p.meaning} |" for p in used]
    return "\n".join(head) + "\n" + body + "\n"


# --- files and the command line -----------------------------------------------------------------


def _ours(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            return MARK in handle.readline()
    except (OSError, UnicodeDecodeError):
        return False


def write(result: OfflineRender, out_dir: Path) -> list[Path]:
    """Write the files; files of an earlier render there are removed first, nothing else is."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.iterdir():
        if old.is_file() and old.suffix in (".yaml", ".md") and _ours(old):
            old.unlink()
    written = []
    for name, text in result.files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.render",
        description="Write what `pulumi up` would apply for a stack, without the Pulumi CLI, a cluster or IBM Cloud.",
    )
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, default=Path("manifests"), help="output directory (default: manifests)")
    parser.add_argument("--project-dir", type=Path, default=ROOT, help="directory of Pulumi.yaml (default: this project)")
    parser.add_argument("--config", action="append", type=_override, default=[], metavar="KEY=VALUE",
                        help="set or override a config key for this render (repeatable)")
    args = parser.parse_args(argv)
    try:
        result = render_stack(args.project_dir, args.stack, dict(args.config))
    except RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        mock_program.close_event_loop()
    written = write(result, args.out)
    print(result.summary)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
