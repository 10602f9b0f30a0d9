"""The one X.509 builder of the tools and the tests: keys, names, certificates, PEM, cert+key records.

Why one: the pulumi-tls stand-ins (:mod:`tools.tls_standin`), the rehearsal's stand-in cluster
PKI (:func:`letsencrypt_like`) and the test PKI (``tests/support/pki.py``, which extends this
module the way cert-manager's test fixtures sign with its production PKI code) all need
certificates with the *same extensions* as the real ones, so that they fail for the same reasons
real ones do.  Two builders drift; one does not.

The Let's Encrypt-like hierarchy copies the Gen-Y certificates (see
``/work/shared/reference/letsencrypt/*.pem``):

- roots: basicConstraints CA (critical), keyUsage keyCertSign + cRLSign (critical), SKI;
- the cross-signed "Root YR" (issued by "ISRG Root X1"): as a root plus AKI, AIA, policies,
  CRL DP **and EKU serverAuth only**;
- the "YR1" intermediate: pathlen 0, keyUsage digitalSignature + keyCertSign + cRLSign,
  **EKU serverAuth only**;
- leaves: keyUsage digitalSignature (+ keyEncipherment for RSA keys), EKU serverAuth only (the
  default profile since 11 Feb 2026), SAN DNS names, and a common name only when the first name
  fits the 64-character limit of an X.509 CN (IKS subdomains often do not).

Keys are ECDSA P-256 unless asked otherwise, throwaway and in memory; nothing here touches disk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA",
    "CN_MAX",
    "LEAF_LIFETIME",
    "Issued",
    "Key",
    "LetsEncryptLike",
    "certificate",
    "dn",
    "key_pem",
    "key_usage",
    "letsencrypt_distribution",
    "letsencrypt_like",
    "load_key",
    "new_key",
    "pem",
    "public_key_pem",
    "utcnow",
]

Key = CertificateIssuerPrivateKeyTypes
"""A private key that can sign certificates (what every record here holds)."""

CN_MAX = 64  # ub-common-name in RFC 5280
LEAF_LIFETIME = dt.timedelta(days=90)  # Let's Encrypt's default profile in 2026
LE_POLICY = x509.ObjectIdentifier("2.23.140.1.2.1")  # CA/B Forum domain-validated


# --- keys, names, PEM ---------------------------------------------------------------------------


def utcnow() -> dt.datetime:
    """Aware UTC now, truncated to seconds (X.509 times have no fractions)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key: fast to generate, accepted by every verifier we use."""
    return ec.generate_private_key(ec.SECP256R1())


def pem(*certs: x509.Certificate) -> str:
    """Concatenate certificates as PEM text (leaf first, as a ``tls.crt`` holds them)."""
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


def key_pem(key: PrivateKeyTypes, password: bytes | None = None, *, traditional: bool = False) -> str:
    """PEM of a private key: PKCS#8, or ``traditional`` (``BEGIN EC/RSA PRIVATE KEY``, as Go's
    pulumi-tls writes it); encrypted when a password is given (to test refusing it)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode("ascii")


def public_key_pem(key: PrivateKeyTypes) -> str:
    """The SubjectPublicKeyInfo PEM of a private key's public half."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def load_key(text: str) -> Key:
    """An unencrypted PEM private key that can sign certificates (else ``TypeError``)."""
    key = serialization.load_pem_private_key(text.encode(), None)
    if not isinstance(
        key,
        ec.EllipticCurvePrivateKey
        | rsa.RSAPrivateKey
        | dsa.DSAPrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        raise TypeError(f"a {type(key).__name__} cannot sign certificates here")
    return key


def dn(common_name: str | None = None, *, organization: str | None = None, country: str | None = None) -> x509.Name:
    """A distinguished name in the order real certificates have it (C, O, CN); empty parts left out."""
    parts = ((NameOID.COUNTRY_NAME, country), (NameOID.ORGANIZATION_NAME, organization), (NameOID.COMMON_NAME, common_name))
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts if value])


def key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    data_encipherment: bool = False,
    key_agreement: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """A keyUsage value naming only the bits that are set (the rest default to off)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=data_encipherment,
        key_agreement=key_agreement,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


# --- the builder ----------------------------------------------------------------------------------


def certificate(
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    *,
    signer: Key,
    issuer: x509.Name | None = None,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool | None = False,
    path_length: int | None = None,
    usage: x509.KeyUsage | None = None,
    ekus: Sequence[x509.ObjectIdentifier] | None = None,
    dns_names: Sequence[str] = (),
    ski: bool = True,
    aki: bool = True,
    extensions: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    """Every certificate of the tools and tests comes from here.

    ``issuer`` defaults to ``subject`` (self-signed: then ``signer`` is the subject's own key).
    ``ca`` sets basicConstraints (critical; ``None`` leaves the extension out), ``usage`` the
    keyUsage (critical), ``ekus`` the extendedKeyUsage (left out when empty or ``None``: any
    purpose).  The SAN is critical exactly when the subject is empty, as RFC 5280 requires and
    Go's crypto/x509 does.  ``aki`` derives from ``signer``'s public key, ``ski`` from
    ``public_key``; ``extensions`` are added as they are, non-critical.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=len(subject) == 0
        )
    if ski:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(signer, _hash_for(signer))


def _hash_for(key: Key) -> hashes.SHA256 | None:
    """Ed25519/Ed448 sign without a separate hash; everything else here uses SHA-256."""
    return None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()


def letsencrypt_distribution(label: str) -> tuple[x509.ExtensionType, ...]:
    """AIA (CA issuers), the DV policy and a CRL DP, as on the Gen-Y certificates (``.invalid`` URLs)."""
    return (
        x509.AuthorityInformationAccess(
            [
                x509.AccessDescription(
                    AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier(f"http://{label}.i.lencr.invalid/"),
                )
            ]
        ),
        x509.CertificatePolicies([x509.PolicyInformation(LE_POLICY, None)]),
        x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    full_name=[x509.UniformResourceIdentifier(f"http://{label}.c.lencr.invalid/")],
                    relative_name=None,
                    reasons=None,
                    crl_issuer=None,
                )
            ]
        ),
    )


# --- the cert+key record ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """A certificate, its key, and the certificates a TLS peer sends after it.

    The one cert+key record of the tools and the tests: a secret's ``tls.crt``/``tls.key`` is
    ``chain_pem``/``key_pem``, a verifier takes ``certs``.
    """

    cert: x509.Certificate
    key: Key = field(repr=False)
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


_CA = TypeVar("_CA", bound="CA")


@dataclass(frozen=True)
class CA(Issued):
    """A certificate authority that issues leaves, intermediates and cross-signs.

    ``chain`` of a CA is what a certificate *issued by it* must send after itself: empty for a
    trust anchor, the CA's own certificate (plus its chain) for an intermediate.  The CAs it
    makes are of its own class, so a subclass's extra methods carry down the hierarchy.
    """

    @property
    def name(self) -> x509.Name:
        return self.cert.subject

    @classmethod
    def from_pem(cls: type[_CA], cert_pem: str, key_pem: str) -> _CA:
        """A CA from its certificate and unencrypted key (e.g. pulumi-tls outputs)."""
        return cls(cert=x509.load_pem_x509_certificate(cert_pem.encode()), key=load_key(key_pem))

    @classmethod
    def self_signed(
        cls: type[_CA],
        common_name: str,
        *,
        organization: str | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        path_length: int | None = None,
        digital_signature: bool = False,
        key: Key | None = None,
    ) -> _CA:
        """A self-signed root like ISRG Root X1 (C=US, no AKI), valid ten years either side of now."""
        key = key or new_key()
        subject = dn(common_name, organization=organization, country="US")
        cert = certificate(
            subject,
            key.public_key(),
            signer=key,
            not_before=not_before or utcnow() - dt.timedelta(days=10 * 365),
            not_after=not_after or utcnow() + dt.timedelta(days=10 * 365),
            ca=True,
            path_length=path_length,
            usage=key_usage(digital_signature=digital_signature, key_cert_sign=True, crl_sign=True),
            aki=False,
        )
        return cls(cert=cert, key=key)

    def issue_leaf(
        self,
        dns_names: Sequence[str],
        *,
        server_auth: bool = True,
        client_auth: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key: Key | None = None,
    ) -> Issued:
        """An end-entity certificate for ``dns_names`` shaped like a Let's Encrypt leaf.

        The common name is the first DNS name when it fits in 64 characters, else the subject is
        empty (and the SAN critical); keyEncipherment only for RSA keys, as LE does.
        """
        key = key or new_key()
        not_before = not_before or utcnow() - dt.timedelta(hours=1)
        ekus = [ExtendedKeyUsageOID.SERVER_AUTH] if server_auth else []
        if client_auth:
            ekus.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        common_name = dns_names[0] if dns_names and len(dns_names[0]) <= CN_MAX else None
        cert = certificate(
            dn(common_name),
            key.public_key(),
            signer=self.key,
            issuer=self.name,
            not_before=not_before,
            not_after=not_after or not_before + LEAF_LIFETIME,
            usage=key_usage(digital_signature=True, key_encipherment=isinstance(key, rsa.RSAPrivateKey)),
            ekus=ekus,
            dns_names=dns_names,
            extensions=letsencrypt_distribution("yr"),
        )
        return Issued(cert=cert, key=key, chain=self.chain)

    def intermediate(
        self: _CA,
        common_name: str,
        *,
        organization: str | None = None,
        ekus: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.SERVER_AUTH,),
        path_length: int | None = 0,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key: Key | None = None,
    ) -> _CA:
        """An intermediate CA under this one (LE-style: pathlen 0, EKU serverAuth only).

        Pass ``ekus=None`` for an intermediate without an EKU extension (any purpose).
        """
        key = key or new_key()
        cert = certificate(
            dn(common_name, organization=organization, country="US"),
            key.public_key(),
            signer=self.key,
            issuer=self.name,
            not_before=not_before or utcnow() - dt.timedelta(days=400),
            not_after=not_after or utcnow() + dt.timedelta(days=3 * 365),
            ca=True,
            path_length=path_length,
            usage=key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
            ekus=ekus,
            extensions=letsencrypt_distribution(common_name.lower().replace(" ", "-")),
        )
        return type(self)(cert=cert, key=key, chain=(cert, *self.chain))

    def cross_sign(
        self: _CA,
        other: CA,
        *,
        ekus: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.SERVER_AUTH,),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> _CA:
        """``other``'s subject and key, certified by this CA (like Root YR by ISRG Root X1)."""
        cert = certificate(
            other.name,
            other.key.public_key(),
            signer=self.key,
            issuer=self.name,
            not_before=not_before or utcnow() - dt.timedelta(days=200),
            not_after=not_after or utcnow() + dt.timedelta(days=6 * 365),
            ca=True,
            usage=key_usage(key_cert_sign=True, crl_sign=True),
            ekus=ekus,
            extensions=letsencrypt_distribution("x1"),
        )
        return type(self)(cert=cert, key=other.key, chain=(cert, *self.chain))


# --- the Let's Encrypt-like hierarchy -----------------------------------------------------------------


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
        key: Key | None = None,
    ) -> Issued:
        """A leaf as LE issues it; ``chain_pem`` = leaf + YR1 + Root YR (cross-signed).

        ``client_auth=True`` makes a leaf as LE issued them before 2026 — it still fails as a
        client certificate, because YR1 and the cross-signed Root YR allow serverAuth only.
        """
        return self.yr1.issue_leaf(
            dns_names, client_auth=client_auth, not_before=not_before, not_after=not_after, key=key
        )


def letsencrypt_like(now: dt.datetime | None = None, *, label: str = "Test") -> LetsEncryptLike:
    """A fresh LE-like hierarchy valid around ``now``, its names marked with ``label``.

    The label ("Test", "Rehearsal") keeps anyone from mistaking these for the real roots.
    """
    now = now or utcnow()
    year = dt.timedelta(days=365)
    mark = label.lower()
    x1 = CA.self_signed(
        f"{label} ISRG Root X1",
        organization=f"Internet Security Research Group ({mark})",
        not_before=now - 10 * year,
        not_after=now + 9 * year,
    )
    root_yr = CA.self_signed(
        f"{label} Root YR", organization=f"ISRG ({mark})", not_before=now - year, not_after=now + 19 * year
    )
    root_yr_cross = x1.cross_sign(root_yr, not_before=now - dt.timedelta(days=200), not_after=now + 6 * year)
    yr1 = root_yr_cross.intermediate(
        f"{label} YR1", organization=f"Let's Encrypt ({mark})", not_before=now - year, not_after=now + 2 * year
    )
    return LetsEncryptLike(x1=x1, root_yr=root_yr, root_yr_cross=root_yr_cross, yr1=yr1)
