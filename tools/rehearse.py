"""``python -m tools.rehearse --stack dev``: the stack's mutual-TLS hop on this laptop.

Takes the stack's configuration, renders its objects the way the tests do (under Pulumi's
mocks, no CLI, no cluster, no IBM Cloud), gives them a stand-in Let's Encrypt-shaped PKI
where the cluster would supply certificates (the ALB's, the nlb-dns gateway's, a custom
domain's ``tlsSecret``), starts nginx or Traefik (as the ALB), Envoy (as the gateway) and a
stand-in per app (httpbin for the sample) on 127.0.0.1 from those objects, runs the
``verify`` checks (with ``apps``: one request per app, which must reach that app's stand-in,
then the gateway's checks), prints what it configured and each result, and stops everything.

With ``clientCertSource=alb`` the program's preflight refuses the ALB's (serverAuth only)
certificate, and the rehearsal shows that refusal; ``--without-preflight`` then shows what
Envoy does with that certificate.  Exit status: 0 all checks pass, 1 a check failed or the
program refused the configuration, 2 the rehearsal could not run (an argument, a stack file,
the config, a missing tool), 128 + N when signal N stopped it (130 Ctrl-C, 143 SIGTERM); every
process it started is stopped and its key files removed in every case.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import math
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

try:  # Pulumi and cryptography take a moment to load: Ctrl-C meanwhile ends quietly too

    from components import specs
    from components.program import run
    from components.settings import App, ConfigError, Settings, parse_settings

    from . import dataplane, mock_program, signals, traefik_conf, verify
    from . import dataplane_conf as conf
    from .render import (
        ROOT,
        InputError,
        OneLineParser,
        config_arg,
        internal_error,
        load_stack_config,
        one_line,
        project_dir_arg,
        readable_stdout,
        report,
        stack_arg,
        stdout_gone,
    )
    from .x509 import letsencrypt_like
except KeyboardInterrupt:
    if __name__ != "__main__":
        raise
    print("rehearse: interrupted by SIGINT before anything started", file=sys.stderr)
    sys.exit(130)

Print = Callable[[str], None]
TOOL: Final = "rehearse"
#: The recipe's request: httpbin answers it with its teapot, which no proxy would make up.
TEAPOT_PATH: Final = "/status/418"
TEAPOT_STATUS: Final = 418
#: Seconds per request of the checks.
REQUEST_TIMEOUT: Final = 5.0
#: ``--hold`` at most: an hour.
MAX_HOLD_SECONDS: Final = 3600.0
SHOWN_NAMES: Final = {"httpbin": "httpbin", "upstreams": "the app stand-ins", "envoy": "Envoy", "nginx": "nginx", "traefik": "Traefik"}


class CannotRun(Exception):
    """The rehearsal cannot run (its config, a missing tool, a data plane that does not start):
    exit status 2, the message on stderr; ``detail`` (a proxy's log) goes to stdout."""

    def __init__(self, message: str, detail: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.detail = list(detail)


def stand_in_names(settings: Settings) -> tuple[str, str, str, str]:
    """IKS-shaped names where the cluster would supply them (``<cluster>-<hash>-000N.<region>...``)."""
    slug = re.sub(r"[^a-z0-9-]", "-", settings.cluster.lower()).strip("-")[:20] or "cluster"
    digest = hashlib.sha256(settings.cluster.encode()).hexdigest()[:32]
    base = "us-south.containers.appdomain.cloud"
    alb_domain = settings.alb_domain or f"{slug}-{digest}-0000.{base}"
    alb_secret = settings.alb_secret or alb_domain.split(".", 1)[0]
    gateway_domain = settings.gateway_domain or f"{slug}-{digest}-0001.{base}"
    gateway_secret = settings.gateway_secret or gateway_domain.split(".", 1)[0]
    return alb_domain, alb_secret, gateway_domain, gateway_secret


def client_identity(manifests: Sequence[Mapping[str, Any]]) -> verify.ClientIdentity:
    """What ``verify`` would read from ``alb-certs`` in the cluster."""
    for obj in manifests:
        if obj.get("kind") == "Secret" and obj["metadata"]["name"] == specs.ALB_CERTS_SECRET:
            data = obj.get("stringData", {})
            for cert_key, key_key in verify.CLIENT_KEYS:
                if cert_key in data and key_key in data:
                    return verify.ClientIdentity(data[cert_key], data[key_key])
    raise conf.DataPlaneConfigError(f"the program made no {specs.ALB_CERTS_SECRET} secret with a client certificate")


def _route_text(route: Mapping[str, Any]) -> str:
    kind, value = next(iter(route["match"].items()))
    return f"{kind} {value}"


def describe(dp: dataplane.LoopbackDataPlane) -> list[str]:
    """What was configured, without key material: hosts, names, pins, paths, ports."""
    objs = dp.objs
    server = conf.gateway_mtls_server(objs.gateway)
    httpbin = conf.httpbin_destinations(objs)
    lines = [
        f"{'httpbin' if d in httpbin else 'app':<8} 127.0.0.1:{port}  stands in for {d}"
        for d, port in dp.upstreams.items()
    ]
    lines.append(
        f"Envoy    127.0.0.1:{dp.envoy_port}  as gateway {objs.gateway['metadata']['name']}: SNI {', '.join(server['hosts'])}; "
        f"{server['tls']['mode']} TLS, min {server['tls'].get('minProtocolVersion', 'default')}; "
        f"certificate from {dp.gateway_credential()[2]}; "
        f"client CA from {conf.cacert_secret_ref(objs.gateway)}; pinned SANs {', '.join(server['tls'].get('subjectAltNames', []))}"
    )
    for host, routes in conf.virtual_hosts(objs):
        clusters = list(dict.fromkeys(r["route"]["cluster"] for r in routes))
        lines.append(f"         host {host}: routes {', '.join(_route_text(r) for r in routes)} -> {', '.join(clusters)}")
    name = objs.ingress["metadata"]["name"]
    if dp.alb == "traefik":
        transport = next(m for m in dp.manifests if m.get("kind") == "ServersTransport")
        spec = transport["spec"]
        lines.append(
            f"Traefik  127.0.0.1:{dp.alb_port}  as the ALB for Ingress {name}: "
            f"https upstream through ServersTransport {transport['metadata']['name']}: serverName {spec.get('serverName')}; "
            f"rootCAs {', '.join(r.get('secret', '?') for r in spec.get('rootCAs', []))}; client certificate from "
            f"{', '.join(spec.get('certificatesSecrets', [])) or 'none'}; TLS {spec.get('minVersion')}-{spec.get('maxVersion')}"
        )
    else:
        upstream = conf.upstream_tls(objs.ingress)
        lines.append(
            f"nginx    127.0.0.1:{dp.alb_port}  as the ALB for Ingress {name}: https upstream; proxy_ssl_name {upstream.name}; "
            f"verify {'on' if upstream.verify else 'off'} (depth {upstream.verify_depth}); client certificate from {upstream.secret_ref}"
        )
    for host, paths in conf.ingress_rules(objs.ingress):
        ref = conf.tls_secret_ref(objs.ingress, host)
        certificate = f"secret {ref}" if ref else "the ALB's default certificate"
        if ref and ref not in dp.material.tls_secrets:
            certificate += " (the ALB's)"
        lines.append(f"         host {host}: paths {', '.join(p['path'] for p in paths)}; certificate from {certificate}")
    return lines


def started(dp: dataplane.LoopbackDataPlane) -> str:
    """Which processes run (their pids: what ``kill`` or a test needs) and where the key files are."""
    procs = ", ".join(f"{SHOWN_NAMES.get(name, name)} pid {proc.pid}" for name, proc in dp.processes)
    return f"{procs}; key files in {dp.workdir} (mode 0700, removed when the rehearsal ends)"


def _render(
    config: Mapping[str, Any], cluster: mock_program.ClusterStandIn, *, preflight: bool
) -> mock_program.Rendering:
    # A signal waits until the run is over (a second or so): raised inside Pulumi's event loop it
    # can wedge the loop for good or crash a worker thread, and the run would be lost anyway.
    with signals.signals_held():
        if preflight:
            rendering = mock_program.render(config, cluster)
        else:
            rendering = mock_program.render(config, cluster, program=lambda discover: run(discover, preflight=_no_preflight))
    if isinstance(rendering.error, KeyboardInterrupt):  # Ctrl-C under Python's own handler: not the program's answer
        raise rendering.error
    return rendering


def _no_preflight(tls_crt: str, tls_key: str, trusted_pem: str, *, alb_host: str, secret_ref: str) -> list[str]:
    """``--without-preflight``: accept the ALB's material as it is, to watch the proxies refuse it."""
    return []


def check_path(routes: Sequence[str]) -> str:
    """What the checks request: the recipe's ``/status/418`` when a route serves it, else the
    first route itself (a stack may route only ``/anything``)."""
    for route in routes:
        if route == "/" or TEAPOT_PATH.startswith(route.rstrip("/") + "/"):
            return TEAPOT_PATH
    return routes[0]


def upstream_answer(dp: dataplane.LoopbackDataPlane, destination: conf.Destination, path: str, timeout: float) -> tuple[int, bytes]:
    """What the stand-in of ``destination`` itself answers ``path``, asked directly on 127.0.0.1:
    what the ALB and the gateway must pass through unchanged."""
    port = dp.upstreams[destination]
    connection = http.client.HTTPConnection(dp.address, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        raise CannotRun(f"the stand-in for {destination} on {dp.address}:{port} did not answer GET {path}: {exc}") from None
    finally:
        connection.close()


def httpbin_answer(dp: dataplane.LoopbackDataPlane, path: str, timeout: float) -> int:
    """The status httpbin itself gives ``path`` (the httpbin sample's destination)."""
    found = [d for d, port in dp.upstreams.items() if port == dp.httpbin_port]
    if not found:
        raise CannotRun("no destination of the VirtualService is the httpbin sample")
    return upstream_answer(dp, found[0], path, timeout)[0]


def _stand_in_name(body: bytes) -> str | None:
    """The destination an app stand-in names in its answer (httpbin names none)."""
    try:
        seen = json.loads(body)
    except ValueError:
        return None
    return str(seen.get("destination")) if isinstance(seen, dict) and seen.get("destination") else None


def app_checks(
    dp: dataplane.LoopbackDataPlane,
    apps: Sequence[App],
    alb_domain: str,
    gateway_name: str,
    identity: verify.ClientIdentity,
    ca_pem: str,
) -> verify.Report:
    """The checks of a stack with ``apps``: one request per app through the ALB, which must reach
    that app's stand-in; then the gateway as the ALB reaches it (SNI the gateway's name, Host the
    first app's), with the ALB's client certificate and without one, and its certificate's expiry."""
    report = verify.Report()
    anonymous = verify.tls_context(ca_pem=ca_pem, identity=None)
    with_cert = verify.tls_context(ca_pem=ca_pem, identity=identity)
    httpbin = conf.httpbin_destinations(dp.objs)
    first: tuple[str, str, int, str | None] | None = None
    for app in apps:
        destination = conf.Destination(app.destination, app.port)
        path = check_path(app.paths) if destination in httpbin else app.paths[0]
        status, _ = upstream_answer(dp, destination, path, REQUEST_TIMEOUT)
        host = app.fqdn(alb_domain)
        answer = dataplane.request(dp.address, dp.alb_port, host=host, path=path, context=anonymous, timeout=REQUEST_TIMEOUT)
        # An app's stand-in names the destination it stands in for: it must be this app's.
        want, got = (None if destination in httpbin else str(destination)), _stand_in_name(answer.body)
        reached = answer.status == status and want == got
        seen = str(answer.status) if answer.status is not None else f"refused ({answer.error})"
        report.add(
            reached,
            f"ALB       {app.name}: https://{host}{path} -> {seen}{f' from {got}' if got else ''} "
            f"(want {status}{f' from {want}' if want else ''})",
        )
        first = first or (host, path, status, want)
    assert first is not None  # settings: apps is never empty
    host, path, status, _ = first
    accepted = dataplane.request(
        dp.address, dp.envoy_port, host=host, path=path, sni=gateway_name, context=with_cert, timeout=REQUEST_TIMEOUT
    )
    want, got = first[3], _stand_in_name(accepted.body)
    report.add(
        accepted.status == status and want == got,
        f"gateway   https://{gateway_name}{path} (Host {host}) with the ALB client certificate -> "
        f"{accepted.status if accepted.status is not None else f'refused ({accepted.error})'}{f' from {got}' if got else ''} "
        f"(want {status}{f' from {want}' if want else ''})",
    )
    target = verify.Target(gateway_name, verify.HTTPS_PORT, dp.address, dp.envoy_port)
    ok, outcome, _ = verify.refusal_check(accepted, target, path, anonymous, timeout=REQUEST_TIMEOUT, host_header=host)
    report.add(ok, f"gateway   https://{gateway_name}{path} without a client certificate -> {outcome} (want refused)")
    if accepted.peer_not_after is None:
        report.add(False, "gateway   certificate expiry: unknown (no TLS session with the gateway)")
    else:
        expiry = accepted.peer_not_after
        days = (expiry - dt.datetime.now(dt.timezone.utc)).total_seconds() / 86400
        report.add(days > 0, f"gateway   certificate expires {expiry:%Y-%m-%d %H:%M} UTC ({days:.0f} days)")
    return report


def _trusted(manifests: Sequence[Mapping[str, Any]]) -> str:
    """The CA the ALB trusts for the gateway (``alb-certs``): what a check of the gateway trusts too."""
    for obj in manifests:
        if obj.get("kind") == "Secret" and obj["metadata"]["name"] == specs.ALB_CERTS_SECRET:
            data = obj.get("stringData", {})
            return str(data.get("ca.crt") or data.get("trusted.crt") or "")
    return ""


def rehearse(raw: Mapping[str, Any], *, without_preflight: bool = False, hold: float = 0.0, out: Print = print) -> int:
    """The whole rehearsal for one stack's raw config; returns the exit status (0 or 1).

    Raises :class:`CannotRun` when it cannot run, and :class:`tools.signals.Interrupted` (under
    :func:`tools.signals.stop_on_signals`) when a signal stops it; every process it started is
    stopped and its key files are removed before either leaves.
    """
    try:
        settings = parse_settings(raw)
    except ConfigError as exc:
        raise CannotRun(str(exc)) from None
    private_gateway = settings.gateway_cert_source == "private-ca"
    alb_domain, alb_secret, gateway_domain, gateway_secret = stand_in_names(settings)
    pki = letsencrypt_like(label="Rehearsal")  # fresh throwaway keys for every rehearsal
    alb_cert = pki.issue_leaf([f"*.{alb_domain}", alb_domain])
    gateway_cert = pki.issue_leaf([gateway_domain, f"*.{gateway_domain}"])
    config = {**raw, "albDomain": alb_domain, "albSecret": alb_secret}
    if not private_gateway:  # with private-ca the ALB trusts the program's CA, and trustedCaPem is refused
        config["trustedCaPem"] = pki.anchors_pem
    if settings.gateway_domain:
        config["gatewaySecret"] = gateway_secret
    secrets = {f"{settings.alb_secret_namespace}/{alb_secret}": {"tls.crt": alb_cert.chain_pem, "tls.key": alb_cert.key_pem}}
    # What the cluster would hold for apps: each custom domain's TLS secret, the namespaces not created.
    custom_tls: dict[str, dict[str, str]] = {}
    existing: list[str] = []
    for app in settings.apps or ():
        if app.custom_domain and app.tls_secret:
            issued = pki.issue_leaf([app.host])
            custom_tls[f"{settings.gateway_namespace}/{app.tls_secret}"] = {"tls.crt": issued.chain_pem, "tls.key": issued.key_pem}
        if not app.create_namespace and app.namespace not in existing:
            existing.append(app.namespace)
    cluster = mock_program.ClusterStandIn(
        alb_domain=alb_domain,
        alb_secret=alb_secret,
        gateway_addresses=["rehearsal-gw.lb.appdomain.cloud"] if settings.cluster_type == "vpc" else ["169.46.7.10"],
        gateway_domain=gateway_domain,
        gateway_secret=gateway_secret,
        secrets={**secrets, **custom_tls},
        # IKS keeps the nlb-dns certificate where it was asked to: the gateway's namespace.
        secret_namespace=settings.gateway_namespace,
        namespaces=tuple(dict.fromkeys((*mock_program.ClusterStandIn.namespaces, *existing))),
    )
    out(
        f"rehearsal of stack config for cluster {settings.cluster} (albFlavor={settings.alb_flavor}, "
        f"clientCertSource={settings.client_cert_source}, gatewayCertSource={settings.gateway_cert_source})"
    )
    if private_gateway:
        out(f"stand-ins  ALB {alb_domain} (secret {alb_secret}); the gateway's certificate is the program's own (private-ca)")
        out("stand-ins  the ALB's certificate from a throwaway Let's Encrypt-shaped CA (serverAuth only)")
    else:
        out(f"stand-ins  ALB {alb_domain} (secret {alb_secret}); gateway {gateway_domain} (secret {gateway_secret})")
        out("stand-ins  certificates from a throwaway Let's Encrypt-shaped CA (serverAuth only); trustedCaPem = its root")
    if custom_tls:
        out(f"stand-ins  custom domains' TLS secrets {', '.join(sorted(custom_tls))} from that CA")
    if existing:
        out(f"stand-ins  namespaces {', '.join(existing)} exist (apps entries with createNamespace false)")

    rendering = _render(config, cluster, preflight=True)
    if rendering.error is not None:
        out(f"program    refused: {one_line(rendering.error)}")
        if not without_preflight:
            if settings.client_cert_source == "alb":
                out("           (run with --without-preflight to see what Envoy does with that certificate)")
            return 1
        rendering = _render(config, cluster, preflight=False)
        if rendering.error is not None:
            out(f"program    refused even without the preflight: {one_line(rendering.error)}")
            return 1
        out("program    preflight skipped on request: the objects below are what the program would apply without it")
    for level, message in rendering.logs:
        if level == "warning":
            out(f"program    warning: {one_line(message)}")

    material = dataplane.ClusterMaterial(
        alb_cert.chain_pem, alb_cert.key_pem, gateway_cert.chain_pem, gateway_cert.key_pem, tls_secrets=custom_tls
    )
    gateway_name = str(rendering.outputs.get("gatewayDomain") or gateway_domain)
    # The checks trust what a browser would for the ALB (the stand-in root) and what the ALB trusts for the gateway.
    ca_pem = pki.anchors_pem + _trusted(rendering.manifests())
    plane: dataplane.LoopbackDataPlane | None = None
    try:
        plane = dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), material)
        identity = client_identity(rendering.manifests())
        plane.start()
        out(f"started    {started(plane)}")
        for line in describe(plane):
            out(f"configured {line}")
        if settings.apps is not None:
            results = app_checks(plane, settings.apps, alb_domain, gateway_name, identity, ca_pem)
        else:
            path = check_path(settings.routes)
            expect = TEAPOT_STATUS if path == TEAPOT_PATH else httpbin_answer(plane, path, REQUEST_TIMEOUT)
            outputs = {"albHost": specs.alb_host(alb_domain), "gatewayDomain": gateway_name}
            results = verify.run_checks(
                outputs,
                identity,
                ca_pem=ca_pem,
                connect_to=[
                    verify.Target(outputs["albHost"], 443, plane.address, plane.alb_port),
                    verify.Target(gateway_name, 443, plane.address, plane.envoy_port),
                ],
                path=path,
                expect=expect,
                timeout=REQUEST_TIMEOUT,
            )
        for line in results.render().splitlines():
            out(f"check      {line}")
        if hold > 0:
            out(f"holding    the data plane for {hold:g} s (Ctrl-C or SIGTERM stops it sooner)")
            time.sleep(hold)
    except dataplane.ToolMissing as exc:
        raise CannotRun(str(exc)) from None
    except (dataplane.DataPlaneError, conf.DataPlaneConfigError, traefik_conf.TraefikConfigError) as exc:
        head, *tail = str(exc).splitlines() or [""]
        raise CannotRun(f"the data plane did not start: {head.rstrip(':')}", tail) from None
    finally:
        if plane is not None:
            plane.stop()
    names = [SHOWN_NAMES.get(name, name) for name in reversed(plane.process_names)]
    shown = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
    if not plane.files_removed:
        out(f"stopped    {shown}; could not remove {plane.workdir}: remove it by hand")
        return 1
    out(f"stopped    {shown}; key files removed")
    return 0 if results.ok else 1


def hold_arg(text: str) -> float:
    """argparse type of ``--hold``: seconds, from 0 to an hour."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_HOLD_SECONDS:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_HOLD_SECONDS:g} seconds, got {text!r}")
    return value


def _print(line: str) -> None:
    """A report line, flushed at once: the rehearsal can take a while, and a reader (a person, a
    test waiting for the ``started`` line) should see each line when it happens."""
    print(line, flush=True)


def main(argv: Sequence[str] | None = None, *, command: bool = False) -> int:
    """The command line; ``command``: this process ends when ``main`` returns, so signals are
    left at their default action after, not handed back to an in-process caller."""
    parser = OneLineParser(prog="python -m tools.rehearse", tool=TOOL, description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev", type=stack_arg,
                        help="stack whose Pulumi.<stack>.yaml to rehearse (default: dev)")
    parser.add_argument("--project-dir", type=project_dir_arg, default=ROOT,
                        help="directory of Pulumi.yaml (default: this project)")
    parser.add_argument("--config", action="append", type=config_arg, default=[], metavar="KEY=VALUE",
                        help="set or override a config key for this rehearsal (repeatable)")
    parser.add_argument(
        "--without-preflight", action="store_true",
        help="when the program refuses the ALB certificate, go on without the preflight and show what Envoy does",
    )
    parser.add_argument("--hold", type=hold_arg, default=0.0, metavar="SECONDS",
                        help="keep the data plane up this long after the checks, to send requests of your own (at most 3600)")
    with signals.stop_on_signals(restore=not command):
        try:
            args = parser.parse_args(argv)  # a wrong argument: one line and exit status 2 (OneLineParser)
            readable_stdout()
            try:
                raw = load_stack_config(args.project_dir, args.stack, dict(args.config))
                status = rehearse(raw, without_preflight=args.without_preflight, hold=args.hold, out=_print)
                signals.check_signals()
                return status
            finally:
                with signals.signals_held():
                    mock_program.close_event_loops()
        except InputError as exc:
            report(TOOL, exc)
            return 2
        except CannotRun as exc:
            with contextlib.suppress(OSError):  # the log is a help; the line on stderr is the message
                for line in exc.detail:
                    _print(f"log        {line}")
            report(TOOL, exc)
            return 2
        except signals.Interrupted as exc:
            report(TOOL, f"interrupted by {exc.name}: every process it started is stopped and its key files are removed")
            return exc.exit_status
        except KeyboardInterrupt:
            report(TOOL, "interrupted: every process it started is stopped and its key files are removed")
            return 130
        except (BrokenPipeError, ConnectionResetError) as exc:
            stdout_gone(TOOL, f"cannot write the report to standard output: {exc.strerror or exc}")
            return 1
        except Exception as exc:  # noqa: BLE001 - one line instead of a traceback, even for a bug
            internal_error(TOOL, exc)
            return 1


if __name__ == "__main__":
    sys.exit(main(command=True))
