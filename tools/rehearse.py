"""``python -m tools.rehearse --stack dev``: the stack's mutual-TLS hop on this laptop.

Takes the stack's configuration, renders its objects the way the tests do (under Pulumi's
mocks, no CLI, no cluster, no IBM Cloud), gives them a stand-in Let's Encrypt-shaped PKI
where the cluster would supply certificates, starts nginx (as the ALB), Envoy (as the
gateway) and httpbin on 127.0.0.1 from those objects, runs the ``verify`` checks, prints
what it configured and each result, and stops everything.

With ``clientCertSource=alb`` the program's preflight refuses the ALB's (serverAuth-only)
certificate, and the rehearsal shows that refusal; ``--without-preflight`` then shows what
Envoy does with that certificate.  Exit status: 0 all checks pass, 1 a check failed or the
program refused the configuration, 2 the rehearsal could not run (config, missing tool).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from components import specs
from components.program import run
from components.settings import ConfigError, Settings, parse_settings

from . import dataplane, mock_program, verify
from . import dataplane_conf as conf
from .render import ROOT, RenderError, load_stack_config
from .x509 import letsencrypt_like

Print = Callable[[str], None]


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


def describe(dp: dataplane.LoopbackDataPlane) -> list[str]:
    """What was configured, without key material: hosts, names, pins, paths, ports."""
    objs = dp.objs
    server = conf.gateway_mtls_server(objs.gateway)
    rule = objs.ingress["spec"]["rules"][0]
    envoy_routes = conf.envoy_routes(objs.virtual_service, "app")
    lines = [
        f"httpbin  127.0.0.1:{dp.httpbin_port}",
        f"Envoy    127.0.0.1:{dp.envoy_port}  as gateway {objs.gateway['metadata']['name']}: SNI {', '.join(server['hosts'])}; "
        f"{server['tls']['mode']} TLS, min {server['tls'].get('minProtocolVersion', 'default')}; "
        f"client CA from {conf.cacert_secret_ref(objs.gateway)}; pinned SANs {', '.join(server['tls'].get('subjectAltNames', []))}",
        "         routes " + ", ".join(next(iter(r["match"].items()))[0] + " " + next(iter(r["match"].values())) for r in envoy_routes),
    ]
    paths = ", ".join(p["path"] for p in rule["http"]["paths"])
    if dp.alb == "traefik":
        transport = next(m for m in dp.manifests if m.get("kind") == "ServersTransport")
        spec = transport["spec"]
        lines.append(
            f"Traefik  127.0.0.1:{dp.alb_port}  as the ALB for Ingress {objs.ingress['metadata']['name']}: host {rule['host']}; "
            f"paths {paths} -> https upstream through ServersTransport {transport['metadata']['name']}: serverName {spec.get('serverName')}; "
            f"rootCAs {', '.join(r.get('secret', '?') for r in spec.get('rootCAs', []))}; client certificate from "
            f"{', '.join(spec.get('certificatesSecrets', [])) or 'none'}; TLS {spec.get('minVersion')}-{spec.get('maxVersion')}"
        )
        return lines
    upstream = conf.upstream_tls(objs.ingress)
    lines.append(
        f"nginx    127.0.0.1:{dp.alb_port}  as the ALB for Ingress {objs.ingress['metadata']['name']}: host {rule['host']}; "
        f"paths {paths} -> https upstream; proxy_ssl_name {upstream.name}; "
        f"verify {'on' if upstream.verify else 'off'} (depth {upstream.verify_depth}); client certificate from {upstream.secret_ref}"
    )
    return lines


def _render(
    config: Mapping[str, Any], cluster: mock_program.ClusterStandIn, *, preflight: bool
) -> mock_program.Rendering:
    if preflight:
        return mock_program.render(config, cluster)
    return mock_program.render(config, cluster, program=lambda discover: run(discover, preflight=_no_preflight))


def _no_preflight(tls_crt: str, tls_key: str, trusted_pem: str, *, alb_host: str, secret_ref: str) -> list[str]:
    """``--without-preflight``: accept the ALB's material as it is, to watch the proxies refuse it."""
    return []


def rehearse(raw: Mapping[str, Any], *, without_preflight: bool = False, out: Print = print) -> int:
    """The whole rehearsal for one stack's raw config; returns the exit status."""
    try:
        settings = parse_settings(raw)
    except ConfigError as exc:
        out(f"rehearse: {exc}")
        return 2
    alb_domain, alb_secret, gateway_domain, gateway_secret = stand_in_names(settings)
    pki = letsencrypt_like(label="Rehearsal")  # fresh throwaway keys for every rehearsal
    alb_cert = pki.issue_leaf([f"*.{alb_domain}", alb_domain])
    gateway_cert = pki.issue_leaf([gateway_domain, f"*.{gateway_domain}"])
    config = {**raw, "albDomain": alb_domain, "albSecret": alb_secret, "trustedCaPem": pki.anchors_pem}
    if settings.gateway_domain:
        config["gatewaySecret"] = gateway_secret
    cluster = mock_program.ClusterStandIn(
        alb_domain=alb_domain,
        alb_secret=alb_secret,
        gateway_addresses=["rehearsal-gw.lb.appdomain.cloud"] if settings.cluster_type == "vpc" else ["169.46.7.10"],
        gateway_domain=gateway_domain,
        gateway_secret=gateway_secret,
        secrets={f"{settings.alb_secret_namespace}/{alb_secret}": {"tls.crt": alb_cert.chain_pem, "tls.key": alb_cert.key_pem}},
    )
    out(f"rehearsal of stack config for cluster {settings.cluster} (albFlavor={settings.alb_flavor}, clientCertSource={settings.client_cert_source})")
    out(f"stand-ins  ALB {alb_domain} (secret {alb_secret}); gateway {gateway_domain} (secret {gateway_secret})")
    out("stand-ins  certificates from a throwaway Let's Encrypt-shaped CA (serverAuth only); trustedCaPem = its root")

    rendering = _render(config, cluster, preflight=True)
    if rendering.error is not None:
        out(f"program    refused: {rendering.error}")
        if not without_preflight:
            if settings.client_cert_source == "alb":
                out("           (run with --without-preflight to see what Envoy does with that certificate)")
            return 1
        rendering = _render(config, cluster, preflight=False)
        if rendering.error is not None:
            out(f"program    refused even without the preflight: {rendering.error}")
            return 1
        out("program    preflight skipped on request: the objects below are what the program would apply without it")
    for level, message in rendering.logs:
        if level == "warning":
            out(f"program    warning: {message}")

    material = dataplane.ClusterMaterial(alb_cert.chain_pem, alb_cert.key_pem, gateway_cert.chain_pem, gateway_cert.key_pem)
    try:
        plane = dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), material)
        identity = client_identity(rendering.manifests())
        with plane:
            for line in describe(plane):
                out(f"configured {line}")
            outputs = {"albHost": specs.alb_host(alb_domain), "gatewayDomain": gateway_domain}
            report = verify.run_checks(
                outputs,
                identity,
                ca_pem=pki.anchors_pem,
                connect_to=[
                    verify.Target(outputs["albHost"], 443, plane.address, plane.alb_port),
                    verify.Target(gateway_domain, 443, plane.address, plane.envoy_port),
                ],
                path=_teapot_path(settings.routes),
                timeout=5,
            )
    except dataplane.ToolMissing as exc:
        out(f"rehearse: {exc}")
        return 2
    except (dataplane.DataPlaneError, conf.DataPlaneConfigError) as exc:
        out(f"rehearse: the data plane did not start: {exc}")
        return 2
    for line in report.render().splitlines():
        out(f"check      {line}")
    out(f"stopped    {plane.alb}, Envoy and httpbin; key files removed")
    return 0 if report.ok else 1


def _teapot_path(routes: Sequence[str]) -> str:
    """The recipe's ``/status/418`` when a route serves it, else a path under the first route."""
    for route in routes:
        if route == "/" or "/status/418".startswith(route.rstrip("/") + "/"):
            return "/status/418"
    return routes[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rehearse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to rehearse (default: dev)")
    parser.add_argument(
        "--without-preflight", action="store_true",
        help="when the program refuses the ALB certificate, go on without the preflight and show what Envoy does",
    )
    args = parser.parse_args(argv)
    try:
        raw = load_stack_config(ROOT, args.stack)
    except RenderError as exc:
        print(f"rehearse: {exc}")
        return 2
    try:
        return rehearse(raw, without_preflight=args.without_preflight)
    finally:
        mock_program.close_event_loop()


if __name__ == "__main__":
    sys.exit(main())
