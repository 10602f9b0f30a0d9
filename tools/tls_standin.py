"""What pulumi-tls would return, computed locally with ``cryptography`` (for the offline renderer).

Under Pulumi's mocks no provider runs, so the renderer answers pulumi-tls resources with
real keys and certificates made the way the provider makes them (allowed_uses -> key usage
and EKU, ``is_ca_certificate`` -> basic constraints).  The keys live in memory only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_EKU: Final = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
}
_KEY_USAGE: Final = {
    "digital_signature": "digital_signature",
    "content_commitment": "content_commitment",
    "key_encipherment": "key_encipherment",
    "data_encipherment": "data_encipherment",
    "key_agreement": "key_agreement",
    "cert_signing": "key_cert_sign",
    "crl_signing": "crl_sign",
}


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def private_key(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``tls:index/privateKey:PrivateKey``: ECDSA (curve P224/P256/P384/P521) or RSA."""
    algorithm = inputs.get("algorithm", "RSA")
    key: Any
    if algorithm == "ECDSA":
        curves = {"P224": ec.SECP224R1(), "P256": ec.SECP256R1(), "P384": ec.SECP384R1(), "P521": ec.SECP521R1()}
        key = ec.generate_private_key(curves[str(inputs.get("ecdsaCurve", "P224"))])
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs.get("rsaBits", 2048)))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return {**inputs, "privateKeyPem": pem, "publicKeyPem": public, "algorithm": algorithm}


def _name(subject: Mapping[str, Any] | None) -> x509.Name:
    subject = subject or {}
    attributes = []
    for key, oid in (("organization", NameOID.ORGANIZATION_NAME), ("commonName", NameOID.COMMON_NAME)):
        if subject.get(key):
            attributes.append(x509.NameAttribute(oid, str(subject[key])))
    return x509.Name(attributes)


def _build(
    *,
    subject: x509.Name,
    public_key: Any,
    issuer: x509.Name,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    issuer_public_key: Any,
    inputs: Mapping[str, Any],
    dns_names: Sequence[str],
    now: dt.datetime,
) -> dict[str, Any]:
    uses = list(inputs.get("allowedUses") or [])
    hours = float(inputs.get("validityPeriodHours", 24))
    not_after = now + dt.timedelta(hours=hours)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=bool(inputs.get("isCaCertificate")), path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False)
    )
    flags = {name: False for name in _KEY_USAGE.values()}
    for use in uses:
        if use in _KEY_USAGE:
            flags[_KEY_USAGE[use]] = True
    if any(flags.values()):
        builder = builder.add_extension(x509.KeyUsage(encipher_only=False, decipher_only=False, **flags), critical=True)
    ekus = [_EKU[use] for use in uses if use in _EKU]
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    return {
        **inputs,
        "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "validityStartTime": _rfc3339(now),
        "validityEndTime": _rfc3339(not_after),
        "readyForRenewal": False,
    }


def self_signed_cert(inputs: Mapping[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """``tls:index/selfSignedCert:SelfSignedCert``."""
    key = serialization.load_pem_private_key(str(inputs["privateKeyPem"]).encode(), None)
    assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    name = _name(inputs.get("subject"))
    return _build(
        subject=name, public_key=key.public_key(), issuer=name, issuer_key=key, issuer_public_key=key.public_key(),
        inputs=inputs, dns_names=list(inputs.get("dnsNames") or []), now=now or dt.datetime.now(dt.timezone.utc),
    )


def cert_request(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``tls:index/certRequest:CertRequest``."""
    key = serialization.load_pem_private_key(str(inputs["privateKeyPem"]).encode(), None)
    assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(inputs.get("subject")))
    dns_names = list(inputs.get("dnsNames") or [])
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return {**inputs, "certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode()}


def locally_signed_cert(inputs: Mapping[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """``tls:index/locallySignedCert:LocallySignedCert``: subject and SANs come from the CSR."""
    csr = x509.load_pem_x509_csr(str(inputs["certRequestPem"]).encode())
    ca_key = serialization.load_pem_private_key(str(inputs["caPrivateKeyPem"]).encode(), None)
    assert isinstance(ca_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    ca_cert = x509.load_pem_x509_certificate(str(inputs["caCertPem"]).encode())
    try:
        dns_names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    return _build(
        subject=csr.subject, public_key=csr.public_key(), issuer=ca_cert.subject, issuer_key=ca_key,
        issuer_public_key=ca_cert.public_key(), inputs=inputs, dns_names=dns_names,
        now=now or dt.datetime.now(dt.timezone.utc),
    )


#: Mock answers by Pulumi type token.
#: What each resource computes (unknown in a first ``pulumi preview``).
COMPUTED: Final[dict[str, tuple[str, ...]]] = {
    "tls:index/privateKey:PrivateKey": ("privateKeyPem", "publicKeyPem"),
    "tls:index/selfSignedCert:SelfSignedCert": ("certPem", "validityStartTime", "validityEndTime", "readyForRenewal"),
    "tls:index/certRequest:CertRequest": ("certRequestPem",),
    "tls:index/locallySignedCert:LocallySignedCert": ("certPem", "validityStartTime", "validityEndTime", "readyForRenewal"),
}

HANDLERS: Final[dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]]] = {
    "tls:index/privateKey:PrivateKey": private_key,
    "tls:index/selfSignedCert:SelfSignedCert": self_signed_cert,
    "tls:index/certRequest:CertRequest": cert_request,
    "tls:index/locallySignedCert:LocallySignedCert": locally_signed_cert,
}
