"""Unit tests of components/certs.py, driven by ``BAD_INPUTS``: the record of every bad input
tried and the exact message it gets.

Run ``python -m tests.test_certs`` to print the record; docs/troubleshooting.md lists every
message (tests/test_docs.py checks it).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from components import certs
from tests.support import documented, pki
from tools import x509 as x509_builder

# The real Let's Encrypt certificates: read in place, never copied into the project.
# shared/ sits beside the project's checkout (CI lays a copy there); LE_REFERENCE_DIR overrides.
_CANDIDATES = [
    Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "letsencrypt",
    Path("/work/shared/reference/letsencrypt"),
]
REFERENCE = Path(
    os.environ.get("LE_REFERENCE_DIR", "") or next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
)
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH

NOW = pki.utcnow()
DAY = dt.timedelta(days=1)
LE = pki.letsencrypt_like()
SECRET = f"default/{pki.ALB_SECRET_NAME}"
CRT = f"secret {SECRET} key tls.crt"
KEY = f"secret {SECRET} key tls.key"
TRUSTED = "trustedCaPem"
GATEWAY_CRT = f"secret istio-system/{pki.GATEWAY_SECRET_NAME} key tls.crt"
LEAF = f"DNS:*.{pki.ALB_DOMAIN}"  # how messages name an IKS leaf: no CN, the name is in the SAN
LE_2026 = (
    "Let's Encrypt, which signs IKS ALB certificates, stopped issuing client-authentication "
    "certificates in 2026 (the default profile dropped clientAuth on 11 Feb 2026; the "
    "tlsclient profile ended 8 Jul 2026), so set clientCertSource=private-ca to have the "
    "program issue the ALB a client certificate from its own CA"
)


def iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- material -----------------------------------------------------------------------------------
# A client chain that is valid in every respect: clientAuth at every level, ALB names in the SAN.
GOOD_ROOT = pki.self_signed_ca("Test Client Root", organization="Example Corp (test)")
GOOD_INTER = GOOD_ROOT.intermediate(
    "Test Client Issuing CA", organization="Example Corp (test)", ekus=[SERVER_AUTH, CLIENT_AUTH]
)
GOOD = GOOD_INTER.issue_leaf(pki.ALB_SANS, client_auth=True)
OTHER_ROOT = pki.self_signed_ca("Test Other Root", organization="Elsewhere (test)")
OTHER_KEY = pki.new_key()

# What IKS serves today: the Let's Encrypt-like ALB certificate (serverAuth only) ...
LE_ALB = pki.alb_leaf(LE)
# ... and one as LE issued them before 2026 (clientAuth too) - still under serverAuth-only CAs.
LE_ALB_OLD = pki.alb_leaf(LE, client_auth=True)
LE_GATEWAY = pki.gateway_leaf(LE)

SERVER_ONLY_INTER = GOOD_ROOT.intermediate("Test Server-only CA", ekus=[SERVER_AUTH])
UNDER_SERVER_ONLY = SERVER_ONLY_INTER.issue_leaf(pki.ALB_SANS, client_auth=True)
EXPIRED_INTER = GOOD_ROOT.intermediate(
    "Test Expired Issuing CA",
    ekus=[SERVER_AUTH, CLIENT_AUTH],
    not_before=NOW - 400 * DAY,
    not_after=NOW - DAY,
)
UNDER_EXPIRED = EXPIRED_INTER.issue_leaf(pki.ALB_SANS, client_auth=True)
EXPIRED_LEAF = GOOD_INTER.issue_leaf(
    pki.ALB_SANS, client_auth=True, not_before=NOW - 90 * DAY, not_after=NOW - DAY
)
FUTURE_LEAF = GOOD_INTER.issue_leaf(pki.ALB_SANS, client_auth=True, not_before=NOW + DAY)
OTHER_HOST_LEAF = GOOD_INTER.issue_leaf(["other.example.com"], client_auth=True)
TWO_LABEL_WILDCARD = GOOD_INTER.issue_leaf(
    ["*.us-south.containers.appdomain.cloud"], client_auth=True
)
EXPIRED_CA = pki.self_signed_ca(
    "Test Expired Root", not_before=NOW - 3650 * DAY, not_after=NOW - DAY
)
FUTURE_CA = pki.self_signed_ca("Test Future Root", not_before=NOW + DAY)
NON_CA = GOOD_INTER.issue_leaf(["not-a-ca.example.com"])


def _no_san_client() -> x509.Certificate:
    """A client certificate without subjectAltName (and without authorityKeyIdentifier, which
    nginx, Envoy and the verifier take: tests/test_preflight_corpus.py)."""
    key = pki.new_key()
    return x509_builder.certificate(
        x509_builder.dn("no-san"), key.public_key(), signer=GOOD_ROOT.key, issuer=GOOD_ROOT.cert.subject,
        not_before=NOW - DAY, not_after=NOW + 30 * DAY, ca=None, ekus=[CLIENT_AUTH], dns_names=[],
        ski=False, aki=False,
    )


NO_SAN = _no_san_client()


def _csr_pem() -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr")]))
        .sign(OTHER_KEY, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _traditional_encrypted_key() -> str:
    """The legacy OpenSSL format: BEGIN EC PRIVATE KEY with Proc-Type: 4,ENCRYPTED."""
    return GOOD.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"secret-pass"),
    ).decode("ascii")


GOOD_ROOT_DER = GOOD_ROOT.cert.public_bytes(serialization.Encoding.DER)
DAMAGED_CERT = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
DAMAGED_KEY = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
OPENSSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n"
)
GARBAGE = "this is not a certificate, just text pasted by mistake\n"

# Every PEM handed to the code under test: no line of their bodies may appear in a message.
SECRET_PEMS = [
    GOOD.chain_pem,
    GOOD.key_pem,
    pki.key_pem(OTHER_KEY),
    LE_ALB.chain_pem,
    LE_ALB.key_pem,
    GOOD_ROOT.cert_pem,
    _traditional_encrypted_key(),
    pki.key_pem(GOOD.key, b"secret-pass"),
]


def preflight(
    *,
    tls_crt: str | bytes = GOOD.chain_pem,
    tls_key: str | bytes = GOOD.key_pem,
    trusted: str | bytes = GOOD_ROOT.cert_pem,
) -> Callable[[], object]:
    """The whole ``clientCertSource=alb`` preflight with one input replaced."""
    return lambda: certs.preflight_alb_client_material(
        tls_crt, tls_key, trusted, alb_host=pki.ALB_HOST, secret_ref=SECRET, now=NOW
    )


# --- the record -----------------------------------------------------------------------------------
# (case id, what is tried, the culprit the message must name, the exact message)
BAD_INPUTS: list[tuple[str, Callable[[], object], str, str]] = [
    # trustedCaPem (config)
    (
        "trusted-empty",
        preflight(trusted=""),
        TRUSTED,
        "trustedCaPem is empty: expected one or more PEM certificates.",
    ),
    (
        "trusted-no-certificate",
        preflight(trusted=GARBAGE),
        TRUSTED,
        "trustedCaPem contains no PEM certificate (no BEGIN CERTIFICATE line found).",
    ),
    (
        "trusted-garbage-in-pem-armour",
        preflight(trusted=DAMAGED_CERT),
        TRUSTED,
        (
            "trustedCaPem: PEM certificate #1 does not parse as an X.509 certificate "
            "(damaged or truncated base64?)."
        ),
    ),
    (
        "trusted-truncated-pem",
        preflight(trusted=GOOD_ROOT.cert_pem[:200]),
        TRUSTED,
        "trustedCaPem has a BEGIN line without a matching END line (truncated PEM?).",
    ),
    (
        "trusted-der-bytes",
        preflight(trusted=GOOD_ROOT_DER),
        TRUSTED,
        (
            "trustedCaPem is binary (DER) data, not PEM text: expected one or more PEM certificates "
            "(convert with openssl x509 -inform DER, or openssl pkey -inform DER for a key)."
        ),
    ),
    (
        "trusted-der-as-text",
        preflight(trusted=GOOD_ROOT_DER.decode("latin-1")),
        TRUSTED,
        (
            "trustedCaPem is binary (DER) data, not PEM text: expected one or more PEM certificates "
            "(convert with openssl x509 -inform DER, or openssl pkey -inform DER for a key)."
        ),
    ),
    (
        "trusted-base64-of-pem",
        preflight(trusted=base64.b64encode(GOOD_ROOT.cert_pem.encode()).decode()),
        TRUSTED,
        (
            "trustedCaPem is base64-encoded PEM (a Kubernetes secret's .data value?): decode it "
            "once before passing it in."
        ),
    ),
    (
        "trusted-base64-of-der",
        preflight(trusted=base64.b64encode(GOOD_ROOT_DER).decode()),
        TRUSTED,
        "trustedCaPem is base64 DER without PEM armour: expected a PEM certificate.",
    ),
    (
        "trusted-private-key",
        preflight(trusted=GOOD_ROOT.key_pem),
        TRUSTED,
        "trustedCaPem holds a private key where only certificates belong.",
    ),
    (
        "trusted-csr",
        preflight(trusted=_csr_pem()),
        TRUSTED,
        (
            "trustedCaPem holds a PEM block of type 'CERTIFICATE REQUEST' (block #1) where a "
            "certificate belongs."
        ),
    ),
    (
        "trusted-expired-ca",
        preflight(trusted=GOOD_ROOT.cert_pem + EXPIRED_CA.cert_pem),
        TRUSTED,
        f"trustedCaPem: CA certificate #2 (CN=Test Expired Root) expired on {iso(NOW - DAY)}.",
    ),
    (
        "trusted-not-yet-valid-ca",
        preflight(trusted=FUTURE_CA.cert_pem),
        TRUSTED,
        (
            f"trustedCaPem: CA certificate #1 (CN=Test Future Root) is not valid before "
            f"{iso(NOW + DAY)}."
        ),
    ),
    (
        "trusted-non-ca",
        preflight(trusted=NON_CA.cert_pem),
        TRUSTED,
        (
            "trustedCaPem: certificate #1 (CN=not-a-ca.example.com) is not a CA certificate "
            "(basicConstraints CA:TRUE is missing), so it cannot be a trust anchor."
        ),
    ),
    # tls.crt of the ALB secret
    (
        "crt-empty",
        preflight(tls_crt=""),
        CRT,
        f"{CRT} is empty: expected one or more PEM certificates.",
    ),
    (
        "crt-whitespace",
        preflight(tls_crt=" \n\t\n"),
        CRT,
        f"{CRT} is empty: expected one or more PEM certificates.",
    ),
    (
        "crt-garbage",
        preflight(tls_crt=GARBAGE),
        CRT,
        f"{CRT} contains no PEM certificate (no BEGIN CERTIFICATE line found).",
    ),
    (
        "crt-key-in-place-of-cert",
        preflight(tls_crt=GOOD.key_pem),
        CRT,
        f"{CRT} holds a private key where only certificates belong.",
    ),
    (
        "crt-chain-plus-key",
        preflight(tls_crt=GOOD.chain_pem + GOOD.key_pem),
        CRT,
        f"{CRT} holds a private key where only certificates belong.",
    ),
    (
        "crt-der-bytes",
        preflight(tls_crt=GOOD.cert.public_bytes(serialization.Encoding.DER)),
        CRT,
        (
            f"{CRT} is binary (DER) data, not PEM text: expected one or more PEM certificates "
            "(convert with openssl x509 -inform DER, or openssl pkey -inform DER for a key)."
        ),
    ),
    # tls.key of the ALB secret
    (
        "key-empty",
        preflight(tls_key=""),
        KEY,
        f"{KEY} is empty: expected a PEM private key.",
    ),
    (
        "key-garbage",
        preflight(tls_key=GARBAGE),
        KEY,
        f"{KEY} contains no PEM private key (no BEGIN PRIVATE KEY line found).",
    ),
    (
        "key-garbage-in-pem-armour",
        preflight(tls_key=DAMAGED_KEY),
        KEY,
        f"{KEY} does not parse as a private key (damaged base64 or an unsupported key type?).",
    ),
    (
        "key-encrypted-pkcs8",
        preflight(tls_key=pki.key_pem(GOOD.key, b"secret-pass")),
        KEY,
        (
            f"{KEY}: encrypted private keys are not supported: store it unencrypted in the "
            "Kubernetes secret."
        ),
    ),
    (
        "key-encrypted-traditional",
        preflight(tls_key=_traditional_encrypted_key()),
        KEY,
        (
            f"{KEY}: encrypted private keys are not supported: store it unencrypted in the "
            "Kubernetes secret."
        ),
    ),
    (
        "key-cert-in-place-of-key",
        preflight(tls_key=GOOD.cert_pem),
        KEY,
        f"{KEY} holds a certificate where a private key belongs.",
    ),
    (
        "key-two-keys",
        preflight(tls_key=GOOD.key_pem + pki.key_pem(OTHER_KEY)),
        KEY,
        f"{KEY} holds 2 private keys: expected exactly one.",
    ),
    (
        "key-openssh",
        preflight(tls_key=OPENSSH_KEY),
        KEY,
        f"{KEY} is an OpenSSH key, not a TLS private key (PKCS#8, PKCS#1 or SEC1 PEM).",
    ),
    (
        "key-does-not-match",
        preflight(tls_key=pki.key_pem(OTHER_KEY)),
        KEY,
        (
            f"{KEY} does not belong to the certificate in key tls.crt ({LEAF}): their public keys "
            "differ."
        ),
    ),
    # validity
    (
        "leaf-expired",
        preflight(tls_crt=EXPIRED_LEAF.chain_pem, tls_key=EXPIRED_LEAF.key_pem),
        CRT,
        f"{CRT} ({LEAF}) expired on {iso(NOW - DAY)}.",
    ),
    (
        "leaf-not-yet-valid",
        preflight(tls_crt=FUTURE_LEAF.chain_pem, tls_key=FUTURE_LEAF.key_pem),
        CRT,
        f"{CRT} ({LEAF}) is not valid before {iso(NOW + DAY)}.",
    ),
    (
        "intermediate-expired",
        preflight(tls_crt=UNDER_EXPIRED.chain_pem, tls_key=UNDER_EXPIRED.key_pem),
        CRT,
        f"{CRT} certificate #2 (CN=Test Expired Issuing CA) expired on {iso(NOW - DAY)}.",
    ),
    # names
    (
        "san-does-not-cover-alb-host",
        preflight(tls_crt=OTHER_HOST_LEAF.chain_pem, tls_key=OTHER_HOST_LEAF.key_pem),
        CRT,
        (
            f"{CRT} (CN=other.example.com) does not cover host {pki.ALB_HOST}: its DNS names are "
            "other.example.com."
        ),
    ),
    (
        "san-wildcard-spans-two-labels",
        preflight(tls_crt=TWO_LABEL_WILDCARD.chain_pem, tls_key=TWO_LABEL_WILDCARD.key_pem),
        CRT,
        (
            f"{CRT} (CN=*.us-south.containers.appdomain.cloud) does not cover host {pki.ALB_HOST}: "
            "its DNS names are *.us-south.containers.appdomain.cloud."
        ),
    ),
    # extended key usage: what a user with a real IKS ALB certificate sees
    (
        "le-leaf-without-clientauth",
        preflight(tls_crt=LE_ALB.chain_pem, tls_key=LE_ALB.key_pem, trusted=LE.anchors_pem),
        CRT,
        (
            f"{CRT} ({LEAF}) has no clientAuth extended key usage (only serverAuth), so it cannot "
            f"act as the ALB's client certificate: {LE_2026}."
        ),
    ),
    (
        "le-leaf-without-clientauth-default-trust",
        preflight(
            tls_crt=LE_ALB.chain_pem, tls_key=LE_ALB.key_pem, trusted=certs.isrg_roots_pem()
        ),
        CRT,
        (
            f"{CRT} ({LEAF}) has no clientAuth extended key usage (only serverAuth), so it cannot "
            f"act as the ALB's client certificate: {LE_2026}."
        ),
    ),
    (
        "le-leaf-with-clientauth-under-yr1",
        preflight(
            tls_crt=LE_ALB_OLD.chain_pem, tls_key=LE_ALB_OLD.key_pem, trusted=LE.anchors_pem
        ),
        CRT,
        (
            f"{CRT}: intermediate certificate #2 (CN=Test YR1) limits the extended key usage to "
            "serverAuth without clientAuth, so the chain cannot act as the ALB's client certificate "
            f"(OpenSSL and Envoy refuse it as 'unsuitable certificate purpose'): {LE_2026}."
        ),
    ),
    (
        "clientauth-leaf-under-serverauth-only-intermediate",
        preflight(tls_crt=UNDER_SERVER_ONLY.chain_pem, tls_key=UNDER_SERVER_ONLY.key_pem),
        CRT,
        (
            f"{CRT}: intermediate certificate #2 (CN=Test Server-only CA) limits the extended key "
            "usage to serverAuth without clientAuth, so the chain cannot act as the ALB's client "
            f"certificate (OpenSSL and Envoy refuse it as 'unsuitable certificate purpose'): "
            f"{LE_2026}."
        ),
    ),
    # chain verification
    (
        "chain-from-another-ca",
        preflight(trusted=OTHER_ROOT.cert_pem),
        CRT,
        (
            f"{CRT} does not verify as a TLS client certificate against trustedCaPem: no chain "
            "leads from it (issuer CN=Test Client Issuing CA,O=Example Corp (test),C=US) to a "
            "certificate in trustedCaPem: another CA issued it, or an intermediate certificate is "
            "missing after the leaf."
        ),
    ),
    (
        "chain-missing-intermediate",
        preflight(tls_crt=GOOD.cert_pem),
        CRT,
        (
            f"{CRT} does not verify as a TLS client certificate against trustedCaPem: no chain "
            "leads from it (issuer CN=Test Client Issuing CA,O=Example Corp (test),C=US) to a "
            "certificate in trustedCaPem: another CA issued it, or an intermediate certificate is "
            "missing after the leaf."
        ),
    ),
    (
        "verify-le-chain-as-client",
        lambda: certs.verify_chain(
            LE_ALB.certs, LE.anchors, what=CRT, purpose="client", host=None, now=NOW
        ),
        CRT,
        (
            f"{CRT} does not verify as a TLS client certificate against trustedCaPem: a certificate "
            f"in its chain lacks the clientAuth extended key usage (at certificate {LEAF})."
        ),
    ),
    (
        "verify-old-le-chain-as-client",
        lambda: certs.verify_chain(
            LE_ALB_OLD.certs, LE.anchors, what=CRT, purpose="client", host=None, now=NOW
        ),
        CRT,
        (
            f"{CRT} does not verify as a TLS client certificate against trustedCaPem: a certificate "
            "in its chain lacks the clientAuth extended key usage."
        ),
    ),
    (
        "verify-gateway-for-wrong-host",
        lambda: certs.verify_chain(
            LE_GATEWAY.certs,
            LE.anchors,
            what=GATEWAY_CRT,
            purpose="server",
            host=pki.ALB_HOST,
            now=NOW,
        ),
        GATEWAY_CRT,
        (
            f"{GATEWAY_CRT} does not verify as a TLS server certificate against trustedCaPem: it "
            f"does not name host {pki.ALB_HOST}."
        ),
    ),
    (
        "verify-gateway-depth-too-small",
        lambda: certs.verify_chain(
            LE_GATEWAY.certs,
            LE.anchors,
            what=GATEWAY_CRT,
            purpose="server",
            host=pki.GATEWAY_DOMAIN,
            now=NOW,
            max_chain_depth=1,
        ),
        GATEWAY_CRT,
        (
            f"{GATEWAY_CRT} does not verify as a TLS server certificate against trustedCaPem: its "
            "chain needs more intermediate certificates than the 1 allowed."
        ),
    ),
    (
        "verify-client-without-san",
        lambda: certs.verify_chain(
            [NO_SAN], [GOOD_ROOT.cert], what=CRT, purpose="client", host=None, now=NOW
        ),
        CRT,
        (
            f"{CRT} does not verify as a TLS client certificate against trustedCaPem: certificate "
            "CN=no-san lacks the subjectAltName extension, so it names no host (the common name "
            "does not count)."
        ),
    ),
    (
        "verify-expired-leaf",
        lambda: certs.verify_chain(
            EXPIRED_LEAF.certs, [GOOD_ROOT.cert], what=CRT, purpose="client", host=None, now=NOW
        ),
        CRT,
        (
            f"{CRT} does not verify as a TLS client certificate against trustedCaPem: a certificate "
            f"in its chain is expired or not yet valid (at certificate {LEAF})."
        ),
    ),
    # the small readers
    (
        "not-after-of-garbage",
        lambda: certs.not_after_iso(GARBAGE, what="clientCertPem"),
        "clientCertPem",
        "clientCertPem contains no PEM certificate (no BEGIN CERTIFICATE line found).",
    ),
    (
        "dns-sans-of-a-key",
        lambda: certs.dns_sans(GOOD.key_pem, what="clientCertPem"),
        "clientCertPem",
        "clientCertPem holds a private key where only certificates belong.",
    ),
    (
        "san-check-without-san",
        lambda: certs.check_san_covers(GOOD_ROOT.cert, pki.ALB_HOST, CRT),
        CRT,
        (
            f"{CRT} (CN=Test Client Root) has no DNS subject alternative names, so it covers no "
            "host (the common name does not count)."
        ),
    ),
]

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{40,}")
_SECRET_LINES = {
    line
    for text in SECRET_PEMS
    for line in text.splitlines()
    if line and not line.startswith("-----") and ":" not in line
}


def assert_no_material(message: str) -> None:
    """Messages must never carry PEM text or key bytes."""
    assert "-----BEGIN" not in message and "-----END" not in message
    assert _BASE64_RUN.search(message) is None, message
    assert not any(line in message for line in _SECRET_LINES), message
    private_value = GOOD.key.private_numbers().private_value  # type: ignore[union-attr]
    assert f"{private_value:x}" not in message and str(private_value) not in message


@pytest.mark.parametrize(
    ("call", "culprit", "expected"),
    [
        pytest.param(call, culprit, expected, id=case)
        for case, call, culprit, expected in BAD_INPUTS
    ],
)
def test_bad_input_gets_its_message(
    call: Callable[[], object], culprit: str, expected: str
) -> None:
    with pytest.raises(certs.CertificateError) as caught:
        call()
    message = str(caught.value)
    assert message == expected
    assert culprit in message
    assert caught.value.what == culprit
    assert message.count(". ") == 0, "one sentence"
    assert_no_material(message)


def test_record_case_ids_are_unique() -> None:
    ids = [case for case, *_ in BAD_INPUTS]
    assert len(ids) == len(set(ids))


def test_certificate_error_is_a_value_error() -> None:
    assert issubclass(certs.CertificateError, ValueError)


# --- what passes --------------------------------------------------------------------------------


def test_valid_client_chain_passes_without_warnings() -> None:
    assert preflight()() == []


def test_expiring_within_14_days_is_a_warning_not_an_error() -> None:
    soon = GOOD_INTER.issue_leaf(pki.ALB_SANS, client_auth=True, not_after=NOW + 5 * DAY)
    warnings = preflight(tls_crt=soon.chain_pem, tls_key=soon.key_pem)()
    assert warnings == [
        (
            f"{CRT} ({LEAF}) expires on {iso(NOW + 5 * DAY)}, in 5 days (under 14): renew it or "
            "expect TLS failures."
        )
    ]
    assert_no_material(warnings[0])


def test_check_validity_boundaries() -> None:
    leaf = GOOD_INTER.issue_leaf(pki.ALB_SANS, not_after=NOW + 14 * DAY)
    assert certs.check_validity(leaf.cert, CRT, NOW) == []
    assert certs.check_validity(leaf.cert, CRT, NOW + DAY) != []
    assert "in less than a day" in certs.check_validity(leaf.cert, CRT, NOW + 14 * DAY)[0]
    naive_now = NOW.replace(tzinfo=None)
    assert certs.check_validity(leaf.cert, CRT, naive_now) == []


def test_le_like_gateway_certificate_verifies_as_server() -> None:
    certs.verify_chain(
        LE_GATEWAY.certs, LE.anchors, what=GATEWAY_CRT, purpose="server", host=pki.GATEWAY_DOMAIN
    )
    # the wildcard names one label below the subdomain, too
    certs.verify_chain(
        LE_GATEWAY.certs,
        LE.anchors,
        what=GATEWAY_CRT,
        purpose="server",
        host=f"x.{pki.GATEWAY_DOMAIN}",
        now=NOW,
    )


def test_private_ca_client_verifies_and_checks_host() -> None:
    ca = pki.private_ca()
    client = ca.issue_client([pki.ALB_HOST])
    certs.verify_chain(
        client.certs, [ca.cert], what=CRT, purpose="client", host=pki.ALB_HOST, now=NOW
    )
    certs.check_client_eku(client.certs, CRT)
    with pytest.raises(certs.CertificateError, match="does not cover host other.example.com"):
        certs.verify_chain(
            client.certs, [ca.cert], what=CRT, purpose="client", host="other.example.com"
        )


def test_verify_chain_needs_a_host_for_servers() -> None:
    with pytest.raises(ValueError, match="needs the host"):
        certs.verify_chain(LE_GATEWAY.certs, LE.anchors, what="x", purpose="server", host=None)


def test_client_eku_allows_no_eku_and_any_eku() -> None:
    """No EKU extension means any purpose (OpenSSL agrees); anyExtendedKeyUsage likewise."""
    root = pki.self_signed_ca("Test Root")
    no_eku = root.intermediate("Test No-EKU CA", ekus=None)
    any_eku = root.intermediate(
        "Test Any-EKU CA", ekus=[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]
    )
    certs.check_client_eku(no_eku.issue_client([pki.ALB_HOST]).certs, CRT)
    certs.check_client_eku(any_eku.issue_client([pki.ALB_HOST]).certs, CRT)
    leaf_without_eku = no_eku.issue_leaf([pki.ALB_HOST], server_auth=False, client_auth=False)
    assert x509.ExtendedKeyUsage not in {type(e.value) for e in leaf_without_eku.cert.extensions}
    certs.check_client_eku(leaf_without_eku.certs, CRT)


@pytest.mark.parametrize(
    ("pattern", "host", "covered"),
    [
        (f"*.{pki.ALB_DOMAIN}", pki.ALB_HOST, True),
        (f"*.{pki.ALB_DOMAIN}", pki.ALB_HOST.upper() + ".", True),
        (f"*.{pki.ALB_DOMAIN}", f"a.{pki.ALB_HOST}", False),
        (f"*.{pki.ALB_DOMAIN}", pki.ALB_DOMAIN, False),
        (pki.ALB_DOMAIN, pki.ALB_DOMAIN, True),
        (pki.ALB_HOST, pki.ALB_HOST, True),
        ("*.containers.appdomain.cloud", pki.ALB_HOST, False),
    ],
)
def test_san_matching(pattern: str, host: str, covered: bool) -> None:
    leaf = GOOD_INTER.issue_leaf([pattern])
    if covered:
        certs.check_san_covers(leaf.cert, host, CRT)
    else:
        with pytest.raises(certs.CertificateError, match="does not cover host"):
            certs.check_san_covers(leaf.cert, host, CRT)


def test_parse_tolerates_comments_crlf_and_yaml_indentation() -> None:
    text = "# ALB chain\n" + GOOD.chain_pem.replace("\n", "\r\n")
    indented = "".join(f"    {line}\n" for line in GOOD.chain_pem.splitlines())
    assert certs.parse_certificates(text, CRT) == GOOD.certs
    assert certs.parse_certificates(indented, CRT) == GOOD.certs
    assert certs.parse_certificates(GOOD.chain_pem.encode(), CRT) == GOOD.certs
    key = certs.parse_private_key("    " + GOOD.key_pem.replace("\n", "\n    "), KEY)
    certs.check_key_matches(GOOD.cert, key, KEY)


def test_readers() -> None:
    leaf = GOOD_INTER.issue_leaf(
        pki.ALB_SANS, not_after=dt.datetime(2027, 2, 23, 12, 0, tzinfo=dt.timezone.utc)
    )
    assert certs.not_after_iso(leaf.chain_pem) == "2027-02-23T12:00:00Z"
    assert certs.dns_sans(leaf.chain_pem) == list(pki.ALB_SANS)


def test_trust_bundle_accepts_the_le_like_anchor() -> None:
    anchors = certs.check_trust_bundle(LE.anchors_pem)
    assert [a.subject for a in anchors] == [LE.x1.cert.subject]


# --- ISRG roots from certifi ----------------------------------------------------------------------


def test_isrg_roots_pem_returns_x1_and_x2() -> None:
    pem = certs.isrg_roots_pem()
    roots = certs.check_trust_bundle(pem)
    names = [r.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for r in roots]
    assert names == ["ISRG Root X1", "ISRG Root X2"]
    assert all(r.subject == r.issuer for r in roots)


# --- the real Let's Encrypt certificates (read in place, never copied) ----------------------------


def _reference(name: str) -> x509.Certificate:
    if not REFERENCE.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{REFERENCE} is missing, and CI=true requires it")
        pytest.skip(f"{REFERENCE} is not here")
    return x509.load_pem_x509_certificate((REFERENCE / name).read_bytes())


@pytest.mark.parametrize(
    ("intermediate", "cross_root", "name"),
    [("int-yr1.pem", "root-yr-by-x1.pem", "YR1"), ("int-ye1.pem", "root-ye-by-x2.pem", "YE1")],
)
def test_real_letsencrypt_chain_is_refused_as_client_chain(
    intermediate: str, cross_root: str, name: str
) -> None:
    inter, cross = _reference(intermediate), _reference(cross_root)
    # Even a clientAuth leaf is refused under the real Gen-Y intermediates ...
    leaf = GOOD_INTER.issue_client([pki.ALB_HOST]).cert
    with pytest.raises(certs.CertificateError) as caught:
        certs.check_client_eku([leaf, inter, cross], CRT)
    message = str(caught.value)
    assert (
        f"intermediate certificate #2 (CN={name}) limits the extended key usage to serverAuth "
        "without clientAuth"
    ) in message
    assert "clientCertSource=private-ca" in message
    assert_no_material(message)
    # ... and so is the cross-signed root on its own.
    with pytest.raises(certs.CertificateError, match="clientCertSource=private-ca"):
        certs.check_client_eku([leaf, cross], CRT)


def test_real_letsencrypt_hierarchy_matches_certifi_and_the_test_pki() -> None:
    x1, x2 = _reference("isrg-root-x1.pem"), _reference("isrg-root-x2.pem")
    cross, yr1 = _reference("root-yr-by-x1.pem"), _reference("int-yr1.pem")
    # certifi's ISRG roots are the real ones
    assert certs.parse_certificates(certs.isrg_roots_pem(), "isrg") == [x1, x2]
    # the reference chain hangs together: YR1 <- Root YR (cross-signed) <- X1
    yr1.verify_directly_issued_by(cross)
    cross.verify_directly_issued_by(x1)
    # the test PKI carries the same extensions (type, criticality, EKU, CA/pathlen, key usage)
    for real, fake in [(x1, LE.x1.cert), (cross, LE.root_yr_cross.cert), (yr1, LE.yr1.cert)]:
        assert _profile(fake) == _profile(real)


def _profile(cert: x509.Certificate) -> dict[str, object]:
    profile: dict[str, object] = {}
    for ext in cert.extensions:
        value = ext.value
        if isinstance(value, x509.ExtendedKeyUsage | x509.BasicConstraints | x509.KeyUsage):
            profile[ext.oid.dotted_string] = (ext.critical, value)
        else:
            profile[ext.oid.dotted_string] = (ext.critical, type(value).__name__)
    return profile



def test_every_message_here_is_in_the_troubleshooting_page() -> None:
    records = [(case, message) for case, _call, _culprit, message in BAD_INPUTS]
    assert len(records) > 20, "the records were not found"
    missing = documented.undocumented(records)
    assert missing == [], "docs/troubleshooting.md lacks:\n" + "\n".join(missing)

if __name__ == "__main__":  # print the record
    for case, call, _culprit, _expected in BAD_INPUTS:
        try:
            call()
        except certs.CertificateError as error:
            print(f"{case}:\n    {error}")
        else:
            print(f"{case}:\n    (no error!)")
