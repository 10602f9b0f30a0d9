"""Pure checks on PEM certificates and keys, run before anything is created.

Why: a wrong certificate in this setup does not fail at ``pulumi up`` — it fails later as a
TLS alert between the ALB and the Istio gateway (502s, "unsuitable certificate purpose").
Every certificate input is therefore checked here first, and every problem becomes a
:class:`CertificateError` with one sentence that names the culprit (a config key or a secret
key) and never echoes key material or PEM text.

Each check answers as the proxy that verifies that certificate in production does: Envoy
(BoringSSL, for the Istio gateway) for the ALB's client certificate, nginx (OpenSSL, the ALB) for
the gateway's server certificate.  cryptography's verifier applies the CA/Browser Forum profile,
which is stricter than both, so :func:`verify_chain` relaxes the rules neither proxy applies and
adds the ones they do (``tests/test_preflight_corpus.py`` holds the chains that prove it on the
loopback data plane).

No Pulumi import and no disk writes: the program, its tests and the data-plane tests call
these functions directly.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import re
import warnings
from collections.abc import Sequence
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from . import specs

__all__ = [
    "CertificateError",
    "check_client_eku",
    "check_client_key_usage",
    "check_key_matches",
    "check_pinned_names",
    "check_san_covers",
    "check_trust_bundle",
    "check_validity",
    "describe",
    "dns_sans",
    "isrg_roots_pem",
    "not_after_iso",
    "parse_certificates",
    "parse_private_key",
    "pinned_alb_names",
    "preflight_alb_client_material",
    "verify_chain",
]

ISRG_ROOT_NAMES = ("ISRG Root X1", "ISRG Root X2")
"""Let's Encrypt's trust anchors: every LE chain ends at one of them."""

DEFAULT_MAX_CHAIN_DEPTH = 4
"""Intermediates allowed between leaf and anchor; LE's default chain needs 2 (YR1, Root YR)."""

ENVOY_MAX_VERIFY_DEPTH = 100
"""Intermediates Envoy accepts in a client chain: Istio sets no ``max_verify_depth``, so
BoringSSL's default depth of 100 applies (cryptography's own default is 8)."""

LETSENCRYPT_2026 = (
    "Let's Encrypt, which signs IKS ALB certificates, stopped issuing client-authentication "
    "certificates in 2026 (the default profile dropped clientAuth on 11 Feb 2026; the "
    "tlsclient profile ended 8 Jul 2026), so set clientCertSource=private-ca to have the "
    "program issue the ALB a client certificate from its own CA"
)
"""The explanation shown whenever a chain cannot serve as the ALB's client certificate."""

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----\n(.*?)-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_BASE64 = re.compile(r"[A-Za-z0-9+/=_-]+")
_EXTENSION_NAMES = {
    "2.5.29.14": "subjectKeyIdentifier",
    "2.5.29.15": "keyUsage",
    "2.5.29.17": "subjectAltName",
    "2.5.29.19": "basicConstraints",
    "2.5.29.30": "nameConstraints",
    "2.5.29.32": "certificatePolicies",
    "2.5.29.35": "authorityKeyIdentifier",
    "2.5.29.37": "extendedKeyUsage",
    "1.3.6.1.5.5.7.1.1": "authorityInfoAccess",
}
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}


class CertificateError(ValueError):
    """A certificate input is unusable; the message is one sentence naming the culprit.

    ``what`` names the input (``trustedCaPem``, ``secret default/x key tls.crt``) so the
    operator knows which value to fix. Messages never contain key material or PEM text.
    """

    def __init__(self, message: str, *, what: str | None = None) -> None:
        super().__init__(message)
        self.what = what


# --- trust anchors ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def isrg_roots_pem() -> str:
    """ISRG Root X1 + X2 from certifi's bundle: the default of config ``trustedCaPem``.

    Why certifi: it is a pinned, offline copy of the Mozilla store, so the default trust does
    not depend on the operator's OS and never needs a download (DST Root CA X3 is long dead).
    """
    import certifi  # local: only this default needs it

    path = certifi.where()
    with open(path, encoding="ascii", errors="replace") as handle:
        bundle = handle.read()
    by_name: dict[str, x509.Certificate] = {}
    for match in _PEM_BLOCK.finditer(bundle):
        # One block at a time: an odd certificate elsewhere in the bundle (certifi has one
        # with a non-positive serial, which cryptography deprecates) must not break this.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            try:
                cert = x509.load_pem_x509_certificate(match.group(0).encode("ascii"))
            except ValueError:
                continue
        cn = _common_name(cert)
        if cn in ISRG_ROOT_NAMES and cert.subject == cert.issuer:
            by_name.setdefault(cn, cert)
    missing = [n for n in ISRG_ROOT_NAMES if n not in by_name]
    if missing:
        raise CertificateError(
            f"The certifi bundle at {path} lacks {' and '.join(missing)}: upgrade the certifi "
            "package or set trustedCaPem explicitly.",
            what="certifi",
        )
    return "".join(
        by_name[n].public_bytes(serialization.Encoding.PEM).decode("ascii")
        for n in ISRG_ROOT_NAMES
    )


# --- parsing ----------------------------------------------------------------------------------


def parse_certificates(pem: str | bytes, what: str) -> list[x509.Certificate]:
    """All certificates of a PEM bundle, in order; text outside PEM blocks is ignored.

    Refuses anything that is not one or more PEM certificates — in particular a private key,
    so that a key pasted into the wrong field never travels further as "a certificate".
    """
    text = _as_text(pem, what, "one or more PEM certificates")
    blocks = _pem_blocks(text, what)
    if not blocks:
        raise CertificateError(_no_pem_message(text, what, "certificate"), what=what)
    if any(_is_private_key_label(label) for label, _ in blocks):
        raise CertificateError(
            f"{what} holds a private key where only certificates belong.", what=what
        )
    certs: list[x509.Certificate] = []
    for index, (label, block) in enumerate(blocks, start=1):
        if label != "CERTIFICATE":
            raise CertificateError(
                f"{what} holds a PEM block of type {label!r} (block #{index}) where a "
                "certificate belongs.",
                what=what,
            )
        try:
            certs.append(x509.load_pem_x509_certificate(block.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            raise CertificateError(
                f"{what}: PEM certificate #{index} does not parse as an X.509 certificate "
                "(damaged or truncated base64?).",
                what=what,
            ) from None
    return certs


def to_pem(certificates: Sequence[x509.Certificate]) -> str:
    """The canonical PEM of ``certificates``: what was checked is what is stored.

    Why: the parser tolerates indentation and text between blocks, but nginx refuses a
    ``ca.crt`` with an indented end line ("bad end line"); so every PEM input is re-written.
    """
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certificates)


def key_to_pem(key: PrivateKeyTypes) -> str:
    """The canonical (unencrypted PKCS#8) PEM of a private key, kept in memory only."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def parse_private_key(pem: str | bytes, what: str) -> PrivateKeyTypes:
    """The one unencrypted private key in ``pem`` (PKCS#8, PKCS#1 or SEC1).

    Encrypted keys are refused: ingress-nginx and Envoy read the Kubernetes secret without
    a passphrase, so an encrypted key would only fail later inside the data plane.
    """
    text = _as_text(pem, what, "a PEM private key")
    blocks = _pem_blocks(text, what)
    keys = [(label, block) for label, block in blocks if _is_private_key_label(label)]
    if not keys:
        labels = {label for label, _ in blocks}
        if "CERTIFICATE" in labels:
            raise CertificateError(
                f"{what} holds a certificate where a private key belongs.", what=what
            )
        if "OPENSSH PRIVATE KEY" in labels:
            raise CertificateError(
                f"{what} is an OpenSSH key, not a TLS private key (PKCS#8, PKCS#1 or SEC1 PEM).",
                what=what,
            )
        if blocks:
            raise CertificateError(
                f"{what} holds a PEM block of type {min(labels)!r} where a private key belongs.",
                what=what,
            )
        raise CertificateError(_no_pem_message(text, what, "private key"), what=what)
    if len(keys) > 1:
        raise CertificateError(
            f"{what} holds {len(keys)} private keys: expected exactly one.", what=what
        )
    label, block = keys[0]
    encrypted_message = (
        f"{what}: encrypted private keys are not supported: store it unencrypted in the "
        "Kubernetes secret."
    )
    if label == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in block:
        raise CertificateError(encrypted_message, what=what)
    try:
        return serialization.load_pem_private_key(block.encode("ascii"), password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        raise CertificateError(encrypted_message, what=what) from None
    except UnsupportedAlgorithm:
        raise CertificateError(
            f"{what} uses an unsupported private key algorithm.", what=what
        ) from None
    except (ValueError, UnicodeEncodeError):
        raise CertificateError(
            f"{what} does not parse as a private key (damaged base64 or an unsupported key "
            "type?).",
            what=what,
        ) from None


# --- single checks ----------------------------------------------------------------------------


def check_trust_bundle(
    pem: str | bytes,
    what: str = "trustedCaPem",
    *,
    now: dt.datetime | None = None,
    require_root: str | None = None,
) -> list[x509.Certificate]:
    """The CA certificates of a trust bundle, each a CA and valid now.

    Why: a trust anchor that is not a CA, or has expired, makes every handshake fail, and
    the data plane reports that only as an unknown-CA alert.  ``require_root`` names a verifier
    that ends chains only at a self-signed root in the bundle (nginx without partial chains):
    a bundle of intermediates alone would make it refuse every gateway certificate.
    """
    certs = parse_certificates(pem, what)
    if require_root and not any(c.issuer == c.subject for c in certs):
        raise CertificateError(
            f"{what} holds no self-signed root certificate, only intermediates: {require_root} verifies the "
            "gateway's chain only up to a root in the bundle, so it would refuse every gateway certificate; "
            "add the root that issued them.",
            what=what,
        )
    now = _now(now)
    for index, cert in enumerate(certs, start=1):
        if not _is_ca(cert):
            raise CertificateError(
                f"{what}: certificate #{index} ({describe(cert)}) is not a CA certificate "
                "(basicConstraints CA:TRUE is missing), so it cannot be a trust anchor.",
                what=what,
            )
        if now > cert.not_valid_after_utc:
            raise CertificateError(
                f"{what}: CA certificate #{index} ({describe(cert)}) expired on "
                f"{_iso(cert.not_valid_after_utc)}.",
                what=what,
            )
        if now < cert.not_valid_before_utc:
            raise CertificateError(
                f"{what}: CA certificate #{index} ({describe(cert)}) is not valid before "
                f"{_iso(cert.not_valid_before_utc)}.",
                what=what,
            )
    return certs


def check_key_matches(
    cert: x509.Certificate,
    key: PrivateKeyTypes,
    what: str,
    cert_what: str = "the certificate",
) -> None:
    """The key's public half equals the certificate's: else TLS fails at handshake time."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise CertificateError(
            f"{what} does not belong to {cert_what} ({describe(cert)}): their public keys differ.",
            what=what,
        )


def check_validity(
    cert: x509.Certificate,
    what: str,
    now: dt.datetime | None = None,
    warn_days: int = 14,
    *,
    label: str = "",
) -> list[str]:
    """Expired or not-yet-valid → error; expiring within ``warn_days`` → a warning string.

    Why a warning: copies of IKS certificates are not rotated for us; the operator should
    know before the data plane starts failing. ``label`` (e.g. ``"certificate #2"``) says
    which certificate of a bundle is meant.
    """
    now = _now(now)
    name = f"{what} {label}" if label else what
    not_after = cert.not_valid_after_utc
    if now > not_after:
        raise CertificateError(
            f"{name} ({describe(cert)}) expired on {_iso(not_after)}.", what=what
        )
    if now < cert.not_valid_before_utc:
        raise CertificateError(
            f"{name} ({describe(cert)}) is not valid before {_iso(cert.not_valid_before_utc)}.",
            what=what,
        )
    left = not_after - now
    if left < dt.timedelta(days=warn_days):
        when = f"in {left.days} days" if left.days >= 1 else "in less than a day"
        warning = (
            f"{name} ({describe(cert)}) expires on {_iso(not_after)}, {when} (under "
            f"{warn_days}): renew it or expect TLS failures."
        )
        return [warning]
    return []


def check_san_covers(cert: x509.Certificate, host: str, what: str) -> None:
    """A DNS SAN equals ``host`` or is ``*.<parent>`` of it (one label only, as TLS does).

    The common name is ignored, as TLS clients do, and IKS names rarely fit in one anyway.
    """
    names = _dns_names(cert)
    if not names:
        raise CertificateError(
            f"{what} ({describe(cert)}) has no DNS subject alternative names, so it covers no "
            "host (the common name does not count).",
            what=what,
        )
    if not any(_dns_matches(pattern, host) for pattern in names):
        raise CertificateError(
            f"{what} ({describe(cert)}) does not cover host {host}: its DNS names are "
            f"{', '.join(names)}.",
            what=what,
        )


def check_client_eku(chain: Sequence[x509.Certificate], what: str) -> None:
    """Every certificate with an EKU allows clientAuth (or anyExtendedKeyUsage).

    Why the whole chain: OpenSSL and Envoy check the purpose on the intermediates too, and the
    Let's Encrypt Gen-Y intermediates and cross-signed roots carry serverAuth only — a chain
    through them fails with "unsuitable certificate purpose" even for a clientAuth leaf.
    anyExtendedKeyUsage passes here, to keep this message for the Let's Encrypt case; Envoy and
    nginx do not take it for clientAuth, and neither does :func:`verify_chain`.
    """
    for index, cert in enumerate(chain):
        ekus = _ekus(cert)
        if ekus is None or ExtendedKeyUsageOID.CLIENT_AUTH in ekus:
            continue
        if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in ekus:
            continue
        allowed = ", ".join(_EKU_NAMES.get(oid, oid.dotted_string) for oid in ekus) or "none"
        if index == 0:
            raise CertificateError(
                f"{what} ({describe(cert)}) has no clientAuth extended key usage (only "
                f"{allowed}), so it cannot act as the ALB's client certificate: "
                f"{LETSENCRYPT_2026}.",
                what=what,
            )
        raise CertificateError(
            f"{what}: intermediate certificate #{index + 1} ({describe(cert)}) limits the "
            f"extended key usage to {allowed} without clientAuth, so the chain cannot act as "
            f"the ALB's client certificate (OpenSSL and Envoy refuse it as 'unsuitable "
            f"certificate purpose'): {LETSENCRYPT_2026}.",
            what=what,
        )


def check_client_key_usage(cert: x509.Certificate, what: str) -> None:
    """A client certificate with a keyUsage must allow digitalSignature.

    Why: the client signs the TLS handshake (CertificateVerify) with its key; BoringSSL (Envoy)
    ends the handshake when the leaf's keyUsage lacks digitalSignature, whatever else it allows
    (keyEncipherment, keyAgreement).  Without a keyUsage extension any use is allowed.
    """
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if usage.digital_signature:
        return
    raise CertificateError(
        f"{what} ({describe(cert)}) has a keyUsage without digitalSignature (only "
        f"{_key_usage_names(usage)}), so it cannot sign the TLS handshake as the ALB's client "
        "certificate and Envoy ends the handshake.",
        what=what,
    )


def pinned_alb_names(alb_host: str) -> tuple[str, str]:
    """The DNS names the gateway pins for the ALB's own certificate (``clientCertSource=alb``):
    ``*.<albDomain>`` and ``<albDomain>``, for ``alb_host`` = ``httpbin.<albDomain>``.

    One source with the Gateway's ``subjectAltNames``: :func:`specs.alb_pinned_names`.
    """
    wildcard, bare = specs.alb_pinned_names(alb_host.partition(".")[2])
    return (wildcard, bare)


def check_pinned_names(cert: x509.Certificate, pinned: Sequence[str], what: str) -> None:
    """One of the certificate's DNS names is, verbatim, one of the names the gateway pins.

    Why verbatim: Envoy matches ``subjectAltNames`` exactly against the DNS names in the
    certificate, so ``httpbin.<albDomain>`` does not match a pinned ``*.<albDomain>``.
    """
    names = _dns_names(cert)
    if any(name in pinned for name in names):  # Envoy's exact matcher is case-sensitive
        return
    raise CertificateError(
        f"{what} ({describe(cert)}) has neither {' nor '.join(pinned)} among its DNS names, "
        "and the gateway pins those names for the ALB's client certificate, so Envoy refuses it: "
        f"its DNS names are {', '.join(names) or 'none'}.",
        what=what,
    )


def verify_chain(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    what: str,
    purpose: Literal["client", "server"],
    host: str | None,
    now: dt.datetime | None = None,
    anchors_what: str = "trustedCaPem",
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
    partial_chain: bool | None = None,
) -> None:
    """``chain[0]`` verifies to one of ``anchors`` using the intermediates sent after it.

    Uses cryptography's verifier with the extension rules OpenSSL and BoringSSL apply instead
    of the CA/Browser Forum profile's (:func:`_extension_policies`); it enforces the EKU of the
    purpose on every certificate of the path (as OpenSSL and Envoy do). For a server, ``host``
    must be in the leaf's SANs; for a client, ``host`` (optional) is checked the same.
    ``max_chain_depth`` counts the intermediates, as nginx's ``proxy_ssl_verify_depth`` does.

    ``partial_chain``: may the chain end at a certificate of ``anchors`` that is not a
    self-signed root?  Envoy verifies that way, OpenSSL (nginx) does not; unset, it follows
    who verifies what here: yes for a client (Envoy verifies the ALB's client certificate),
    no for a server (nginx verifies the gateway's).  The client's key usage is the TLS
    handshake's business: :func:`check_client_key_usage`.
    """
    if not chain:
        raise CertificateError(f"{what} contains no certificate.", what=what)
    if purpose == "server" and not host:
        raise ValueError("verify_chain(purpose='server') needs the host name to verify")
    if not anchors:
        raise CertificateError(f"{anchors_what} contains no certificate.", what=anchors_what)
    leaf, intermediates = chain[0], list(chain[1:])
    partial = purpose == "client" if partial_chain is None else partial_chain
    roots = list(anchors) if partial else [a for a in anchors if _self_signed(a)]
    if not roots:
        raise CertificateError(
            f"{anchors_what} holds no self-signed root certificate, and OpenSSL (nginx) verifies "
            f"without partial chains, so no chain from {what} can end in it.",
            what=anchors_what,
        )
    # Without partial chains, OpenSSL still builds paths through the bundle's other certificates.
    extra = [a for a in anchors if a not in roots]
    try:
        _verified_path(leaf, intermediates + extra, roots, purpose, host, now, max_chain_depth)
    except VerificationError as error:
        reason = _partial_chain_reason(
            leaf, intermediates, anchors, purpose, host, now, max_chain_depth, anchors_what
        ) if extra else None
        reason = reason or _verification_reason(
            str(error),
            chain,
            anchors,
            purpose=purpose,
            host=host,
            anchors_what=anchors_what,
            max_chain_depth=max_chain_depth,
        )
        raise CertificateError(
            f"{what} does not verify as a TLS {purpose} certificate against {anchors_what}: "
            f"{reason}.",
            what=what,
        ) from None
    except x509.UnsupportedGeneralNameType:
        raise CertificateError(
            f"{what} does not verify as a TLS {purpose} certificate against {anchors_what}: "
            "a certificate in the chain has a subject alternative name of an unsupported type.",
            what=what,
        ) from None
    if purpose == "client" and host:
        check_san_covers(leaf, host, what)


def _verified_path(
    leaf: x509.Certificate,
    untrusted: list[x509.Certificate],
    trusted: list[x509.Certificate],
    purpose: Literal["client", "server"],
    host: str | None,
    now: dt.datetime | None,
    max_chain_depth: int,
) -> list[x509.Certificate]:
    """The path cryptography builds from ``leaf`` to one of ``trusted`` (anchor last)."""
    ca_policy, ee_policy = _extension_policies(purpose)
    builder = (
        PolicyBuilder()
        .store(Store(trusted))
        .time(_now(now))
        .max_chain_depth(max_chain_depth)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
    )
    if purpose == "server":
        assert host is not None  # checked by the caller; narrows the type
        return builder.build_server_verifier(x509.DNSName(host)).verify(leaf, untrusted)
    return builder.build_client_verifier().verify(leaf, untrusted).chain


def _partial_chain_reason(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    purpose: Literal["client", "server"],
    host: str | None,
    now: dt.datetime | None,
    max_chain_depth: int,
    anchors_what: str,
) -> str | None:
    """Why a chain that fails without partial chains would pass with them, or None."""
    try:
        path = _verified_path(leaf, intermediates, list(anchors), purpose, host, now, max_chain_depth)
    except (VerificationError, x509.UnsupportedGeneralNameType):
        return None
    if _self_signed(path[-1]):
        return None
    return (
        f"its chain ends at {describe(path[-1])} in {anchors_what}, which is not a self-signed "
        "root, and OpenSSL (nginx) verifies without partial chains, so it needs the root above "
        f"it in {anchors_what}"
    )


def _extension_policies(purpose: Literal["client", "server"]) -> tuple[ExtensionPolicy, ExtensionPolicy]:
    """(CA, leaf) extension rules: cryptography's web-PKI profile minus what OpenSSL (nginx)
    and BoringSSL (Envoy) do not require, each proven on the loopback data plane by
    ``tests/test_preflight_corpus.py``.

    Relaxed: a leaf without authorityKeyIdentifier; basicConstraints, keyUsage,
    extendedKeyUsage, key identifiers (and, for a client, subjectAltName) of either
    criticality; a CA without keyUsage (with one, keyCertSign is still required); a leaf with
    basicConstraints CA:TRUE or keyUsage keyCertSign.  Kept: a CA needs basicConstraints
    CA:TRUE; an EKU, in a leaf or a CA, must name the purpose, and anyExtendedKeyUsage does
    not count (both proxies refuse it as an "unsuitable certificate purpose").
    """
    agnostic = Criticality.AGNOSTIC
    ca_policy = (
        ExtensionPolicy.webpki_defaults_ca()
        .require_present(x509.BasicConstraints, agnostic, _ca_basic_constraints)
        .may_be_present(x509.KeyUsage, agnostic, _ca_key_usage)
        .may_be_present(x509.AuthorityKeyIdentifier, agnostic, None)
        .may_be_present(x509.SubjectKeyIdentifier, agnostic, None)
        .may_be_present(x509.ExtendedKeyUsage, agnostic, _purpose_eku)
    )
    ee_policy = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.AuthorityKeyIdentifier, agnostic, None)
        .may_be_present(x509.SubjectKeyIdentifier, agnostic, None)
        .may_be_present(x509.BasicConstraints, agnostic, None)
        .may_be_present(x509.KeyUsage, agnostic, None)
        .may_be_present(x509.ExtendedKeyUsage, agnostic, _purpose_eku)
    )
    if purpose == "client":
        # (A server verifier must keep cryptography's own rule: it matches the host there.)
        ee_policy = ee_policy.require_present(x509.SubjectAlternativeName, agnostic, None)
    return ca_policy, ee_policy


def _ca_basic_constraints(policy: Policy, cert: x509.Certificate, value: x509.BasicConstraints) -> None:
    if not value.ca:
        raise ValueError("basicConstraints of an issuing certificate must say CA:TRUE")


def _ca_key_usage(policy: Policy, cert: x509.Certificate, value: x509.KeyUsage | None) -> None:
    if value is not None and not value.key_cert_sign:
        raise ValueError("the keyUsage of an issuing certificate must allow keyCertSign")


def _purpose_eku(policy: Policy, cert: x509.Certificate, value: x509.ExtendedKeyUsage | None) -> None:
    if value is not None and policy.extended_key_usage not in value:
        raise ValueError("required EKU not found")


# --- the whole preflight ----------------------------------------------------------------------


def preflight_alb_client_material(
    tls_crt: str | bytes,
    tls_key: str | bytes,
    trusted_pem: str | bytes,
    *,
    alb_host: str,
    secret_ref: str,
    now: dt.datetime | None = None,
    trusted_what: str = "trustedCaPem",
    warn_days: int = 14,
) -> list[str]:
    """Everything ``clientCertSource=alb`` needs from the ALB secret; returns warnings.

    The ALB's own certificate must serve twice: as the server certificate for ``alb_host``
    and as the client certificate the gateway (Envoy) verifies against ``trusted_pem``, with
    the names of :func:`pinned_alb_names` pinned. The EKU check runs before chain
    verification on purpose: a Let's Encrypt certificate fails both, and "Let's Encrypt
    stopped issuing client certificates" is the message that tells the user what to do.
    """
    now = _now(now)
    chain, crt_what, notes = _tls_secret_pair(tls_crt, tls_key, secret_ref, now, warn_days)
    for index, cert in enumerate(chain[1:], start=2):
        notes += check_validity(cert, crt_what, now, warn_days, label=f"certificate #{index}")
    check_san_covers(chain[0], alb_host, crt_what)
    check_pinned_names(chain[0], pinned_alb_names(alb_host), crt_what)
    check_client_eku(chain, crt_what)
    check_client_key_usage(chain[0], crt_what)
    anchors = check_trust_bundle(trusted_pem, trusted_what, now=now)
    # Envoy verifies it: partial chains allowed, and as deep as BoringSSL's default.
    verify_chain(
        chain,
        anchors,
        what=crt_what,
        purpose="client",
        host=None,
        now=now,
        anchors_what=trusted_what,
        max_chain_depth=ENVOY_MAX_VERIFY_DEPTH,
        partial_chain=True,
    )
    return notes


def preflight_host_tls_material(
    tls_crt: str | bytes,
    tls_key: str | bytes,
    *,
    host: str,
    secret_ref: str,
    now: dt.datetime | None = None,
    warn_days: int = 14,
) -> list[str]:
    """A TLS secret the ALB serves a custom domain with (``apps`` ``tlsSecret``); returns warnings.

    What the ALB itself would need to serve it: a certificate chain that parses, a key that
    belongs to it, valid today, and a DNS name that covers ``host``.  Who issued it is the
    user's business (browsers judge it, not the hop), so no chain is verified here.
    """
    chain, crt_what, notes = _tls_secret_pair(tls_crt, tls_key, secret_ref, _now(now), warn_days)
    check_san_covers(chain[0], host, crt_what)
    return notes


def _tls_secret_pair(
    tls_crt: str | bytes, tls_key: str | bytes, secret_ref: str, now: dt.datetime, warn_days: int
) -> tuple[list[x509.Certificate], str, list[str]]:
    """A TLS secret's chain, whose key belongs to its first certificate, valid now: the chain, how
    messages name ``tls.crt``, and the expiry warnings."""
    crt_what = f"secret {secret_ref} key tls.crt"
    key_what = f"secret {secret_ref} key tls.key"
    chain = parse_certificates(tls_crt, crt_what)
    key = parse_private_key(tls_key, key_what)
    check_key_matches(chain[0], key, key_what, cert_what="the certificate in key tls.crt")
    return chain, crt_what, check_validity(chain[0], crt_what, now, warn_days)


# --- small readers used by the program --------------------------------------------------------


def not_after_iso(cert_pem: str | bytes, what: str = "certificate") -> str:
    """The first certificate's notAfter as ISO 8601 UTC, e.g. ``2027-02-23T12:00:00Z``."""
    return _iso(parse_certificates(cert_pem, what)[0].not_valid_after_utc)


def dns_sans(cert_pem: str | bytes, what: str = "certificate") -> list[str]:
    """The DNS subject alternative names of the first certificate, in order."""
    return _dns_names(parse_certificates(cert_pem, what)[0])


def describe(cert: x509.Certificate) -> str:
    """A short, public label for a certificate in messages: its CN, else its first DNS SAN."""
    cn = _common_name(cert)
    if cn:
        return f"CN={cn}"
    names = _dns_names(cert)
    if names:
        return f"DNS:{names[0]}"
    return f"serial {cert.serial_number:x}"


# --- internals --------------------------------------------------------------------------------


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_text(pem: str | bytes, what: str, expected: str) -> str:
    """Normalised PEM text, or a clear error for empty and binary input."""
    text = pem.decode("utf-8", errors="replace") if isinstance(pem, bytes) else pem
    if not text.strip():
        raise CertificateError(f"{what} is empty: expected {expected}.", what=what)
    if _PEM_BEGIN.search(text) is None and _binary(text.encode("utf-8", errors="replace")):
        raise CertificateError(_der_message(what, expected), what=what)
    # Tolerate CRLF and indentation (PEM pasted into YAML keeps its indent).
    return "\n".join(line.strip() for line in text.replace("\r\n", "\n").split("\n")) + "\n"


def _binary(data: bytes) -> bool:
    """Mostly non-printable bytes: DER, or DER read as text (non-UTF-8 became U+FFFD)."""
    sample = data[:512]
    printable = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13))
    return printable < len(sample) * 0.9


def _der_message(what: str, expected: str) -> str:
    return (
        f"{what} is binary (DER) data, not PEM text: expected {expected} (convert with "
        "openssl x509 -inform DER, or openssl pkey -inform DER for a key)."
    )


def _pem_blocks(text: str, what: str) -> list[tuple[str, str]]:
    """(label, full block text) of every PEM block; a BEGIN without END is an error."""
    blocks = [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(text)]
    if len(blocks) < len(_PEM_BEGIN.findall(text)):
        raise CertificateError(
            f"{what} has a BEGIN line without a matching END line (truncated PEM?).", what=what
        )
    return blocks


def _no_pem_message(text: str, what: str, kind: str) -> str:
    """Why text without PEM armour is refused; recognises base64 of PEM and of DER."""
    compact = "".join(text.split())
    if len(compact) >= 16 and _BASE64.fullmatch(compact):
        try:
            decoded = base64.b64decode(compact + "=" * (-len(compact) % 4), altchars=None)
        except (binascii.Error, ValueError):
            decoded = b""
        if b"-----BEGIN" in decoded:
            return (
                f"{what} is base64-encoded PEM (a Kubernetes secret's .data value?): decode it "
                "once before passing it in."
            )
        if decoded[:1] == b"\x30":
            return f"{what} is base64 DER without PEM armour: expected a PEM {kind}."
    armour = "BEGIN CERTIFICATE" if kind == "certificate" else "BEGIN PRIVATE KEY"
    return f"{what} contains no PEM {kind} (no {armour} line found)."


def _is_private_key_label(label: str) -> bool:
    return label.endswith("PRIVATE KEY") and label != "OPENSSH PRIVATE KEY"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _may_sign_certificates(cert: x509.Certificate) -> bool:
    """No keyUsage, or one that allows keyCertSign."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign)
    except x509.ExtensionNotFound:
        return True


def _self_signed(cert: x509.Certificate) -> bool:
    """Issued by itself (name and signature): what OpenSSL accepts as the end of a chain."""
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _key_usage_names(usage: x509.KeyUsage) -> str:
    """The bits a keyUsage allows, by their RFC 5280 names, or ``none``."""
    bits = [
        ("digitalSignature", usage.digital_signature),
        ("nonRepudiation", usage.content_commitment),
        ("keyEncipherment", usage.key_encipherment),
        ("dataEncipherment", usage.data_encipherment),
        ("keyAgreement", usage.key_agreement),
        ("keyCertSign", usage.key_cert_sign),
        ("cRLSign", usage.crl_sign),
    ]
    return ", ".join(name for name, on in bits if on) or "none"


def _ekus(cert: x509.Certificate) -> list[x509.ObjectIdentifier] | None:
    """The EKU OIDs, or None without an EKU extension (which means: any purpose)."""
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


def _common_name(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(name) for name in san.get_values_for_type(x509.DNSName)]


def _dns_matches(pattern: str, host: str) -> bool:
    """RFC 6125 matching: exact, or a leading ``*`` label standing for exactly one label."""
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern == host:
        return True
    if not pattern.startswith("*."):
        return False
    label, _, parent = host.partition(".")
    return bool(label) and bool(parent) and parent == pattern[2:]


_SUBJECT_IN_ERROR = re.compile(r"encountered processing <Certificate\(subject=<Name\((.*?)\)>")
_BAD_EXTENSION = re.compile(r"invalid extension: ([0-9.]+): (.*?) \(encountered")


def _verification_reason(
    raw: str,
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    purpose: str,
    host: str | None,
    anchors_what: str,
    max_chain_depth: int,
) -> str:
    """Turn cryptography's VerificationError text into the end of one readable sentence.

    Its text names the failing certificate by subject only (empty for IKS leaves, whose long
    names live in the SAN), so the subject is mapped back to a certificate we hold.
    """
    raw = raw.replace("Python extension validator failed: ValueError: ", "")
    culprit: str | None = None
    subject_match = _SUBJECT_IN_ERROR.search(raw)
    if subject_match is not None:
        subject = subject_match.group(1)
        found = [c for c in (*chain, *anchors) if c.subject.rfc4514_string() == subject]
        culprit = describe(found[0]) if found else (subject or "with an empty subject")
    at = f" (at certificate {culprit})" if culprit else ""
    eku = "clientAuth" if purpose == "client" else "serverAuth"
    if "no interior errors" in raw:
        issuer = chain[0].issuer.rfc4514_string() or "an empty name"
        return (
            f"no chain leads from it (issuer {issuer}) to a certificate in {anchors_what}: "
            "another CA issued it, or an intermediate certificate is missing after the leaf"
        )
    if "exceeds max depth" in raw:
        return f"its chain needs more intermediate certificates than the {max_chain_depth} allowed"
    if "EKU" in raw:
        return f"a certificate in its chain lacks the {eku} extended key usage{at}"
    if "not valid at validation time" in raw:
        return f"a certificate in its chain is expired or not yet valid{at}"
    if "no matching subjectAltName" in raw:
        return f"it does not name host {host}"
    if "has no subjectAltName" in raw or ("2.5.29.17" in raw and "missing required" in raw):
        return (
            f"certificate {culprit or '?'} lacks the subjectAltName extension, so it names no "
            "host (the common name does not count)"
        )
    issuers = [*chain[1:], *anchors]
    if "has no basicConstraints" in raw or "basicConstraints.cA must be asserted" in raw or "CA:TRUE" in raw:
        named = [describe(c) for c in issuers if not _is_ca(c)]
        who = f"certificate {named[0]}" if named else "a certificate"
        return f"{who} issues another in its chain but is not a CA (basicConstraints CA:TRUE is missing)"
    if "keyCertSign" in raw:
        named = [describe(c) for c in issuers if not _may_sign_certificates(c)]
        who = f"certificate {named[0]}" if named else "a certificate"
        return f"{who} issues another in its chain but its keyUsage lacks keyCertSign"
    bad = _BAD_EXTENSION.search(raw)
    if bad is not None:
        name = _EXTENSION_NAMES.get(bad.group(1), bad.group(1))
        if "missing required extension" in bad.group(2):
            return f"certificate {culprit or '?'} lacks the {name} extension, which it needs there"
        return f"extension {name} is unacceptable ({bad.group(2).rstrip('.')}){at}"
    cleaned = re.sub(r"\s*\(encountered processing <Certificate.*\)>\)", "", raw)
    cleaned = cleaned.removeprefix("validation failed: ").removeprefix("candidates exhausted: ")
    return f"{cleaned.strip().rstrip('.')}{at}"
