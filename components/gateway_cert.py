"""Recipe steps 4-6 without IBM's DNS (``gatewayCertSource=private-ca``): the gateway's
certificate from the program's own CA, for the gateway Service's cluster DNS name.

The hop never leaves the cluster, so it needs no public name: the CA that issues the ALB's
client certificate (:mod:`components.client_pki`) also issues the gateway's server
certificate, and the ALB verifies the gateway against that CA (``ca.crt`` of ``alb-certs``)
with SNI and ``proxy-ssl-name``/``serverName`` set to the name below.  Like the client
certificate it is renewed on the first ``pulumi up`` within ``gatewayCertEarlyRenewalHours``
of expiry, and the Secret is updated in place (the provider's ``enable_secret_mutable``): the
gateway's Envoy picks the new certificate up over SDS without a restart.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from . import specs


class GatewayCertArgs(TypedDict):
    """What :class:`GatewayCert` needs."""

    cluster: str
    """The certificates' organization (``cluster``)."""
    namespace: str
    """The gateway's namespace (``gatewayNamespace``): Istio reads ``credentialName`` there."""
    gateway_service: str
    """The gateway's Service (``gatewayService``), whose cluster DNS name the certificate is for."""
    ca_cert_pem: pulumi.Output[str]
    """The program's CA."""
    ca_private_key_pem: pulumi.Output[str]
    """Its private key (a secret)."""
    validity_hours: int
    """``gatewayCertValidityHours``."""
    early_renewal_hours: int
    """``gatewayCertEarlyRenewalHours``."""


class GatewayCert(pulumi.ComponentResource):
    """The gateway's name and certificate secret, issued here (the counterpart of :class:`GatewayDns`)."""

    hostname: pulumi.Output[str]
    """The name the ALB sends as SNI and verifies: ``<gatewayService>.<gatewayNamespace>.svc``."""
    secret_name: pulumi.Output[str]
    """The certificate secret in the gateway's namespace (the Gateway's ``credentialName``)."""
    not_after: pulumi.Output[str]
    """When the gateway's certificate expires (stack output ``gatewayCertificateNotAfter``)."""
    secret: k8s.core.v1.Secret

    def __init__(self, name: str, args: GatewayCertArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        """``opts`` carries the Kubernetes provider (``providers``), which the Secret inherits."""
        super().__init__("iks-alb-istio-mtls:index:GatewayCert", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        names = specs.gateway_internal_names(args["gateway_service"], args["namespace"])
        key = tls.PrivateKey(f"{name}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        csr = tls.CertRequest(
            f"{name}-csr",
            private_key_pem=key.private_key_pem,
            # The names go into the SANs, which is what TLS checks; a common name holds at most 64.
            subject=tls.CertRequestSubjectArgs(common_name="istio-ingressgateway", organization=args["cluster"][:64]),
            dns_names=names,
            opts=child,
        )
        cert = tls.LocallySignedCert(
            f"{name}-cert",
            cert_request_pem=csr.cert_request_pem,
            ca_private_key_pem=args["ca_private_key_pem"],
            ca_cert_pem=args["ca_cert_pem"],
            allowed_uses=["server_auth", "digital_signature", "key_encipherment"],
            validity_period_hours=args["validity_hours"],
            early_renewal_hours=args["early_renewal_hours"],
            opts=child,
        )
        data = pulumi.Output.all(cert.cert_pem, key.private_key_pem).apply(
            lambda pems: {"tls.crt": pems[0], "tls.key": pems[1]}
        )
        # Renewal changes the data: updated in place, never deleted and re-created.
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={
                "name": specs.PRIVATE_GATEWAY_SECRET,
                "namespace": args["namespace"],
                "labels": specs.labels("istio-ingressgateway"),
            },
            type="kubernetes.io/tls",
            string_data=pulumi.Output.secret(cast(Any, data)),
            opts=child,
        )
        self.hostname = pulumi.Output.from_input(names[0])
        # The name waits for the Secret, so whatever names it (the Gateway) comes after it.
        self.secret_name = self.secret.metadata.apply(lambda _: specs.PRIVATE_GATEWAY_SECRET)
        self.not_after = cert.validity_end_time
        self.register_outputs({"hostname": self.hostname, "secretName": self.secret_name})
