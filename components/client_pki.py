"""Recipe steps 7-8 on today's platform: the certificate the ALB presents to the gateway.

``private-ca`` (default): a small CA and an ALB client certificate with ``clientAuth``,
made by pulumi-tls and kept in (encrypted) state.  ``alb``: the recipe's way, the ALB's own
certificate read from the cluster, refused by the preflight when it cannot act as a client
certificate (Let's Encrypt dropped ``clientAuth`` in 2026).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from . import certs, specs
from .settings import ClientCertSource

#: The private CA outlives many client certificates; rotating it swaps the gateway's trust.
CA_VALIDITY_HOURS = 10 * 365 * 24
CA_EARLY_RENEWAL_HOURS = 365 * 24


@dataclass(frozen=True)
class CheckedMaterial:
    """ALB certificate material that passed the preflight."""

    cert_pem: str
    key_pem: str
    not_after: str


class Preflight(Protocol):
    """Checks the ALB's certificate and key before anything carries them; returns warnings."""

    def __call__(
        self, tls_crt: str, tls_key: str, trusted_pem: str, *, alb_host: str, secret_ref: str
    ) -> list[str]: ...


class ClientPkiArgs(TypedDict):
    """What :class:`ClientPki` needs."""

    source: ClientCertSource
    """``private-ca`` (made here) or ``alb`` (the ALB's own certificate) (``clientCertSource``)."""
    cluster: str
    """The cluster's name, the certificates' organization (``cluster``)."""
    alb_domain: str
    """The ALB's Ingress subdomain: the client certificate's SAN derives from it."""
    alb_secret_ref: str
    """``namespace/name`` of the ALB's TLS secret (``alb`` source only)."""
    trusted_ca_pem: str
    """The roots the ALB trusts for the gateway (``alb`` source: the gateway's client CA too)."""
    validity_hours: int
    """Validity of the client certificate (``clientCertValidityHours``)."""
    early_renewal_hours: int
    """How long before expiry ``pulumi up`` renews it (``clientCertEarlyRenewalHours``)."""
    preflight: Preflight
    """The check of the ALB's material: :func:`certs.preflight_alb_client_material` unless a
    rehearsal asks for another."""


def decode_secret_data(
    data: Mapping[str, str] | None, key: str, secret_ref: str, what: str = "the ALB's TLS secret (albSecret)"
) -> str:
    """One key of a Secret read from the cluster (``.data`` is base64), or a clear error."""
    if not data or key not in data or not data[key]:
        raise pulumi.RunError(f"secret {secret_ref} has no key {key}: it is not {what}")
    try:
        return base64.b64decode(data[key], validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise pulumi.RunError(f"secret {secret_ref} key {key} is not base64-encoded PEM text") from None


class ClientPki(pulumi.ComponentResource):
    """What the ALB presents (client cert + key), what the gateway trusts, and what it pins."""

    client_cert_pem: pulumi.Output[str]
    """The certificate the ALB presents to the gateway."""
    client_key_pem: pulumi.Output[str]
    """Its private key (a secret)."""
    gateway_trusted_ca_pem: pulumi.Output[str]
    """What the gateway trusts for client certificates (the ``-cacert`` secret)."""
    pinned_sans: pulumi.Output[Sequence[str]]
    """The client SANs the gateway accepts."""
    not_after: pulumi.Output[str]
    """When the client certificate expires (stack output ``clientCertificateNotAfter``)."""
    ca_cert_pem: pulumi.Output[str] | None = None
    """The program's CA (``private-ca``), which also issues the gateway's certificate with
    ``gatewayCertSource=private-ca``."""
    ca_private_key_pem: pulumi.Output[str] | None = None
    """Its private key (a secret)."""

    def __init__(self, name: str, args: ClientPkiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        """``opts`` carries the Kubernetes provider (``providers``), which the ALB secret's read inherits."""
        super().__init__("iks-alb-istio-mtls:index:ClientPki", name, None, opts)
        if args["source"] == "private-ca":
            self._private_ca(name, args)
        else:
            self._alb_certificate(name, args)
        self.register_outputs({"notAfter": self.not_after, "pinnedSans": self.pinned_sans})

    def _private_ca(self, name: str, args: ClientPkiArgs) -> None:
        organization = args["cluster"][:64]
        child = pulumi.ResourceOptions(parent=self)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name="iks-alb-istio-mtls ALB client CA", organization=organization),
            is_ca_certificate=True,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            validity_period_hours=CA_VALIDITY_HOURS,
            early_renewal_hours=CA_EARLY_RENEWAL_HOURS,
            opts=child,
        )
        key = tls.PrivateKey(f"{name}-client-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        # IKS names are often longer than the 64 characters a common name may hold:
        # the ALB's name goes into the SAN, which is what the gateway pins.
        dns_name = specs.alb_client_dns_name(args["alb_domain"])
        csr = tls.CertRequest(
            f"{name}-client-csr",
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name="iks-alb", organization=organization),
            dns_names=[dns_name],
            opts=child,
        )
        cert = tls.LocallySignedCert(
            f"{name}-client-cert",
            cert_request_pem=csr.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem,
            allowed_uses=["client_auth", "digital_signature", "key_encipherment"],
            validity_period_hours=args["validity_hours"],
            early_renewal_hours=args["early_renewal_hours"],
            opts=child,
        )
        self.client_cert_pem = cert.cert_pem
        self.client_key_pem = pulumi.Output.secret(key.private_key_pem)
        self.gateway_trusted_ca_pem = ca.cert_pem
        self.ca_cert_pem = ca.cert_pem
        self.ca_private_key_pem = pulumi.Output.secret(ca_key.private_key_pem)
        self.pinned_sans = pulumi.Output.from_input([dns_name])
        self.not_after = cert.validity_end_time

    def _alb_certificate(self, name: str, args: ClientPkiArgs) -> None:
        secret_ref, alb_domain, trusted_ca_pem = args["alb_secret_ref"], args["alb_domain"], args["trusted_ca_pem"]
        source = k8s.core.v1.Secret.get(f"{name}-alb-secret", secret_ref, opts=pulumi.ResourceOptions(parent=self))
        host = specs.alb_host(alb_domain)

        def preflight(data: Mapping[str, str] | None) -> CheckedMaterial:
            cert_pem = decode_secret_data(data, "tls.crt", secret_ref)
            key_pem = decode_secret_data(data, "tls.key", secret_ref)
            try:
                warnings = args["preflight"](
                    cert_pem, key_pem, trusted_ca_pem, alb_host=host, secret_ref=secret_ref
                )
            except certs.CertificateError as exc:
                raise pulumi.RunError(str(exc)) from None
            for warning in warnings:
                pulumi.log.warn(warning, resource=self)
            # Carry the checked material in canonical form, not as the secret holds it.
            try:
                cert_pem = certs.to_pem(certs.parse_certificates(cert_pem, f"secret {secret_ref} key tls.crt"))
                key_pem = certs.key_to_pem(certs.parse_private_key(key_pem, f"secret {secret_ref} key tls.key"))
            except certs.CertificateError as exc:
                raise pulumi.RunError(str(exc)) from None
            return CheckedMaterial(cert_pem, key_pem, certs.not_after_iso(cert_pem))

        checked = pulumi.Output.secret(cast(Any, source.data)).apply(preflight)
        # Certificates are public: only the key stays secret.  Every value below waits for
        # the preflight, so nothing that carries the material exists when it fails.
        self.client_cert_pem = pulumi.Output.unsecret(checked.apply(lambda m: m.cert_pem))
        self.client_key_pem = checked.apply(lambda m: m.key_pem)
        # The gateway then trusts the public roots for the client: pin the ALB's own names.
        self.gateway_trusted_ca_pem = pulumi.Output.unsecret(checked.apply(lambda _: trusted_ca_pem))
        self.pinned_sans = pulumi.Output.unsecret(checked.apply(lambda _: specs.alb_pinned_names(alb_domain)))
        self.not_after = pulumi.Output.unsecret(checked.apply(lambda m: m.not_after))
