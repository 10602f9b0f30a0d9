"""What pulumi-tls would return, computed locally (for the offline renderer and the tests).

Under Pulumi's mocks no provider runs, so the renderer answers pulumi-tls resources with
real keys and certificates made the way the provider makes them (allowed_uses -> key usage
and EKU, ``is_ca_certificate`` -> basic constraints).  :func:`sign` is that profile on top of
:mod:`tools.x509`; the test PKI signs its "pulumi-tls-like" certificates with it too, so the
mocks and the tests cannot drift apart.  The keys live in memory only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from .x509 import CA, Key, certificate, dn, key_pem, key_usage, load_key, pem, public_key_pem, utcnow

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
_CURVES: Final = {"P224": ec.SECP224R1(), "P256": ec.SECP256R1(), "P384": ec.SECP384R1(), "P521": ec.SECP521R1()}


def sign(
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    *,
    signer: Key,
    issuer: x509.Name | None = None,
    allowed_uses: Sequence[str],
    is_ca: bool,
    dns_names: Sequence[str] = (),
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A certificate as pulumi-tls (Go's crypto/x509) makes it: basicConstraints always, SKI and
    AKI, keyUsage (critical) and EKU from ``allowed_uses``; self-signed when ``issuer`` is None."""
    flags = {_KEY_USAGE[use]: True for use in allowed_uses if use in _KEY_USAGE}
    return certificate(
        subject,
        public_key,
        signer=signer,
        issuer=issuer,
        not_before=not_before,
        not_after=not_after,
        ca=is_ca,
        usage=key_usage(**flags) if flags else None,
        ekus=[_EKU[use] for use in allowed_uses if use in _EKU],
        dns_names=dns_names,
    )


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _subject(inputs: Mapping[str, Any]) -> x509.Name:
    subject = inputs.get("subject") or {}
    return dn(subject.get("commonName") or None, organization=subject.get("organization") or None)


def _signed(
    inputs: Mapping[str, Any],
    now: dt.datetime | None,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    signer: Key,
    issuer: x509.Name | None,
    dns_names: Sequence[str],
) -> dict[str, Any]:
    """The outputs of a (self- or locally) signed certificate resource, valid from ``now`` on."""
    not_before = now or utcnow()
    not_after = not_before + dt.timedelta(hours=float(inputs.get("validityPeriodHours", 24)))
    cert = sign(
        subject,
        public_key,
        signer=signer,
        issuer=issuer,
        dns_names=dns_names,
        allowed_uses=list(inputs.get("allowedUses") or []),
        is_ca=bool(inputs.get("isCaCertificate")),
        not_before=not_before,
        not_after=not_after,
    )
    return {
        **inputs,
        "certPem": pem(cert),
        "validityStartTime": _rfc3339(not_before),
        "validityEndTime": _rfc3339(not_after),
        "readyForRenewal": False,
    }


def private_key(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``tls:index/privateKey:PrivateKey``: ECDSA (curve P224/P256/P384/P521) or RSA."""
    algorithm = inputs.get("algorithm", "RSA")
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if algorithm == "ECDSA":
        key = ec.generate_private_key(_CURVES[str(inputs.get("ecdsaCurve", "P224"))])
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs.get("rsaBits", 2048)))
    return {
        **inputs,
        "privateKeyPem": key_pem(key, traditional=True),
        "publicKeyPem": public_key_pem(key),
        "algorithm": algorithm,
    }


def self_signed_cert(inputs: Mapping[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """``tls:index/selfSignedCert:SelfSignedCert``."""
    key = load_key(str(inputs["privateKeyPem"]))
    return _signed(inputs, now, _subject(inputs), key.public_key(), key, None, list(inputs.get("dnsNames") or []))


def cert_request(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``tls:index/certRequest:CertRequest``."""
    key = load_key(str(inputs["privateKeyPem"]))
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(inputs))
    dns_names = list(inputs.get("dnsNames") or [])
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return {**inputs, "certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode()}


def locally_signed_cert(inputs: Mapping[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """``tls:index/locallySignedCert:LocallySignedCert``: subject and SANs come from the CSR."""
    csr = x509.load_pem_x509_csr(str(inputs["certRequestPem"]).encode())
    ca = CA.from_pem(str(inputs["caCertPem"]), str(inputs["caPrivateKeyPem"]))
    try:
        dns_names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    return _signed(inputs, now, csr.subject, csr.public_key(), ca.key, ca.name, dns_names)


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
