"""The test PKI: :mod:`tools.x509` plus what only tests need.

Why on top of the tools' builder: the certificate checks, the program's mock tests and the
data-plane tests (nginx + Envoy) need certificates with the *same extensions* as the real ones,
and one builder keeps the stand-ins, the rehearsal and the tests in step (as cert-manager's test
fixtures sign with its production PKI code).  Added here: realistic IKS names, a Let's
Encrypt-like hierarchy built once per process, and pulumi-tls-like client certificates signed
by the mocks' own pulumi-tls profile (:func:`tools.tls_standin.sign`).

Names are prefixed with "Test" so nobody mistakes them for the real thing. Keys are throwaway
and in memory; nothing here touches disk.
"""


from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from tools import tls_standin
from tools import x509 as tx
from tools.x509 import LEAF_LIFETIME, Issued, Key, LetsEncryptLike, key_pem, new_key, pem, utcnow

__all__ = [
    "ALB_DOMAIN",
    "ALB_HOST",
    "ALB_SANS",
    "ALB_SECRET_NAME",
    "CA",
    "GATEWAY_DOMAIN",
    "GATEWAY_SANS",
    "GATEWAY_SECRET_NAME",
    "Issued",
    "LetsEncryptLike",
    "alb_leaf",
    "gateway_leaf",
    "key_pem",
    "letsencrypt_like",
    "new_key",
    "pem",
    "private_ca",
    "self_signed_ca",
    "utcnow",
]

# --- realistic IKS names (longer than the 64 characters a CN can hold) ------------------------
ALB_DOMAIN = "mycluster-0123456789abcdef0123456789abcdef-0000.us-south.containers.appdomain.cloud"
"""The cluster's Ingress subdomain (``ibmcloud ks cluster get`` → ``.ingress.hostname``)."""
ALB_SECRET_NAME = ALB_DOMAIN.split(".", 1)[0]
"""The ALB's default TLS secret in namespace ``default`` is named after the first label."""
ALB_HOST = f"httpbin.{ALB_DOMAIN}"
"""The host the Ingress serves (``httpbin.<albDomain>``)."""
ALB_SANS = (f"*.{ALB_DOMAIN}", ALB_DOMAIN)
"""The DNS names of the IKS-issued ALB certificate."""
GATEWAY_DOMAIN = (
    "mycluster-0123456789abcdef0123456789abcdef-0001.us-south.containers.appdomain.cloud"
)
"""An nlb-dns subdomain registered for the Istio ingress gateway's IP."""
GATEWAY_SECRET_NAME = GATEWAY_DOMAIN.split(".", 1)[0]
"""The nlb-dns certificate's secret in the gateway's namespace (named after the first label)."""
GATEWAY_SANS = (GATEWAY_DOMAIN, f"*.{GATEWAY_DOMAIN}")
"""The DNS names of the IKS-issued nlb-dns certificate."""


#: What the program's pulumi-tls resources ask for (components/client_pki.py).
PRIVATE_CA_USES = ("cert_signing", "crl_signing", "digital_signature")
CLIENT_USES = ("client_auth", "digital_signature", "key_encipherment")


class CA(tx.CA):
    """:class:`tools.x509.CA` plus client certificates as the program's pulumi-tls makes them."""

    def issue_client(
        self,
        dns_names: Sequence[str],
        *,
        server_auth: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        common_name: str | None = "iks-alb",
        organization: str | None = "mycluster",
        key: Key | None = None,
    ) -> Issued:
        """A client certificate as LocallySignedCert makes it for the ALB (the mocks' profile):
        keyUsage digitalSignature + keyEncipherment, EKU clientAuth, short CN, the (long) IKS
        names in the SAN."""
        key = key or new_key()
        not_before = not_before or utcnow() - dt.timedelta(hours=1)
        cert = tls_standin.sign(
            tx.dn(common_name, organization=organization),
            key.public_key(),
            signer=self.key,
            issuer=self.name,
            allowed_uses=[*CLIENT_USES, *(["server_auth"] if server_auth else [])],
            is_ca=False,
            dns_names=dns_names,
            not_before=not_before,
            not_after=not_after or not_before + LEAF_LIFETIME,
        )
        return Issued(cert=cert, key=key, chain=self.chain)


self_signed_ca = CA.self_signed
"""A self-signed root like ISRG Root X1 whose CAs can issue pulumi-tls-like clients."""


def private_ca(
    name: str = "iks-alb-istio-mtls client CA",
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> CA:
    """A CA as the program makes it with pulumi-tls (SelfSignedCert ``is_ca_certificate``,
    allowed_uses cert_signing/crl_signing/digital_signature), signed by the mocks' profile.

    Its ``issue_client`` makes what LocallySignedCert makes for the ALB.
    """
    key = new_key()
    cert = tls_standin.sign(
        tx.dn(name, organization="iks-alb-istio-mtls"),
        key.public_key(),
        signer=key,
        allowed_uses=PRIVATE_CA_USES,
        is_ca=True,
        not_before=not_before or utcnow() - dt.timedelta(days=10 * 365),
        not_after=not_after or utcnow() + dt.timedelta(days=10 * 365),
    )
    return CA(cert=cert, key=key)


@functools.cache
def letsencrypt_like(now: dt.datetime | None = None) -> LetsEncryptLike:
    """The "Test" LE-like hierarchy, built once per process (per ``now``), valid around ``now``."""
    return tx.letsencrypt_like(now, label="Test")


def alb_leaf(
    le: LetsEncryptLike | None = None,
    *,
    client_auth: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """The IKS ALB certificate (``*.<albDomain>``, ``<albDomain>``) from the LE-like CA."""
    return (le or letsencrypt_like()).issue_leaf(
        list(ALB_SANS), client_auth=client_auth, not_before=not_before, not_after=not_after
    )


def gateway_leaf(
    le: LetsEncryptLike | None = None,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """The nlb-dns certificate for the gateway subdomain from the LE-like CA (serverAuth)."""
    return (le or letsencrypt_like()).issue_leaf(
        list(GATEWAY_SANS), not_before=not_before, not_after=not_after
    )
