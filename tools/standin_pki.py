"""A throwaway, Let's Encrypt-shaped PKI for ``rehearse``: what the cluster would hold.

On a cluster IKS supplies the ALB's certificate and nlb-dns issues the gateway's, both from
Let's Encrypt with ``serverAuth`` only (the 2026 default profile).  The rehearsal needs the
same shapes without a cluster: a root, an issuing intermediate limited to ``serverAuth``, and
leaves for the IKS names (often longer than the 64 characters a common name may hold, so the
names go in the SAN).  Keys are ECDSA P-256, in memory; nothing here touches disk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CN_MAX = 64


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass(frozen=True)
class Leaf:
    """A certificate with the chain a server sends after it, and its key."""

    chain_pem: str
    key_pem: str = field(repr=False)


@dataclass(frozen=True)
class StandInPki:
    """Root ← intermediate (serverAuth only) ← leaves, valid around ``now``."""

    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey = field(repr=False)
    intermediate: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def anchors_pem(self) -> str:
        """What a verifier trusts (the rehearsal's ``trustedCaPem``)."""
        return _pem(self.root)

    def leaf(self, dns_names: Sequence[str], *, days: int = 90) -> Leaf:
        """A server leaf as Let's Encrypt issues it in 2026: EKU serverAuth only."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])] if len(dns_names[0]) <= CN_MAX else []
        cert = (
            _builder(x509.Name(subject), self.intermediate.subject, key, now - dt.timedelta(hours=1), now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.intermediate_key.public_key()), critical=False)
            .sign(self.intermediate_key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")
        return Leaf(_pem(cert) + _pem(self.intermediate), key_pem)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, not_before: dt.datetime, not_after: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def letsencrypt_shaped(now: dt.datetime | None = None) -> StandInPki:
    """A fresh hierarchy: ``Rehearsal Root X1`` → ``Rehearsal YR1`` (serverAuth only)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    year = dt.timedelta(days=365)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rehearsal Root X1 (not trusted anywhere)")])
    root = (
        _builder(root_name, root_name, root_key, now - year, now + 5 * year)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = (
        _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rehearsal YR1")]), root_name, inter_key, now - year, now + 2 * year)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return StandInPki(root, root_key, inter, inter_key)
