"""A throw-away test PKI that looks like Let's Encrypt in 2026, plus a pulumi-tls-like private CA.

Why: the certificate checks, the program's mock tests and the data-plane test (nginx + Envoy)
all need certificates with the *same extensions* as the real ones, so that they fail for the
same reasons real ones do. The extensions copy the Gen-Y hierarchy (see
``/work/shared/reference/letsencrypt/*.pem``):

- roots: basicConstraints CA (critical), keyUsage keyCertSign + cRLSign (critical), SKI;
- the cross-signed "Root YR" (issued by "ISRG Root X1"): as a root plus AKI, AIA, policies,
  CRL DP **and EKU serverAuth only**;
- the "YR1" intermediate: pathlen 0, keyUsage digitalSignature + keyCertSign + cRLSign,
  **EKU serverAuth only**;
- leaves: keyUsage digitalSignature (+ keyEncipherment for RSA keys), EKU serverAuth only (the
  default profile since 11 Feb 2026), SAN DNS names, and a common name only when the first name
  fits the 64-character limit of an X.509 CN (IKS subdomains often do not).

Keys are ECDSA P-256 (fast); the LE-like hierarchy is built once per process. Names are
prefixed with "Test" so nobody mistakes them for the real thing. Nothing here touches disk.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
)
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
)

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

CN_MAX = 64  # ub-common-name in RFC 5280
LEAF_LIFETIME = dt.timedelta(days=90)  # LE's default profile in 2026
LE_POLICY = x509.ObjectIdentifier("2.23.140.1.2.1")  # CA/B Forum domain-validated


def utcnow() -> dt.datetime:
    """Aware UTC now, truncated to seconds (X.509 times have no fractions)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key: fast to generate, accepted by every verifier we use."""
    return ec.generate_private_key(ec.SECP256R1())


def pem(*certs: x509.Certificate) -> str:
    """Concatenate certificates as PEM text."""
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


def key_pem(key: CertificateIssuerPrivateKeyTypes, password: bytes | None = None) -> str:
    """PKCS#8 PEM of a key; encrypted when a password is given (to test refusing it)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode("ascii")


@dataclass(frozen=True)
class Issued:
    """A certificate, its key, and the certificates a TLS peer sends after it."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    chain: tuple[x509.Certificate, ...] = ()
    """Intermediates sent after ``cert`` (leaf-first order, no trust anchor)."""

    @property
    def cert_pem(self) -> str:
        return pem(self.cert)

    @property
    def key_pem(self) -> str:
        return key_pem(self.key)

    @property
    def chain_pem(self) -> str:
        """What goes into a ``tls.crt``: the certificate followed by its intermediates."""
        return pem(self.cert, *self.chain)

    @property
    def certs(self) -> list[x509.Certificate]:
        """``[cert, *chain]`` as a list, the shape the verifiers take."""
        return [self.cert, *self.chain]


@dataclass(frozen=True)
class CA(Issued):
    """A certificate authority that can issue leaves, intermediates and cross-signs.

    ``chain`` of a CA is what a certificate *issued by it* must send after itself: empty for a
    trust anchor, the CA's own certificate (plus its chain) for an intermediate.
    """

    @property
    def name(self) -> x509.Name:
        return self.cert.subject

    def issue_leaf(
        self,
        dns_names: Sequence[str],
        *,
        server_auth: bool = True,
        client_auth: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        common_name: str | None = None,
        organization: str | None = None,
        key: CertificateIssuerPrivateKeyTypes | None = None,
        key_encipherment: bool | None = None,
        lifetime: dt.timedelta = LEAF_LIFETIME,
        letsencrypt_extensions: bool = True,
    ) -> Issued:
        """An end-entity certificate (non-CA) for ``dns_names``, shaped like an LE leaf.

        ``common_name`` defaults to the first DNS name when it fits in 64 characters, else the
        subject is empty and the SAN extension is critical, as RFC 5280 requires.
        ``key_encipherment`` defaults to "only for RSA keys" (as LE does).
        ``letsencrypt_extensions`` adds SKI, AIA, the DV policy and a CRL DP.
        """
        key = key or new_key()
        not_before = not_before or utcnow() - dt.timedelta(hours=1)
        not_after = not_after or not_before + lifetime
        if common_name is None and dns_names and len(dns_names[0]) <= CN_MAX:
            common_name = dns_names[0]
        attrs = []
        if organization:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        if common_name:
            attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        subject = x509.Name(attrs)
        ekus = [ExtendedKeyUsageOID.SERVER_AUTH] if server_auth else []
        if client_auth:
            ekus.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        if key_encipherment is None:
            key_encipherment = _is_rsa(key)
        builder = (
            _base_builder(subject, self.name, key, not_before, not_after)
            .add_extension(
                _key_usage(digital_signature=True, key_encipherment=key_encipherment),
                critical=True,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_aki(self.key), critical=False)
        )
        if ekus:
            builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        if dns_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]),
                critical=not attrs,
            )
        if letsencrypt_extensions:
            builder = builder.add_extension(_ski(key), critical=False)
            builder = _le_distribution(builder, "yr")
        cert = builder.sign(self.key, _hash_for(self.key))
        return Issued(cert=cert, key=key, chain=self.chain)

    def issue_client(
        self,
        dns_names: Sequence[str],
        *,
        server_auth: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        common_name: str | None = "iks-alb",
        organization: str | None = "mycluster",
        key: CertificateIssuerPrivateKeyTypes | None = None,
        lifetime: dt.timedelta = LEAF_LIFETIME,
    ) -> Issued:
        """A client certificate as pulumi-tls LocallySignedCert makes it for the ALB.

        allowed_uses client_auth + digital_signature + key_encipherment → keyUsage
        digitalSignature + keyEncipherment, EKU clientAuth; Go adds the AKI; short CN, the
        (long) IKS names in the SAN.
        """
        return self.issue_leaf(
            dns_names,
            server_auth=server_auth,
            client_auth=True,
            not_before=not_before,
            not_after=not_after,
            common_name=common_name,
            organization=organization,
            key=key,
            key_encipherment=True,
            lifetime=lifetime,
            letsencrypt_extensions=False,
        )

    def issue_server(
        self,
        dns_names: Sequence[str],
        *,
        client_auth: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key: CertificateIssuerPrivateKeyTypes | None = None,
        lifetime: dt.timedelta = LEAF_LIFETIME,
    ) -> Issued:
        """A server certificate (EKU serverAuth) for ``dns_names``."""
        return self.issue_leaf(
            dns_names,
            server_auth=True,
            client_auth=client_auth,
            not_before=not_before,
            not_after=not_after,
            key=key,
            lifetime=lifetime,
        )

    def intermediate(
        self,
        common_name: str,
        *,
        organization: str | None = "Let's Encrypt (test)",
        ekus: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.SERVER_AUTH,),
        path_length: int | None = 0,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key: CertificateIssuerPrivateKeyTypes | None = None,
    ) -> CA:
        """An intermediate CA under this one (LE-style: pathlen 0, EKU serverAuth only).

        Pass ``ekus=None`` for an intermediate without an EKU extension (any purpose).
        """
        key = key or new_key()
        not_before = not_before or utcnow() - dt.timedelta(days=400)
        not_after = not_after or utcnow() + dt.timedelta(days=3 * 365)
        builder = (
            _base_builder(_name(common_name, organization), self.name, key, not_before, not_after)
            .add_extension(_key_usage(digital_signature=True, cert_sign=True), critical=True)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(_ski(key), critical=False)
            .add_extension(_aki(self.key), critical=False)
        )
        if ekus is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
        builder = _le_distribution(builder, common_name.lower().replace(" ", "-"))
        cert = builder.sign(self.key, _hash_for(self.key))
        return CA(cert=cert, key=key, chain=(cert, *self.chain))

    def cross_sign(
        self,
        other: CA,
        *,
        ekus: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.SERVER_AUTH,),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> CA:
        """``other``'s subject and key, certified by this CA (like Root YR by ISRG Root X1)."""
        not_before = not_before or utcnow() - dt.timedelta(days=200)
        not_after = not_after or utcnow() + dt.timedelta(days=6 * 365)
        builder = (
            _base_builder(other.name, self.name, other.key, not_before, not_after)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ski(other.key), critical=False)
            .add_extension(_aki(self.key), critical=False)
        )
        if ekus is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
        builder = _le_distribution(builder, "x1")
        cert = builder.sign(self.key, _hash_for(self.key))
        return CA(cert=cert, key=other.key, chain=(cert, *self.chain))


def self_signed_ca(
    common_name: str,
    *,
    organization: str | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    path_length: int | None = None,
    digital_signature: bool = False,
    ca: bool = True,
    key: CertificateIssuerPrivateKeyTypes | None = None,
) -> CA:
    """A self-signed root like ISRG Root X1 (``ca=False`` makes a self-signed non-CA, to test)."""
    key = key or new_key()
    not_before = not_before or utcnow() - dt.timedelta(days=10 * 365)
    not_after = not_after or utcnow() + dt.timedelta(days=10 * 365)
    name = _name(common_name, organization)
    cert = (
        _base_builder(name, name, key, not_before, not_after)
        .add_extension(
            _key_usage(digital_signature=digital_signature or not ca, cert_sign=ca),
            critical=True,
        )
        .add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
        .add_extension(_ski(key), critical=False)
        .sign(key, _hash_for(key))
    )
    return CA(cert=cert, key=key, chain=())


def private_ca(
    name: str = "iks-alb-istio-mtls client CA",
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> CA:
    """A CA like the program makes with pulumi-tls (SelfSignedCert ``is_ca_certificate``,
    allowed_uses cert_signing/crl_signing/digital_signature; Go adds the SKI for a CA).

    Its ``issue_client`` makes what LocallySignedCert makes for the ALB: EKU clientAuth,
    keyUsage digitalSignature + keyEncipherment, AKI, SAN DNS names.
    """
    return self_signed_ca(
        name,
        organization="iks-alb-istio-mtls",
        not_before=not_before,
        not_after=not_after,
        digital_signature=True,
    )


@dataclass(frozen=True)
class LetsEncryptLike:
    """The Gen-Y hierarchy as served by default: leaf ← YR1 ← Root YR (cross) ← ISRG Root X1."""

    x1: CA
    """The trust anchor ("ISRG Root X1"-like, self-signed, no EKU)."""
    root_yr: CA
    """Self-signed "Root YR" (a trust anchor of its own in newer stores)."""
    root_yr_cross: CA
    """"Root YR" cross-signed by X1: EKU serverAuth only, sent in the default chain."""
    yr1: CA
    """The "YR1"-like issuing intermediate: pathlen 0, EKU serverAuth only."""

    @property
    def anchors(self) -> list[x509.Certificate]:
        return [self.x1.cert]

    @property
    def anchors_pem(self) -> str:
        """What a verifier trusts: the X1-like root only (as ``trustedCaPem`` would)."""
        return pem(self.x1.cert)

    def issue_leaf(
        self,
        dns_names: Sequence[str],
        *,
        client_auth: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key: CertificateIssuerPrivateKeyTypes | None = None,
    ) -> Issued:
        """A leaf as LE issues it; ``chain_pem`` = leaf + YR1 + Root YR (cross-signed).

        ``client_auth=True`` makes a leaf as LE issued them before 2026 — it still fails as a
        client certificate, because YR1 and the cross-signed Root YR allow serverAuth only.
        """
        return self.yr1.issue_leaf(
            dns_names,
            client_auth=client_auth,
            not_before=not_before,
            not_after=not_after,
            key=key,
        )


@functools.cache
def letsencrypt_like(now: dt.datetime | None = None) -> LetsEncryptLike:
    """The LE-like hierarchy, built once per process (per ``now``), valid around ``now``."""
    now = now or utcnow()
    year = dt.timedelta(days=365)
    x1 = self_signed_ca(
        "Test ISRG Root X1",
        organization="Internet Security Research Group (test)",
        not_before=now - 10 * year,
        not_after=now + 9 * year,
    )
    root_yr = self_signed_ca(
        "Test Root YR",
        organization="ISRG (test)",
        not_before=now - year,
        not_after=now + 19 * year,
    )
    root_yr_cross = x1.cross_sign(
        root_yr, not_before=now - 200 * dt.timedelta(days=1), not_after=now + 6 * year
    )
    yr1 = root_yr_cross.intermediate("Test YR1", not_before=now - year, not_after=now + 2 * year)
    return LetsEncryptLike(x1=x1, root_yr=root_yr, root_yr_cross=root_yr_cross, yr1=yr1)


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


# --- internals --------------------------------------------------------------------------------


def _name(common_name: str, organization: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _is_rsa(key: CertificateIssuerPrivateKeyTypes) -> bool:
    return isinstance(key, rsa.RSAPrivateKey)


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    # Ed25519/Ed448 sign without a separate hash; everything else here uses SHA-256.
    return (
        hashes.SHA256()
        if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
        else None
    )


def _base_builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: CertificateIssuerPrivateKeyTypes,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _key_usage(
    *, digital_signature: bool = False, cert_sign: bool = False, key_encipherment: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _ski(key: CertificateIssuerPrivateKeyTypes) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _aki(issuer_key: CertificateIssuerPrivateKeyTypes) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())


def _le_distribution(builder: x509.CertificateBuilder, label: str) -> x509.CertificateBuilder:
    """AIA (CA issuers), certificate policy and CRL DP as on the Gen-Y certificates."""
    return (
        builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(f"http://{label}.i.lencr.invalid/"),
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(LE_POLICY, None)]),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[
                            x509.UniformResourceIdentifier(f"http://{label}.c.lencr.invalid/")
                        ],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
    )
