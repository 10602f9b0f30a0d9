"""``python -m tools.render --stack dev --out manifests/``: what ``pulumi up`` would apply, offline.

Runs the program with the stack's configuration (``Pulumi.<stack>.yaml`` over the defaults in
``Pulumi.yaml``, as the CLI merges them) under the in-process renderer
(:mod:`tools.mock_program`): no Pulumi CLI, cluster or IBM Cloud.  Writes one YAML file per
Kubernetes/Istio object, numbered in dependency order, with secret values redacted, and
``SUMMARY.md``: the order, the ``ibmcloud`` commands the update would run, the stack outputs.

What the program *reads* from the cluster and checks (an ``apps`` namespace with
``createNamespace: false``, a custom domain's ``tlsSecret``) is answered by stand-ins: the namespace
is taken to exist, the secret by a throwaway certificate for its hosts that is never written; the
summary lists each one, since ``pulumi up`` makes those reads and checks for real.  ``platform:
generic`` makes no ``ibmcloud`` call, and ``gatewayCertSource=private-ca`` no nlb-dns call: the
summary says so instead of listing any.

Values only the cluster or IBM Cloud knows become marked placeholders such as
``<gateway-nlb-dns-subdomain>``.  The program is run with *sentinels* that pass its own checks
(a DNS name under the reserved ``.invalid`` domain, an RFC 5737 documentation IP), and each
sentinel is replaced by its marker in the written files.  So the program runs its real code
paths, a missed sentinel could never resolve or route anywhere, and a marked file is refused by
the API server (``<`` is not valid in a name or host) if someone applies it by mistake.

Exit status: 0 written; 1 the program refused the configuration (its own message) or it cannot be
rendered offline; 2 a wrong argument, input file or output directory (:class:`InputError`: one
line on stderr naming it, before anything is rendered or written).  ``tools.rehearse`` reads its
files and arguments through the same functions.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import re
import shlex
import stat
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn

import yaml

from components import specs
from components.ibmcloud import calls
from components.settings import PROJECT, ConfigError, Settings, check_app_hosts, parse_settings

from . import manifests, mock_program
from . import x509 as tx
from .signals import Interrupted, signals_held, stop_on_signals

ROOT: Final = Path(__file__).resolve().parent.parent
TOOL: Final = "render"
MARK: Final = "rendered offline by tools.render"
SUMMARY: Final = "SUMMARY.md"


#: Pulumi's rule for a stack name; the file read is ``Pulumi.<stack>.yaml``, so no path may sneak in.
STACK_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,100}")
#: A project or stack file larger than this is not one (and is not read into memory whole).
MAX_INPUT_BYTES: Final = 1 << 20
#: Bounds on a config value from a stack file: deeper or bigger is not configuration (and a YAML
#: alias bomb would otherwise expand when the value is JSON-encoded for the program).
MAX_VALUE_DEPTH: Final = 32
MAX_VALUE_ITEMS: Final = 10_000


class RenderError(Exception):
    """The stack cannot be rendered offline; the message says why and what to do (exit status 1)."""


class InputError(RenderError):
    """A command-line argument, an input file or the output directory is wrong (exit status 2).

    Its own class so that both tools tell "fix how it was run" (2) from "the program refuses this
    configuration" (1); ``tools.rehearse`` reads the same files and arguments through this module.
    """


def one_line(text: object) -> str:
    """``text`` with its line breaks folded: a tool's message is one line on stderr, whatever a
    library (YAML, a proxy's log) put in it."""
    return re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip()


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


@dataclass(frozen=True)
class StandIn:
    """Something the program reads from the cluster and checks, which an offline render can only assume."""

    what: str
    """The object, e.g. ``Namespace `shop```."""
    meaning: str
    """What ``pulumi up`` does with it, and what the render assumed instead."""


#: Namespaces every cluster has, besides the gateway's.
BASE_NAMESPACES: Final = ("default", "kube-system")


def _entries(names: Sequence[str]) -> str:
    return f"apps entr{'y' if len(names) == 1 else 'ies'} {', '.join(repr(n) for n in names)}"


def _app_reads(settings: Settings) -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]]]:
    """What the program reads for ``apps``: namespace -> the entries with ``createNamespace: false``
    in it; custom domain's ``tlsSecret`` -> its hosts -> the entries that name it."""
    namespaces: dict[str, list[str]] = {}
    tls_hosts: dict[str, dict[str, list[str]]] = {}
    for app in settings.apps or ():
        if not app.create_namespace:
            namespaces.setdefault(app.namespace, []).append(app.name)
        if app.custom_domain and app.tls_secret:
            tls_hosts.setdefault(app.tls_secret, {}).setdefault(app.host, []).append(app.name)
    return namespaces, tls_hosts


def stand_ins(settings: Settings) -> list[StandIn]:
    """What :func:`placeholder_cluster` assumes of the cluster's answers to the program's reads, for the summary."""
    namespaces, tls_hosts = _app_reads(settings)
    notes = [
        StandIn(f"Namespace `{namespace}`",
                f"{_entries(names)} (createNamespace false) route to it; `pulumi up` reads it and stops before their "
                "routes if it does not exist; offline it is taken to exist")
        for namespace, names in namespaces.items()
    ]
    for secret, hosts in tls_hosts.items():
        names = [name for entries in hosts.values() for name in entries]
        notes.append(StandIn(
            f"Secret `{settings.gateway_namespace}/{secret}`",
            f"the tlsSecret of {_entries(names)} ({', '.join(hosts)}): `pulumi up` reads it and checks it before the "
            "Ingress names it (a certificate that parses, its key, valid today, a DNS name that covers the host); offline "
            "a throwaway certificate stood in, so that check is not made here, and nothing of it is written",
        ))
    return notes


def placeholder_cluster(settings: Settings) -> mock_program.ClusterStandIn:
    """A stand-in cluster that answers with sentinels where only the cluster or IBM Cloud knows the
    value, and with stand-ins for what ``apps`` reads (:func:`stand_ins` says which): the namespaces
    of entries with ``createNamespace: false`` exist, and each custom domain's ``tlsSecret`` holds a
    throwaway certificate for the hosts that name it, made here and never written (the program
    only reads and checks it; nothing it creates carries it)."""
    address = GATEWAY_IP if settings.cluster_type == "classic" else GATEWAY_HOSTNAME
    read_namespaces, tls_hosts = _app_reads(settings)
    secrets: dict[str, dict[str, str]] = {}
    issuer: tx.CA | None = None
    for secret, hosts in tls_hosts.items():
        issuer = issuer or tx.CA.self_signed("tools.render stand-in, not a real certificate")
        material = issuer.issue_leaf(list(hosts))
        secrets[f"{settings.gateway_namespace}/{secret}"] = {"tls.crt": material.chain_pem, "tls.key": material.key_pem}
    return mock_program.ClusterStandIn(
        # As the cluster would: what the config names (the mirror command echoes the name it was given).
        alb_domain=settings.alb_domain or ALB_DOMAIN.sentinel,
        alb_secret=settings.alb_secret or ALB_SECRET.sentinel,
        gateway_addresses=[address.sentinel],
        gateway_domain=GATEWAY_DOMAIN.sentinel,
        gateway_secret=GATEWAY_SECRET.sentinel,
        secret_namespace=settings.gateway_namespace,
        namespaces=tuple(dict.fromkeys([*BASE_NAMESPACES, settings.gateway_namespace, *read_namespaces])),
        secrets=secrets,
    )


# --- configuration -------------------------------------------------------------------------------


def _shape(value: object) -> str:
    """What a YAML value is, in words, for a message that says what was expected instead."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _read_text(path: Path) -> str:
    """A project or stack file's text; every way it cannot be read is an :class:`InputError`."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc} (check the file and its permissions)") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
        raise InputError(f"{path} is not a regular file (a FIFO or a device?)")
    if info.st_size > MAX_INPUT_BYTES:
        raise InputError(f"{path} is {info.st_size} bytes: too large for a Pulumi project or stack file (at most {MAX_INPUT_BYTES})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc} (check the file and its permissions)") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): save it as UTF-8"
        ) from None


def _yaml_file(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (an empty file is an empty mapping)."""
    text = _read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark_ = exc.problem_mark or exc.context_mark
        where = f"line {mark_.line + 1}, column {mark_.column + 1}" if mark_ is not None else "position unknown"
        what = ", ".join(part for part in (exc.context, exc.problem) if part) or "syntax error"
        raise InputError(f"{path} is not valid YAML: {one_line(what)} ({where})") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a NUL, a control character)
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise InputError(f"{path} is not valid YAML: {one_line(exc.reason)} (line {line}, column {column})") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {one_line(exc)} (position unknown)") from None
    except RecursionError:
        raise InputError(f"{path} is not valid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: the top level is {_shape(data)}, not a mapping of keys such as config:")
    return data


def _config_section(path: Path, document: Mapping[str, Any], what: str) -> dict[Any, Any]:
    """The ``config:`` mapping of a project or stack file (absent or empty: none)."""
    section = document.get("config")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise InputError(f"{path}: config: holds {_shape(section)} where a mapping of {what} belongs")
    return section


def _plain_value_problem(value: Any) -> str | None:
    """Why a YAML value is no config value the CLI could hand the program (which takes text or
    JSON), or None.  Bounded: at most :data:`MAX_VALUE_ITEMS` values, :data:`MAX_VALUE_DEPTH` deep."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUE_ITEMS:
            return f"holds more than {MAX_VALUE_ITEMS} values: that is not configuration"
        if depth > MAX_VALUE_DEPTH:
            return f"is nested more than {MAX_VALUE_DEPTH} levels deep: that is not configuration"
        if isinstance(item, float) and not math.isfinite(item):
            return f"holds {item!r}, a number out of the range a config value can hold"
        if item is None or isinstance(item, (str, bool, int, float)):
            continue
        if isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"has a key {key!r} that is {_shape(key)}, not text: quote it"
                stack.append((child, depth + 1))
        else:
            kind = "a YAML date or time" if hasattr(item, "isoformat") else _shape(item)
            return f"holds {kind} ({one_line(item)[:40]}), not text, a number, a list or a mapping: quote it to pass it as text"
    return None


def load_stack_config(project_dir: Path, stack: str, overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The config the CLI would hand the program: Pulumi.yaml defaults, the stack file, ``--config``.

    Keys come back without the project prefix; keys of other namespaces (``kubernetes:...``) do
    not reach the program and are left out.  Encrypted (``secure:``) values cannot be read
    without the CLI: pass them with ``--config``.  A file that cannot be read or has the wrong
    shape raises :class:`InputError` naming it.
    """
    overrides = overrides or {}
    project_file = project_dir / "Pulumi.yaml"
    project = _yaml_file(project_file)
    if project.get("name") != PROJECT:
        raise InputError(
            f"{project_file} is not the {PROJECT} project (name: {project.get('name')!r}): --project-dir names its directory"
        )
    config: dict[str, Any] = {}
    for key, spec in _config_section(project_file, project, "config keys").items():
        if isinstance(spec, dict) and "default" in spec:
            problem = _plain_value_problem(spec["default"])
            if problem:
                raise InputError(f"{project_file}: config: {key}: default {problem}")
            config[str(key)] = spec["default"]
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.exists() and not stack_file.is_symlink():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.?*.yaml"))
        hint = f"stacks with a file here: {', '.join(known)}" if known else "no stack has a file here"
        raise InputError(f"{stack_file} does not exist ({hint})")
    values = _config_section(stack_file, _yaml_file(stack_file), "config keys to values")
    for key, value in values.items():
        if not isinstance(key, str):
            raise InputError(f"{stack_file}: config: the key {key!r} is {_shape(key)}, not a config key name")
        namespace, _, name = key.rpartition(":")
        if namespace not in ("", PROJECT):
            continue
        if isinstance(value, dict) and "secure" in value:
            if name in overrides:
                continue
            raise InputError(
                f"config {PROJECT}:{name} in {stack_file.name} is encrypted (secure:), which only the Pulumi CLI can "
                f"decrypt: pass it with --config {name}=VALUE"
            )
        problem = _plain_value_problem(value)
        if problem:
            raise InputError(f"{stack_file}: config {PROJECT}:{name} {problem}")
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
    if settings.apps is not None:
        # The program checks these once it knows the ALB's subdomain: a discovered one is a sentinel here.
        try:
            check_app_hosts(settings.apps, settings.alb_domain or ALB_DOMAIN.sentinel)
        except ConfigError as exc:
            raise RenderError(mark(str(exc))) from None
    cluster = placeholder_cluster(settings)
    rendering = mock_program.render(raw, cluster, stack=stack)
    if isinstance(rendering.error, KeyboardInterrupt):  # Ctrl-C during the run: not the program's failure
        raise rendering.error
    if rendering.error is not None:
        raise RenderError(f"the program stopped with an error: {one_line(rendering.error)}")

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


def _last(argv: Sequence[str], name: str) -> str:
    """The value of a flag given once (the last one wins, as with argparse); "" when absent."""
    values = _flag(argv, name)
    return values[-1] if values else ""


class RunTimeValue(str):
    """A value only known when the command runs (``<ip>``, ``<subdomain>``, ``<crn>``).

    A type of its own so that :func:`shell_line` knows it by type, not by its text: it is shown as
    it is, while a real value that happens to read ``<ip>`` is shell-quoted like any other.
    """


RUN_TIME_IP: Final = RunTimeValue("<ip>")
RUN_TIME_SUBDOMAIN: Final = RunTimeValue("<subdomain>")
RUN_TIME_CRN: Final = RunTimeValue("<crn>")


def shell_line(words: Sequence[str]) -> str:
    """``words`` as the shell must read them: :func:`shlex.join`, except that a
    :class:`RunTimeValue` stays readable (``--ip <ip>``, not ``--ip '<ip>'``).

    The markers of :data:`PLACEHOLDERS` stay readable too: their sentinels need no quoting, and
    :func:`mark` replaces them after quoting.  So in the summary a bare ``<...>`` is always a
    placeholder, and every real value is quoted exactly as the shell needs it.
    """
    return " ".join(word if isinstance(word, RunTimeValue) else shlex.quote(word) for word in words)


def ibmcloud_calls(command_line: str, *, stored_hostname: str = GATEWAY_DOMAIN.sentinel) -> list[tuple[str, str]]:
    """The ``ibmcloud`` calls one stored command line makes, as (call, note).

    Built by the functions the module runs (:mod:`components.ibmcloud.calls`), so the summary
    cannot drift from what runs, and quoted by :func:`shell_line`; values only known at run time
    are passed as ``<ip>``, ``<subdomain>``, ``<crn>``.  ``stored_hostname``: the subdomain a
    delete finds in the stored result of the create.
    """

    def shown(args: Sequence[str]) -> str:
        return shell_line(["ibmcloud", *args])

    argv = shlex.split(command_line)
    action = argv[3] if len(argv) > 3 else ""
    cluster = _last(argv, "--cluster")
    addresses = _flag(argv, "--address")
    cluster_type = "vpc" if _last(argv, "--type") == "vpc" else "classic"
    ls = (shown(calls.nlb_dns_ls(cluster)), "")
    if action in ("create", "update"):
        namespace = _last(argv, "--secret-namespace")
        listed = [ls]
        if action == "update":
            listed.append(("", "keeps the stored registration while `nlb-dns ls` shows it for these addresses; otherwise:"))
        listed.append((shown(calls.nlb_dns_create(cluster, cluster_type, addresses, namespace)),
                       "unless a registration holds the address already: that one is adopted"))
        if cluster_type == "classic":
            listed.append((shown(calls.nlb_dns_add(cluster, [RUN_TIME_IP], RUN_TIME_SUBDOMAIN)),
                           "only to add an IP that an adopted registration lacks"))
        timeout = _last(argv, "--timeout")
        listed.append((ls[0], f"repeated until the certificate is ready, at most {timeout} s"))
        return listed
    if action == "delete":
        host = stored_hostname
        where = "on the subdomain a fresh `nlb-dns ls` shows it on (the stored one unless moved by hand)"
        if cluster_type == "vpc":
            remove = [(shown(calls.nlb_dns_rm_vpc(cluster, host)), where)]
        else:
            remove = [(shown(calls.nlb_dns_rm_classic(cluster, a, host)), where) for a in addresses]
        secret = (shown(calls.nlb_dns_secret_rm(cluster, host)), "unless other load balancers still use the subdomain")
        after = ("", "a removal that fails is followed by a fresh `nlb-dns ls`: what is gone counts as removed")
        return [ls, *remove, secret, after]
    name, namespace = _last(argv, "--name"), _last(argv, "--namespace")
    if action == "unmirror-secret":
        return [(shown(calls.ingress_secret_rm(cluster, name, namespace)),
                 "if it fails, a fresh `ingress secret ls` decides: what is gone counts as removed")]
    if action == "mirror-secret":
        source = _last(argv, "--from-namespace")
        return [
            (shown(calls.ingress_secret_get(cluster, name, source)), "the certificate's CRN"),
            (shown(calls.ingress_secret_get(cluster, name, namespace)), "is the copy there and current?"),
            (shown(calls.ingress_secret_create(cluster, name, namespace, RUN_TIME_CRN)),
             "when there is no copy (`ingress secret update` when it points at another certificate)"),
        ]
    return [("", f"unknown action {action!r}")]


def code_span(text: str) -> str:
    """``text`` as a Markdown code span whatever it holds: the fence is longer than any run of
    backticks inside (CommonMark), so a quoted value cannot end the span early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""  # one space each side is stripped again by the reader
    return f"{fence}{pad}{text}{pad}{fence}"


def _call_line(call: str, note: str) -> str:
    text = code_span(mark(call)) if call else ""
    return f"    - {text}{' — ' if call and note else ''}{note}"


def command_lines(inputs: Mapping[str, Any]) -> list[str]:
    """The summary's lines for one pulumi-command ``Command``: each stored command line exactly as
    stored (and run by ``sh -c``), placeholders marked, then the ``ibmcloud`` calls it makes."""
    lines: list[str] = []
    create, update = (str(inputs.get(k) or "") for k in ("create", "update"))
    actions = [("on create and update", "create")] if create == update else [("on create", "create"), ("on update", "update")]
    for when, key in (*actions, ("on destroy", "delete")):
        line = str(inputs.get(key) or "")
        if line:
            lines.append(f"  - {when}: {code_span(mark(line))} runs")
            lines += [_call_line(call, note) for call, note in ibmcloud_calls(line)]
    return lines


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
    if settings.platform == "generic":
        lines.append("- none: platform generic makes no ibmcloud call (no discovery, no nlb-dns registration, no certificate "
                     "mirror); the ALB's domain, secret and class come from the config.")
    elif settings.gateway_cert_source == "private-ca":
        lines.append(f"- no nlb-dns: gatewayCertSource=private-ca, so the program's CA issues the gateway's certificate "
                     f"for {code_span(specs.gateway_internal_names(settings.gateway_service, settings.gateway_namespace)[0])} "
                     f"(Secret `{settings.gateway_namespace}/{specs.PRIVATE_GATEWAY_SECRET}`).")
    if cluster.discover_calls:
        lines.append(
            f"- The program itself, during preview and update: {code_span(shell_line(['ibmcloud', *calls.cluster_get(settings.cluster)]))} "
            "(albDomain/albSecret are not set)."
        )
    commands = [s for s in steps if s.record is not None and s.record.type == "command:local:Command"]
    for s in commands:
        assert s.record is not None
        lines.append(f"- `{s.record.name}` (pulumi-command, step {s.step}):")
        lines += command_lines(s.record.inputs)
    if not commands and not cluster.discover_calls and settings.platform != "generic":
        gateway = ("the gateway's certificate is the program's own" if settings.gateway_cert_source == "private-ca"
                   else "gatewayDomain and gatewaySecret are set")
        alb = ("the ALB secret is used where it is" if settings.alb_secret_namespace == settings.gateway_namespace
               else "the Ingress uses the ALB's defaultCertificate (albTlsMode default-certificate)")
        lines.append(f"- none: {gateway}, and {alb}.")
    notes = stand_ins(settings)
    if notes:
        lines += ["", "## Read from the cluster: stand-ins offline", "",
                  "`pulumi up` reads these from the cluster and checks them; this render could only assume them:", ""]
        lines += [f"- {note.what}: {note.meaning}." for note in notes]
    lines += ["", "## Stack outputs", ""]
    for name, value in rendering.outputs.items():
        if name in rendering.secret_outputs:
            lines.append(f"- `{name}`: [secret]")
        elif name in ("clientCertificateNotAfter", "gatewayCertificateNotAfter"):
            lines.append(f"- `{name}`: (known after `pulumi up`)")
        else:
            items = value if isinstance(value, list) else [value]
            lines.append(f"- `{name}`: " + ", ".join(f"`{mark(str(item))}`" for item in items))
    body = "\n".join(lines)
    shape = [f"platform `{settings.platform}`", f"albFlavor `{settings.alb_flavor}`"]
    if settings.platform == "iks":  # what a generic cluster's load balancer is, is not the program's business
        shape.append(f"clusterType `{settings.cluster_type}`")
    shape += [f"clientCertSource `{settings.client_cert_source}`", f"gatewayCertSource `{settings.gateway_cert_source}`"]
    if settings.apps:
        shape.append(f"{len(settings.apps)} apps")
    used = [p for p in PLACEHOLDERS if p.marker in body or any(p.marker in text for text in files)]
    head = [
        f"<!-- {MARK}; regenerate with `{command}`, do not edit -->",
        f"# Offline render of stack `{stack}` ({PROJECT})",
        "",
        "What `pulumi up` would apply, rendered without the Pulumi CLI, a cluster or IBM Cloud "
        f"({', '.join(shape)}). Secret values are redacted.",
    ]
    if notes:
        head += ["", f"{len(notes)} object(s) the program reads from the cluster are stand-ins here: see "
                     "\"Read from the cluster: stand-ins offline\" below."]
    if used:
        head += ["", "Values only the cluster or IBM Cloud knows are placeholders:", "",
                 "| placeholder | stands for |", "|---|---|"]
        head += [f"| `{p.marker}` | {p.meaning} |" for p in used]
    return "\n".join(head) + "\n" + body + "\n"


# --- files and the command line -----------------------------------------------------------------


def _ours(path: Path) -> bool:
    """Whether a regular file starts with our mark (a FIFO is never opened: it would block)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return False
        with path.open(encoding="utf-8") as handle:
            return MARK in handle.readline(4096)
    except (OSError, UnicodeDecodeError):
        return False


def out_dir_problem(out_dir: Path) -> str | None:
    """Why ``out_dir`` cannot take the render, or None; checked before rendering, so a wrong
    ``--out`` costs nothing and leaves nothing half-written."""
    if out_dir.exists() or out_dir.is_symlink():
        if not out_dir.is_dir():
            if out_dir.is_file():
                return f"{out_dir} is a file, not a directory"
            return f"{out_dir} is not a directory (a FIFO, a device or a broken link?)"
        if not os.access(out_dir, os.W_OK | os.X_OK):
            return f"{out_dir} is not writable (choose another --out)"
        return None
    for ancestor in out_dir.parents:  # the nearest that exists must be a writable directory
        if ancestor.exists():
            if not ancestor.is_dir():
                return f"{ancestor} is a file, so {out_dir} cannot be made inside it"
            if not os.access(ancestor, os.W_OK | os.X_OK):
                return f"{out_dir} cannot be made: {ancestor} is not writable (choose another --out)"
            return None
    return None


def write(result: OfflineRender, out_dir: Path) -> list[Path]:
    """Write the files; files of an earlier render there are removed first, nothing else is.

    A file of ours by name that this tool did not write is never overwritten: that, and every
    failure to write, is an :class:`InputError` naming ``--out``.
    """
    problem = out_dir_problem(out_dir)
    if problem:
        raise InputError(f"--out {out_dir}: {problem}")
    for name in result.files:
        target = out_dir / name
        if (target.exists() or target.is_symlink()) and not _ours(target):
            raise InputError(
                f"--out {out_dir}: {name} exists and was not written by tools.render: move it away or choose another --out"
            )
    path = out_dir
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.iterdir():
            path = old
            if old.suffix in (".yaml", ".md") and _ours(old):
                old.unlink()
        written = []
        for name, text in result.files.items():
            path = out_dir / name
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot write {path} ({exc.strerror or exc}): check the directory and its permissions") from None
    return written


# --- the command line ----------------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr naming the argument, exit status 2
    (argparse's own print the whole usage first)."""

    def __init__(self, *args: Any, tool: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tool = tool

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.tool}: {one_line(message)} ({self.prog} --help lists the options)\n")


def stack_arg(text: str) -> str:
    """argparse type of ``--stack``: a stack name, which becomes part of a file name."""
    if not STACK_NAME_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a stack name (letters, digits, '-', '_', '.'; at most 100): the tool reads Pulumi.<stack>.yaml"
        )
    return text


def project_dir_arg(text: str) -> Path:
    """argparse type of ``--project-dir``: an existing directory (Pulumi.yaml is checked later)."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    return path


def out_dir_arg(text: str) -> Path:
    """``--out``: a directory that exists or can be made, and can be written; checked before
    rendering, with the message :func:`write` would give."""
    if not text:
        raise InputError("--out: must not be empty (the directory to write the files to)")
    problem = out_dir_problem(Path(text))
    if problem:
        raise InputError(f"--out {text}: {problem}")
    return Path(text)


def config_arg(text: str) -> tuple[str, str]:
    """argparse type of ``--config KEY=VALUE``: a key of this program (bare or ``project:key``)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    namespace, _, name = key.rpartition(":")
    if namespace not in ("", PROJECT) or not name:
        raise argparse.ArgumentTypeError(f"{key!r} is not a key of {PROJECT}: give KEY or {PROJECT}:KEY")
    return name, value


def report(tool: str, message: object) -> None:
    """One line on stderr, prefixed with the tool's name."""
    print(f"{tool}: {one_line(message)}", file=sys.stderr, flush=True)


def internal_error(tool: str, exc: BaseException) -> None:
    """A bug, not bad input: still one line, with where it happened, instead of a traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    report(tool, f"internal error in tools.{tool} (please report it): {type(exc).__name__}: {exc}{where}")


def stdout_gone(tool: str, message: str) -> None:
    """Standard output went away (``| head``, ``>&-``): say so once on stderr, and point stdout at
    /dev/null so that the interpreter's last flush at exit cannot print a traceback."""
    report(tool, message)
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def readable_stdout() -> None:
    """A character the terminal's encoding lacks prints escaped instead of raising."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None, *, command: bool = False) -> int:
    """Exit status 0 written; 1 the program refused the configuration (its own message) or it
    cannot be rendered offline; 2 a wrong argument, input file or output directory; 128 + N
    when signal N stopped it (130 Ctrl-C).  ``command``: the process ends when ``main`` returns
    (signals are left at their default action, not handed back to an in-process caller)."""
    parser = OneLineParser(
        prog="python -m tools.render", tool=TOOL,
        description="Write what `pulumi up` would apply for a stack, without the Pulumi CLI, a cluster or IBM Cloud.",
    )
    parser.add_argument("--stack", required=True, type=stack_arg, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--out", default="manifests", help="output directory (default: manifests)")
    parser.add_argument("--project-dir", type=project_dir_arg, default=ROOT, help="directory of Pulumi.yaml (default: this project)")
    parser.add_argument("--config", action="append", type=config_arg, default=[], metavar="KEY=VALUE",
                        help="set or override a config key for this render (repeatable)")
    with stop_on_signals(restore=not command):
        try:
            args = parser.parse_args(argv)  # a wrong argument: one line and exit status 2 (OneLineParser)
            out = out_dir_arg(args.out)
            readable_stdout()
            try:
                with signals_held():  # raised inside Pulumi's event loop, a signal can wedge it: wait for the run
                    result = render_stack(args.project_dir, args.stack, dict(args.config))
            finally:
                with signals_held():
                    mock_program.close_event_loops()
            written = write(result, out)
            print(result.summary)
            print(f"wrote {len(written)} files to {out}", flush=True)
        except InputError as exc:
            report(TOOL, exc)
            return 2
        except RenderError as exc:
            report(TOOL, exc)
            return 1
        except Interrupted as exc:
            report(TOOL, f"interrupted by {exc.name}: run it again for a complete render")
            return exc.exit_status
        except KeyboardInterrupt:
            report(TOOL, "interrupted: run it again for a complete render")
            return 130
        except (BrokenPipeError, ConnectionResetError) as exc:
            stdout_gone(TOOL, f"cannot write the summary to standard output: {exc.strerror or exc}; the files are written")
            return 1
        except Exception as exc:  # noqa: BLE001 - one line instead of a traceback, even for a bug
            internal_error(TOOL, exc)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(command=True))
