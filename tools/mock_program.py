"""Run the program in-process under Pulumi's mocks and record everything it asks for.

No Pulumi CLI, provider plugin, cluster or IBM Cloud: the cluster's reads (the gateway's
Service, the ALB secret), the nlb-dns Command and ``ibmcloud ks cluster get`` are answered
by a :class:`ClusterStandIn`; pulumi-tls resources by :mod:`tools.tls_standin`.  Pulumi's private
internals it needs are all in :mod:`tools.pulumi_internals`.
The tests, the offline render and the loopback rehearsal all use this one runner.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import shlex
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks

from components import ibmcloud
from components.settings import PROJECT

from . import pulumi_internals as internals
from . import tls_standin

_SIG_KEY = internals.SIG_KEY
_SECRET_SIG = internals.SECRET_SIG


@dataclass
class ClusterStandIn:
    """What the cluster and IBM Cloud would answer, for one rendering."""

    alb_domain: str
    alb_secret: str
    gateway_addresses: Sequence[str]
    gateway_domain: str
    gateway_secret: str
    #: ``"namespace/name"`` -> plain (not base64) secret data, for ``Secret.get``.
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    secret_namespace: str = "istio-system"
    #: Namespaces that exist in the cluster, for ``Namespace.get`` (an ``apps`` entry with
    #: ``createNamespace: false``); any other read fails as the API server's 404 would.
    namespaces: Sequence[str] = ("default", "istio-system", "kube-system")
    #: Ports of the gateway's Service, as Istio's default profile installs them.
    gateway_ports: Sequence[Mapping[str, Any]] = (
        {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
        {"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
    )
    discover_calls: list[str] = field(default_factory=list)
    #: Answer of the nlb-dns Command's create, as the module would print it.
    dns_stdout: str | None = None

    def discover(self, cluster: str) -> ibmcloud.AlbInfo:
        self.discover_calls.append(cluster)
        return ibmcloud.AlbInfo(domain=self.alb_domain, secret=self.alb_secret)

    def command_stdout(self, create: str) -> str:
        """What ``python3 -m components.ibmcloud`` would print for this create line."""
        args = shlex.split(create)
        if "mirror-secret" in args:
            namespace = args[args.index("--namespace") + 1]
            crn = "crn:v1:bluemix:public:secrets-manager:us-south:a/0123:4567:secret:89ab"
            return json.dumps({"secretName": self.alb_secret, "namespace": namespace, "crn": crn})
        if self.dns_stdout is not None:
            return self.dns_stdout
        return json.dumps(
            {"hostname": self.gateway_domain, "secretName": self.gateway_secret, "secretNamespace": self.secret_namespace}
        )


@dataclass
class Registered:
    """One resource the program registered (or read), with what the engine would see."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    read: bool
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: list[str]
    secret_paths: list[str]
    delete_before_replace: bool
    provider: str

    def is_secret(self, path: str) -> bool:
        """Whether the input at ``path`` (dotted, e.g. ``stringData.tls.key``) or above it is secret."""
        return any(path == p or path.startswith(p + ".") for p in self.secret_paths)

    def manifest(self) -> dict[str, Any]:
        """The Kubernetes object this resource applies (camelCase, as sent to the API server)."""
        keep = ("apiVersion", "kind", "metadata", "spec", "type", "data", "stringData")
        return _whole_numbers({k: v for k, v in self.inputs.items() if k in keep})


@dataclass
class Rendering:
    """Everything one program run produced."""

    resources: list[Registered]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    error: BaseException | None
    logs: list[tuple[str, str]]

    def by_type(self, token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == token]

    def one(self, token: str, *, name: str | None = None) -> Registered:
        found = [r for r in self.by_type(token) if name is None or r.inputs.get("metadata", {}).get("name") == name]
        if len(found) != 1:
            raise LookupError(f"expected one {token} named {name!r}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    def manifests(self) -> list[dict[str, Any]]:
        """Every Kubernetes/Istio object the program creates (reads excluded)."""
        return [
            r.manifest()
            for r in self.resources
            if r.custom and not r.read and r.type.startswith("kubernetes:") and not r.type.startswith("pulumi:providers")
        ]

    def depends_on(self, urn: str, other: str) -> bool:
        """Transitive: does ``urn`` wait for ``other`` (explicit or through a parent component)?"""
        seen: set[str] = set()
        stack = [urn]
        while stack:
            current = self.by_urn(stack.pop())
            for dep in current.dependencies:
                if dep == other:
                    return True
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        return False


def _whole_numbers(value: Any) -> Any:
    """Pulumi's wire format turns every number into a float; Kubernetes wants integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def _secret_paths(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return [path]
        out: list[str] = []
        for key, item in value.items():
            out.extend(_secret_paths(item, f"{path}.{key}" if path else key))
        return out
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _secret_paths(item, f"{path}[{i}]")]
    return []


class _Monitor(internals.RecordingMonitorBase):
    """A MockMonitor that also records parents, dependencies and secretness."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.records: list[Registered] = []

    def _record(self, request: Any, response: Any, *, read: bool) -> Any:
        struct = request.properties if read else request.object
        raw = json_format.MessageToDict(struct)
        urn = response.urn
        state = self.resources[urn].state if urn in self.resources else {}
        inputs = internals.deserialize_properties(struct)
        self.records.append(
            Registered(
                type=request.type,
                name=request.name,
                urn=urn,
                parent=request.parent,
                custom=bool(getattr(request, "custom", True)) or read,
                read=read,
                id=self.resources[urn].id if urn in self.resources else "",
                inputs=_plain(inputs),
                outputs=_plain(state),
                dependencies=list(request.dependencies),
                secret_paths=_secret_paths(raw),
                delete_before_replace=bool(getattr(request, "deleteBeforeReplace", False)),
                provider=request.provider,
            )
        )
        return response

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, response, read=False)
        return response

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        return self._record(request, super().ReadResource(request), read=True)


#: How a value not known yet (``pulumi preview``) appears in a recording: the engine's own
#: marker for an unknown string, which the policy pack's analyzer also understands.
UNKNOWN: str = internals.UNKNOWN


def _plain(value: Any) -> Any:
    """Drop Pulumi's secret wrappers so assertions see plain values; unknowns become UNKNOWN."""
    if isinstance(value, pulumi.output.Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


#: What a ``pulumi up`` in the certificates' early-renewal window keeps from state: the keys, the CA
#: and the CSRs.  pulumi-tls replaces each LocallySignedCert then, issued by the same CA for the
#: same key; everything that carries them (``alb-certs``, the gateway's Secret) is updated.
KEPT_ON_RENEWAL: tuple[str, ...] = (
    "tls:index/privateKey:PrivateKey",
    "tls:index/selfSignedCert:SelfSignedCert",
    "tls:index/certRequest:CertRequest",
)


class _Mocks(pulumi_mocks.Mocks):
    def __init__(self, cluster: ClusterStandIn, *, preview: bool = False, renewal_of: Rendering | None = None) -> None:
        self.cluster = cluster
        self.preview = preview
        self.kept: dict[tuple[str, str], dict[str, Any]] = {}
        if renewal_of is not None:
            self.kept = {
                (r.type, r.name): r.outputs for r in renewal_of.resources if r.type in KEPT_ON_RENEWAL and not r.read
            }

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = _plain(args.inputs)  # mocks see secrets still wrapped
        if self.preview and not args.resource_id:
            return self._planned(args.typ, inputs)
        if (args.typ, args.name) in self.kept:
            return f"{args.name}-id", dict(self.kept[(args.typ, args.name)])
        if args.typ in tls_standin.HANDLERS:
            return f"{args.name}-id", tls_standin.HANDLERS[args.typ](inputs)
        if args.resource_id:  # a read of something that exists in the cluster
            return args.resource_id, self._read(args.typ, args.resource_id)
        if args.typ == "command:local:Command":
            return f"{args.name}-id", {**inputs, "stdout": self.cluster.command_stdout(str(inputs["create"])), "stderr": ""}
        return f"{args.name}-id", inputs

    def _planned(self, typ: str, inputs: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """A first ``pulumi preview``: nothing exists yet, so what a provider computes is unknown
        (the nlb-dns Command's stdout, every key and certificate pulumi-tls would make)."""
        outputs = dict(inputs)
        if typ == "command:local:Command":
            outputs.update(stdout=UNKNOWN, stderr=UNKNOWN)
        elif typ in tls_standin.HANDLERS:
            outputs.update({key: UNKNOWN for key in tls_standin.COMPUTED[typ]})
        return None, outputs

    def _read(self, typ: str, ref: str) -> dict[str, Any]:
        namespace, _, name = ref.partition("/")
        metadata = {"name": name, "namespace": namespace}
        if typ == "kubernetes:core/v1:Service":
            key = "ip" if all(a.replace(".", "").isdigit() for a in self.cluster.gateway_addresses) else "hostname"
            ingress = [{key: address} for address in self.cluster.gateway_addresses]
            return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": {"type": "LoadBalancer", "ports": [dict(p) for p in self.cluster.gateway_ports]},
                    "status": {"loadBalancer": {"ingress": ingress}}}
        if typ == "kubernetes:core/v1:Secret":
            if ref not in self.cluster.secrets:
                raise LookupError(f"secrets {name!r} not found in namespace {namespace!r}")
            data = {k: base64.b64encode(v.encode()).decode() for k, v in self.cluster.secrets[ref].items()}
            return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "kubernetes.io/tls", "data": data}
        if typ == "kubernetes:core/v1:Namespace":
            # A cluster-scoped object: its id is the bare name.
            if ref not in self.cluster.namespaces:
                # What the engine says when the provider's read finds nothing (pkg/resource/deploy/step.go).
                raise LookupError(f"resource {ref!r} does not exist")
            return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ref}, "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"}}
        raise LookupError(f"the renderer cannot read {typ} {ref}")

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class _LogCollector:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def _add(self, level: str, msg: str) -> None:
        self.records.append((level, str(msg)))

    def debug(self, msg: str, *a: Any, **k: Any) -> None:
        pass

    def info(self, msg: str, *a: Any, **k: Any) -> None:
        self._add("info", msg)

    def warning(self, msg: str, *a: Any, **k: Any) -> None:
        self._add("warning", msg)

    def error(self, msg: str, *a: Any, **k: Any) -> None:
        self._add("error", msg)


def render(
    config: Mapping[str, Any],
    cluster: ClusterStandIn,
    *,
    stack: str = "dev",
    program: Callable[[Callable[[str], ibmcloud.AlbInfo]], None] | None = None,
    preview: bool = False,
    renewal_of: Rendering | None = None,
) -> Rendering:
    """Run the program with ``config`` (keys without the project prefix) against ``cluster``.

    Config values are passed as the CLI passes them: strings, objects and lists JSON-encoded.
    Errors the program raises are returned in :attr:`Rendering.error`, not raised, so a test
    can also check what was (not) registered before the failure.  ``preview=True`` runs it as a
    stack's first ``pulumi preview``: computed outputs are unknown and recorded as :data:`UNKNOWN`.
    ``renewal_of=<an earlier rendering>`` runs it as the ``pulumi up`` that renews the certificates:
    what :data:`KEPT_ON_RENEWAL` lists comes from that rendering's state, the certificates are new.
    """
    from components.program import run

    mocks = _Mocks(cluster, preview=preview, renewal_of=renewal_of)
    monitor = _Monitor(mocks)
    logs = _LogCollector()
    internals.reset_runtime()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor, logger=logs)  # type: ignore[arg-type]
    pulumi.runtime.set_all_config({f"{PROJECT}:{k}": _encode(v) for k, v in config.items()})
    body = program or run
    error: BaseException | None = None
    _quiet_abandoned_futures()
    try:
        internals.run_program(lambda: body(cluster.discover))
    except BaseException as exc:  # noqa: BLE001 - handed to the caller in Rendering.error
        error = exc
    outputs, secret_outputs = _stack_outputs()
    return Rendering(monitor.records, outputs, secret_outputs, error, logs.records)


def _quiet_abandoned_futures() -> None:
    """A failed run leaves Output futures nobody awaits; the failure is in ``Rendering.error``,
    so asyncio's "Future exception was never retrieved" report is noise, not news."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "never retrieved" not in str(context.get("message", "")):
            loop.default_exception_handler(context)

    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        return
    loop.set_exception_handler(handler)


def close_event_loops() -> None:
    """Close every event loop Pulumi made, the worker threads' first, before the interpreter exits.

    Pulumi's MockMonitor serves each registration in a worker thread of the main loop's default
    executor and calls ``_ensure_event_loop()`` there, so every worker gets a loop of its own that
    nobody closes.  At exit such a loop is garbage in a reference cycle with its self-pipe socket;
    when the collector finalizes the socket first, the loop's ``__del__`` closes a socket whose
    ``fileno()`` is already -1 and prints ``ValueError: Invalid file descriptor: -1``.  Closed here,
    while the idle workers still hold them, they leave nothing for the finalizers.  The main
    thread's loop goes last: closing it shuts the executor down and lets the workers exit.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            main_loop: asyncio.AbstractEventLoop | None = asyncio.get_event_loop()
        except RuntimeError:
            main_loop = None
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.AbstractEventLoop) and obj is not main_loop and not obj.is_running() and not obj.is_closed():
            obj.close()
    if main_loop is not None and not main_loop.is_closed() and not main_loop.is_running():
        _cancel_pending(main_loop)
        main_loop.close()


def _cancel_pending(loop: asyncio.AbstractEventLoop, timeout: float = 5.0) -> None:
    """Cancel what an interrupted run left pending (Pulumi's program task) and let it unwind, as
    ``asyncio.run`` does, within ``timeout``: a task destroyed pending prints a traceback at exit."""
    pending = asyncio.all_tasks(loop)
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.wait(pending, timeout=timeout))
    for task in pending:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" report


def _encode(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _stack_outputs() -> tuple[dict[str, Any], set[str]]:
    exported = internals.root_outputs()
    values: dict[str, Any] = {}
    secret: set[str] = set()
    for name, value in exported.items():
        output = pulumi.Output.from_input(value)
        try:
            values[name] = internals.wait(output.future())
            if internals.wait(output.is_secret()):
                secret.add(name)
        except BaseException as exc:  # noqa: BLE001 - an output that failed with the program
            values[name] = exc
    return values, secret
