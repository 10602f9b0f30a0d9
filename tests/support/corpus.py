"""The preflight corpus's material: named certificate chains, and the verdicts on them of the
program's checks and of the proxy that verifies each in production.

Who verifies what in production:

- ``client``: the ALB's own certificate as its client certificate (``clientCertSource=alb``).
  The ALB (nginx) presents it; the gateway's Envoy verifies it against ``trustedCaPem`` (the
  ``-cacert`` secret) and pins ``*.<albDomain>``/``<albDomain>``.  The program checks it with
  :func:`components.certs.preflight_alb_client_material`.
- ``server``: the gateway's server certificate (IKS's nlb-dns certificate).  The ALB (nginx)
  verifies it with ``proxy-ssl-verify on``, ``proxy-ssl-verify-depth`` and ``proxy-ssl-name``
  against ``trustedCaPem`` (``ca.crt`` of ``alb-certs``).  The program never reads that
  certificate: it checks ``trustedCaPem`` (:func:`components.certs.check_trust_bundle`) and
  writes the depth; the chain itself is judged here by :func:`components.certs.verify_chain`
  with nginx's depth, the check the module offers for a server certificate.
- ``traefik``: the same with ``albFlavor=traefik``, where Traefik (Go's verifier) verifies the
  gateway through the ``ServersTransport``: it verifies partial chains and sets no depth.

Certificates come from :func:`tools.x509.certificate` (the project's one builder); keys are
throwaway and in memory.  The proxies run on the loopback data plane (:mod:`tools.dataplane`),
which keeps key files in a private 0700 directory it removes, and stops every process.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from components import certs, specs
from components.program import run
from tests.support import pki
from tests.support.cluster import GATEWAY_DOMAIN, standin
from tests.support.dataplane import ALB_CERT, ALB_HOST, CONFIG, GATEWAY_CERT, LE, get
from tools import dataplane, mock_program
from tools import x509 as tx

Role = Literal["client", "server", "traefik"]

NOW = pki.utcnow()
DAY = dt.timedelta(days=1)
SECRET = f"default/{pki.ALB_SECRET_NAME}"
CRT = f"secret {SECRET} key tls.crt"
GATEWAY_CRT = f"secret istio-system/{pki.GATEWAY_SECRET_NAME} key tls.crt"
SHORT_GATEWAY_DOMAIN = "gw-0001.us-south.containers.appdomain.cloud"
"""A gateway domain short enough for a common name (at most 64 characters), for the CN-only case."""
TRAEFIK_DEPTH = 100
"""Traefik's ServersTransport has no depth, nor has Go's verifier: the checks get a large one."""
ANY_EKU = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH

#: Who verifies each role in production, as the table prints it.
VERIFIER = {"client": "Envoy", "server": "nginx", "traefik": "Traefik"}
#: The tools each role's proxy verdict needs on the data plane.
TOOLS = {"client": ("nginx", "envoy"), "server": ("nginx", "envoy"), "traefik": ("traefik", "envoy")}
#: What the program itself runs for each role.
PROGRAM_RUNS = {
    "client": "preflight_alb_client_material",
    "server": "check_trust_bundle only (the chain: verify_chain as nginx verifies, not run by the program)",
    "traefik": "check_trust_bundle only (the chain: verify_chain as Traefik verifies, not run by the program)",
}


# --- building the chains ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """How one certificate of a chain departs from a plain one (leaf or issuing CA)."""

    aki: bool = True
    ski: bool = True
    basic_constraints: Literal["critical", "non-critical", "absent"] = "critical"
    ca: bool | None = None
    """basicConstraints CA flag; None: CA:TRUE for an issuer, CA:FALSE for the leaf."""
    usage: x509.KeyUsage | None | Literal["default"] = "default"
    """keyUsage; "default": digitalSignature (+ keyEncipherment for RSA) for the leaf,
    digitalSignature + keyCertSign + cRLSign for an issuer; None: no keyUsage."""
    ekus: tuple[x509.ObjectIdentifier, ...] | None = (SERVER_AUTH, CLIENT_AUTH)
    """extendedKeyUsage; None: no EKU extension (any purpose)."""
    critical: tuple[type[x509.ExtensionType], ...] = ()
    """Extensions to mark critical that the builder marks non-critical (EKU, SAN)."""
    not_before: dt.timedelta = -DAY
    not_after: dt.timedelta = 60 * DAY


@dataclass(frozen=True)
class Material:
    """One corpus entry's input: what ``tls.crt``/``tls.key`` and ``trustedCaPem`` hold."""

    chain: tuple[x509.Certificate, ...]
    """Leaf first, then the intermediates it sends (as a ``tls.crt`` holds them)."""
    key: tx.Key = field(repr=False)
    trusted: tuple[x509.Certificate, ...]
    """What ``trustedCaPem`` holds."""
    gateway_domain: str = GATEWAY_DOMAIN
    """``proxy-ssl-name`` (server role)."""

    @property
    def chain_pem(self) -> str:
        return tx.pem(*self.chain)

    @property
    def key_pem(self) -> str:
        return tx.key_pem(self.key)

    @property
    def trusted_pem(self) -> str:
        return tx.pem(*self.trusted)


def _new_key(use_rsa: bool) -> tx.Key:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048) if use_rsa else tx.new_key()


def _issue(
    subject: x509.Name,
    key: tx.Key,
    *,
    signer: tx.Key,
    issuer: x509.Name,
    shape: Shape,
    issuing: bool,
    dns_names: Sequence[str] = (),
) -> x509.Certificate:
    ca = issuing if shape.ca is None else shape.ca
    usage = shape.usage
    if usage == "default":
        usage = (
            tx.key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True)
            if issuing
            else tx.key_usage(digital_signature=True, key_encipherment=isinstance(key, rsa.RSAPrivateKey))
        )
    extra: list[x509.ExtensionType] = []
    if shape.basic_constraints == "non-critical":
        extra.append(x509.BasicConstraints(ca=ca, path_length=None))
    cert = tx.certificate(
        subject,
        key.public_key(),
        signer=signer,
        issuer=issuer,
        not_before=NOW + shape.not_before,
        not_after=NOW + shape.not_after,
        ca=ca if shape.basic_constraints == "critical" else None,
        usage=usage,
        ekus=shape.ekus,
        dns_names=dns_names,
        ski=shape.ski,
        aki=shape.aki,
        extensions=extra,
    )
    return recritical(cert, signer, shape.critical) if shape.critical else cert


def recritical(
    cert: x509.Certificate, signer: tx.Key, critical: Sequence[type[x509.ExtensionType]]
) -> x509.Certificate:
    """``cert`` with the extensions of the ``critical`` types marked critical, signed again by
    ``signer`` (the builder marks EKU, and a SAN beside a subject, non-critical)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for ext in cert.extensions:
        builder = builder.add_extension(ext.value, critical=ext.critical or type(ext.value) in critical)
    return builder.sign(signer, cert.signature_hash_algorithm)  # type: ignore[arg-type]


def _chain(
    role: Role,
    *,
    use_rsa: bool = False,
    depth: int = 1,
    leaf: Shape = Shape(),
    issuer: Shape = Shape(),
    dns_names: Sequence[str] | None = None,
    common_name: str | None = "corpus-leaf",
    anchor: Literal["root", "intermediate"] = "root",
    trusted_extra: Sequence[x509.Certificate] = (),
    gateway_domain: str = GATEWAY_DOMAIN,
) -> Material:
    """root → ``depth`` issuing CAs → leaf; ``anchor`` says what ``trustedCaPem`` holds: the
    root, or the CA that issued the leaf (then the leaf is sent alone with its issuer)."""
    root_key = _new_key(use_rsa)
    root_name = tx.dn("Corpus Root", organization="Corpus (test)", country="US")
    root = tx.certificate(
        root_name,
        root_key.public_key(),
        signer=root_key,
        not_before=NOW - 3650 * DAY,
        not_after=NOW + 3650 * DAY,
        ca=True,
        usage=tx.key_usage(key_cert_sign=True, crl_sign=True),
        aki=False,
    )
    signer, signer_name = root_key, root_name
    issuers: list[x509.Certificate] = []
    for level in range(1, depth + 1):
        key = _new_key(use_rsa)
        name = tx.dn(f"Corpus Issuing CA {level}", organization="Corpus (test)", country="US")
        issuers.insert(0, _issue(name, key, signer=signer, issuer=signer_name, shape=issuer, issuing=True))
        signer, signer_name = key, name
    if dns_names is None:
        dns_names = pki.ALB_SANS if role == "client" else (gateway_domain, f"*.{gateway_domain}")
    leaf_key = _new_key(use_rsa)
    leaf_cert = _issue(
        tx.dn(common_name), leaf_key, signer=signer, issuer=signer_name, shape=leaf, issuing=False, dns_names=dns_names
    )
    trusted = [root] if anchor == "root" else issuers[:1]
    # The hop needs the gateway's (Let's Encrypt-like) chain verified too: in the client role
    # trustedCaPem carries its root beside the corpus's.
    trusted += [*trusted_extra, *(LE.anchors if role == "client" else ())]
    return Material((leaf_cert, *issuers), leaf_key, tuple(trusted), gateway_domain)


def client(**shape: Any) -> Callable[[], Material]:
    """A chain for the ALB's client certificate (names ``*.<albDomain>``, ``<albDomain>``)."""
    return functools.cache(lambda: _chain("client", **shape))


def server(**shape: Any) -> Callable[[], Material]:
    """A chain for the gateway's server certificate (names ``<gatewayDomain>``, ``*.<gatewayDomain>``)."""
    return functools.cache(lambda: _chain("server", **shape))


def program_verdict(role: Role, material: Material) -> Verdict:
    """What the program itself says: the whole preflight (client), or ``trustedCaPem`` alone."""
    if role == "client":
        return check_verdict(role, material)[0]
    try:
        certs.check_trust_bundle(material.trusted_pem, "trustedCaPem", now=NOW)
    except certs.CertificateError as error:
        return Verdict(False, str(error))
    return Verdict(True, "trustedCaPem passes; the gateway's certificate is never read")


def letsencrypt_gateway(**change: Any) -> Callable[[], Material]:
    """The gateway's certificate as IKS's nlb-dns issues it (leaf ← YR1 ← Root YR cross ← X1)."""
    return functools.cache(
        lambda: replace(Material(tuple(GATEWAY_CERT.certs), GATEWAY_CERT.key, tuple(LE.anchors)), **change)
    )


def letsencrypt_alb() -> Material:
    """The ALB's certificate as IKS has it in 2026 (serverAuth only), under the LE-like roots."""
    return Material(tuple(ALB_CERT.certs), ALB_CERT.key, tuple(LE.anchors))


def expired_ca() -> x509.Certificate:
    return pki.self_signed_ca("Corpus Expired Root", not_before=NOW - 3650 * DAY, not_after=NOW - DAY).cert


def not_a_ca() -> x509.Certificate:
    return GATEWAY_CERT.cert


# --- verdicts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """accept or refuse, with why: the check's message (or warnings), the proxy's evidence."""

    accepted: bool
    detail: str = ""

    @property
    def word(self) -> str:
        return "accept" if self.accepted else "refuse"


def check_verdict(role: Role, material: Material) -> tuple[Verdict, certs.CertificateError | None]:
    """What the checks say (client: the whole preflight; server, traefik: the trust bundle, then
    the chain as nginx, or Traefik, verifies it)."""
    try:
        if role == "client":
            notes = certs.preflight_alb_client_material(
                material.chain_pem, material.key_pem, material.trusted_pem, alb_host=ALB_HOST, secret_ref=SECRET, now=NOW
            )
            return Verdict(True, " ".join(notes)), None
        anchors = certs.check_trust_bundle(material.trusted_pem, "trustedCaPem", now=NOW)
        certs.verify_chain(
            list(material.chain),
            anchors,
            what=GATEWAY_CRT,
            purpose="server",
            host=material.gateway_domain,
            now=NOW,
            max_chain_depth=specs.PROXY_SSL_VERIFY_DEPTH if role == "server" else TRAEFIK_DEPTH,
            partial_chain=role == "traefik",
        )
        return Verdict(True), None
    except certs.CertificateError as error:
        return Verdict(False, str(error)), error


def proxy_verdict(role: Role, material: Material) -> Verdict:
    """The production proxy's verdict on the loopback data plane: a request through the ALB
    (nginx) to the gateway (Envoy) and httpbin; 418 is accept, 502 refuse, with the evidence."""
    return _envoy_verdict(material) if role == "client" else _alb_verdict(material, role)


def _envoy_verdict(material: Material) -> Verdict:
    """clientCertSource=alb as the program renders it (the preflight skipped), the ALB's secret
    holding this chain and trustedCaPem this bundle: nginx presents it, Envoy verifies it."""
    cluster = standin(secrets={SECRET: {"tls.crt": material.chain_pem, "tls.key": material.key_pem}})
    rendering = mock_program.render(
        {**CONFIG, "clientCertSource": "alb", "trustedCaPem": material.trusted_pem},
        cluster,
        program=lambda discover: run(discover, preflight=lambda *args, **kwargs: []),
    )
    if rendering.error is not None:
        raise AssertionError(f"the program refused to render the case: {rendering.error}")
    # nginx serves the LE-like ALB certificate to the test client; alb-certs carries the chain.
    hop = dataplane.ClusterMaterial(ALB_CERT.chain_pem, ALB_CERT.key_pem, GATEWAY_CERT.chain_pem, GATEWAY_CERT.key_pem)
    with dataplane.LoopbackDataPlane.from_manifests(rendering.manifests(), hop) as dp:
        before = dp.envoy_ssl_stats()
        answer = get(dp, ALB_HOST, "/status/418")
        after = dp.envoy_ssl_stats()
        nginx_log = dp.log_tail("nginx", 60)
    failed = [
        f"envoy ssl.{name}"
        for name, count in sorted(after.items())
        if count > before.get(name, 0) and (name.startswith("fail_") or name == "connection_error")
    ]
    return _verdict(answer.status, failed, nginx_log)


def _alb_verdict(material: Material, role: Role) -> Verdict:
    """The program's rendering (private-ca), ``ca.crt`` of alb-certs holding this bundle as
    trustedCaPem would, and the gateway serving this chain: nginx (or Traefik) verifies it."""
    manifests = copy.deepcopy(_server_rendering(material.gateway_domain, "traefik" if role == "traefik" else "nginx"))
    alb_certs = next(m for m in manifests if m["kind"] == "Secret" and m["metadata"]["name"] == specs.ALB_CERTS_SECRET)
    alb_certs["stringData"]["ca.crt"] = material.trusted_pem
    hop = dataplane.ClusterMaterial(ALB_CERT.chain_pem, ALB_CERT.key_pem, material.chain_pem, material.key_pem)
    with dataplane.LoopbackDataPlane.from_manifests(manifests, hop) as dp:
        answer = get(dp, ALB_HOST, "/status/418")
        alb_log = dp.log_tail(dp.alb, 400)
    return _verdict(answer.status, [], alb_log)


@functools.cache
def _server_rendering(gateway_domain: str, flavor: str) -> list[dict[str, Any]]:
    config: dict[str, Any] = {**CONFIG, "albFlavor": flavor}
    if gateway_domain != GATEWAY_DOMAIN:
        config.update(gatewayDomain=gateway_domain, gatewaySecret=gateway_domain.split(".", 1)[0])
    rendering = mock_program.render(config, standin())
    if rendering.error is not None:
        raise AssertionError(f"the program refused to render the case: {rendering.error}")
    return rendering.manifests()


_NGINX_VERIFY_ERROR = re.compile(r"upstream SSL certificate verify error: \((\d+:[^)]*)\)")
_TRAEFIK_VERIFY_ERROR = re.compile(r"tls: failed to verify certificate: (x509: [^\"]*)")


def _verdict(status: int | None, envoy_evidence: list[str], alb_log: str) -> Verdict:
    if status == 418:
        return Verdict(True, "418 through the ALB and the gateway")
    evidence = list(envoy_evidence)
    evidence += [f"nginx: {m}" for m in dict.fromkeys(_NGINX_VERIFY_ERROR.findall(alb_log))]
    evidence += [f"traefik: {m}" for m in dict.fromkeys(_TRAEFIK_VERIFY_ERROR.findall(alb_log))]
    return Verdict(False, f"{status or 'no answer'}; " + (", ".join(evidence) or "no reason logged"))
