"""The preflight never refuses what the proxy that verifies it in production accepts.

``CORPUS`` is one table: named certificate chains, each with the verdict of the program's
checks, the verdict of the proxy that verifies that certificate in production on the loopback
data plane, and, where they differ, the documented reason.  For each entry the tests prove

(a) the checks' verdict and exact message (``test_the_checks_verdict``);
(b) the proxy's verdict and its evidence (``test_the_proxys_verdict``): Envoy for the ALB's
    client certificate (``clientCertSource=alb``, presented by nginx as the ALB presents it),
    nginx for the gateway's server certificate (``proxy-ssl-verify on``, depth, name), and
    Traefik for it with ``albFlavor=traefik``;
(c) that the two agree, or that the checks refuse for a reason their message states and the
    proxy does not check (``test_the_verdicts_agree``); never the other way round.

Who checks what (see tests/support/corpus.py): the ``client`` role is the preflight
``preflight_alb_client_material``.  The program never reads the gateway's server certificate
(IKS's nlb-dns issues it and only the gateway reads it): in the ``server`` role it checks
``trustedCaPem`` (``check_trust_bundle``) and writes ``proxy-ssl-verify-depth``; the chain is
judged by ``verify_chain`` with that depth, the check the certs module offers for it (and,
in the ``traefik`` role, as Traefik verifies: partial chains, no depth).

Run ``python -m tests.test_preflight_corpus`` (from the project root, with the test venv) to
print the table with the verdicts as they are now.  The proxy half needs nginx, Envoy and
Traefik: skipped without them on a laptop, failed with ``CI=true``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography import x509

from components import certs, specs
from components.program import run
from tests.support import corpus, documented, pki
from tests.support.cluster import standin
from tests.support.corpus import (
    ANY_EKU,
    CLIENT_AUTH,
    CRT,
    DAY,
    GATEWAY_CRT,
    NOW,
    SERVER_AUTH,
    SHORT_GATEWAY_DOMAIN,
    Material,
    Role,
    Shape,
    Verdict,
    client,
    letsencrypt_gateway,
    server,
)
from tests.support.dataplane import CONFIG, LE, require_tools
from tools import dataplane, mock_program, signals
from tools import x509 as tx

ACCEPT = ""
"""In a row: the verdict is accept (a string is a refusal: the checks' message, the proxy's evidence)."""

ALB = pki.ALB_DOMAIN
NO_DS_RSA = tx.key_usage(key_encipherment=True)
KA_ONLY = tx.key_usage(key_agreement=True)
NOT_VERIFIED_AS_CLIENT = f"{CRT} does not verify as a TLS client certificate against trustedCaPem"
NOT_VERIFIED_AS_SERVER = f"{GATEWAY_CRT} does not verify as a TLS server certificate against trustedCaPem"
LE_2026 = certs.LETSENCRYPT_2026


@dataclass(frozen=True)
class Entry:
    """One row: the chain, what the checks say, what the proxy says, and why they may differ."""

    id: str
    role: Role
    chain: str
    material: Callable[[], Material]
    checks: str
    """ACCEPT, or the checks' exact message."""
    proxy: str
    """ACCEPT, or evidence the proxy's refusal must show (an Envoy counter, nginx's reason)."""
    allowed: str | None = None
    """Where the checks refuse and the proxy accepts: the reason, which the message must state."""
    warning: str | None = None
    """Where the checks accept with a warning: a part of it."""

    @property
    def expected_checks(self) -> Verdict:
        return Verdict(self.checks == ACCEPT, self.checks)

    @property
    def expected_proxy(self) -> Verdict:
        return Verdict(self.proxy == ACCEPT, self.proxy)


CORPUS: list[Entry] = [
    # --- the ALB's client certificate (clientCertSource=alb): the preflight vs Envoy -------------------------------
    Entry("client-ecdsa", "client", "ECDSA P-256: root, issuing CA, leaf with serverAuth+clientAuth",
          client(), ACCEPT, ACCEPT),
    Entry("client-rsa", "client", "RSA 2048: the same chain with RSA keys",
          client(use_rsa=True), ACCEPT, ACCEPT),
    Entry("client-leaf-without-aki", "client", "leaf without authorityKeyIdentifier (CA/B profile requires it)",
          client(leaf=Shape(aki=False)), ACCEPT, ACCEPT),
    Entry("client-leaf-without-ski", "client", "leaf without subjectKeyIdentifier",
          client(leaf=Shape(ski=False)), ACCEPT, ACCEPT),
    Entry("client-issuer-without-aki", "client", "issuing CA without authorityKeyIdentifier",
          client(issuer=Shape(aki=False)), ACCEPT, ACCEPT),
    Entry("client-issuer-without-ski", "client", "issuing CA without subjectKeyIdentifier",
          client(issuer=Shape(ski=False)), ACCEPT, ACCEPT),
    Entry("client-leaf-basic-constraints-non-critical", "client", "leaf with a non-critical basicConstraints CA:FALSE",
          client(leaf=Shape(basic_constraints="non-critical")), ACCEPT, ACCEPT),
    Entry("client-issuer-basic-constraints-non-critical", "client",
          "issuing CA with a non-critical basicConstraints CA:TRUE (CA/B profile: critical)",
          client(issuer=Shape(basic_constraints="non-critical")), ACCEPT, ACCEPT),
    Entry("client-issuer-without-key-usage", "client", "issuing CA without keyUsage (CA/B profile requires it)",
          client(issuer=Shape(usage=None)), ACCEPT, ACCEPT),
    Entry("client-leaf-eku-critical", "client", "leaf with a critical extendedKeyUsage (CA/B profile: non-critical)",
          client(leaf=Shape(critical=(x509.ExtendedKeyUsage,))),
          ACCEPT, ACCEPT),
    Entry("client-leaf-san-critical", "client", "leaf with a subject and a critical subjectAltName",
          client(leaf=Shape(critical=(x509.SubjectAlternativeName,))),
          ACCEPT, ACCEPT),
    Entry("client-leaf-ca-true", "client", "leaf with basicConstraints CA:TRUE and keyUsage keyCertSign",
          client(leaf=Shape(ca=True, usage=tx.key_usage(digital_signature=True, key_cert_sign=True))), ACCEPT, ACCEPT),
    Entry("client-cn-only", "client", "leaf with a common name and no subjectAltName",
          client(dns_names=(), common_name="alb.example.test"),
          f"{CRT} (CN=alb.example.test) has no DNS subject alternative names, so it covers no host (the common "
          "name does not count).",
          "envoy ssl.fail_verify_san"),
    Entry("client-san-not-pinned", "client", "leaf naming httpbin.<albDomain> only (the gateway pins *.<albDomain>, <albDomain>)",
          client(dns_names=(pki.ALB_HOST,)),
          f"{CRT} (CN=corpus-leaf) has neither *.{ALB} nor {ALB} among its DNS names, and the gateway pins those "
          f"names for the ALB's client certificate, so Envoy refuses it: its DNS names are {pki.ALB_HOST}.",
          "envoy ssl.fail_verify_san"),
    Entry("client-intermediate-as-anchor", "client", "trustedCaPem holds the issuing CA, not its root (partial chain)",
          client(anchor="intermediate"), ACCEPT, ACCEPT),
    Entry("client-deeper-than-proxy-ssl-verify-depth", "client",
          f"{specs.PROXY_SSL_VERIFY_DEPTH + 1} issuing CAs (Envoy has no depth setting from Istio)",
          client(depth=specs.PROXY_SSL_VERIFY_DEPTH + 1), ACCEPT, ACCEPT),
    Entry("client-deeper-than-cryptography-default", "client", "9 issuing CAs (cryptography's default limit is 8)",
          client(depth=9), ACCEPT, ACCEPT),
    Entry("client-leaf-rsa-without-digital-signature", "client", "RSA leaf whose keyUsage is keyEncipherment only",
          client(use_rsa=True, leaf=Shape(usage=NO_DS_RSA)),
          f"{CRT} (CN=corpus-leaf) has a keyUsage without digitalSignature (only keyEncipherment), so it cannot "
          "sign the TLS handshake as the ALB's client certificate and Envoy ends the handshake.",
          "envoy ssl.connection_error"),
    Entry("client-leaf-ecdsa-key-agreement-only", "client", "ECDSA leaf whose keyUsage is keyAgreement only",
          client(leaf=Shape(usage=KA_ONLY)),
          f"{CRT} (CN=corpus-leaf) has a keyUsage without digitalSignature (only keyAgreement), so it cannot "
          "sign the TLS handshake as the ALB's client certificate and Envoy ends the handshake.",
          "envoy ssl.connection_error"),
    Entry("client-issuer-any-eku", "client", "issuing CA whose EKU is anyExtendedKeyUsage only",
          client(issuer=Shape(ekus=(ANY_EKU,))),
          f"{NOT_VERIFIED_AS_CLIENT}: a certificate in its chain lacks the clientAuth extended key usage.",
          "envoy ssl.fail_verify_error"),
    Entry("client-issuer-without-basic-constraints", "client", "issuing CA without basicConstraints",
          client(issuer=Shape(basic_constraints="absent")),
          f"{NOT_VERIFIED_AS_CLIENT}: certificate CN=Corpus Issuing CA 1 issues another in its chain but is not a "
          "CA (basicConstraints CA:TRUE is missing).",
          "envoy ssl.fail_verify_error"),
    Entry("client-issuer-key-usage-without-cert-sign", "client", "issuing CA whose keyUsage lacks keyCertSign",
          client(issuer=Shape(usage=tx.key_usage(digital_signature=True, crl_sign=True))),
          f"{NOT_VERIFIED_AS_CLIENT}: certificate CN=Corpus Issuing CA 1 issues another in its chain but its "
          "keyUsage lacks keyCertSign.",
          "envoy ssl.fail_verify_error"),
    Entry("client-letsencrypt-2026", "client", "the IKS ALB certificate from Let's Encrypt: serverAuth only",
          corpus.letsencrypt_alb,
          f"{CRT} (DNS:*.{ALB}) has no clientAuth extended key usage (only serverAuth), so it cannot act as the "
          f"ALB's client certificate: {LE_2026}.",
          "envoy ssl.fail_verify_error"),
    Entry("client-leaf-server-auth-only", "client", "our own chain, leaf with serverAuth only",
          client(leaf=Shape(ekus=(SERVER_AUTH,))),
          f"{CRT} (CN=corpus-leaf) has no clientAuth extended key usage (only serverAuth), so it cannot act as "
          f"the ALB's client certificate: {LE_2026}.",
          "envoy ssl.fail_verify_error"),
    Entry("client-expiring-in-5-days", "client", "leaf valid for 5 more days (a warning, not a refusal)",
          client(leaf=Shape(not_after=5 * DAY)), ACCEPT, ACCEPT, warning="(under 14): renew it"),
    Entry("client-leaf-expired", "client", "leaf that expired yesterday",
          client(leaf=Shape(not_before=-30 * DAY, not_after=-DAY)),
          f"{CRT} (CN=corpus-leaf) expired on {(NOW - DAY).strftime('%Y-%m-%dT%H:%M:%SZ')}.",
          "envoy ssl.fail_verify_error"),
    # --- the gateway's server certificate: the certs module's checks vs nginx (proxy-ssl-verify) ------------------
    Entry("server-letsencrypt-like", "server", "nlb-dns certificate: leaf, YR1, Root YR cross-signed by ISRG Root X1",
          letsencrypt_gateway(), ACCEPT, ACCEPT),
    Entry("server-ecdsa", "server", "ECDSA P-256: root, issuing CA, leaf", server(), ACCEPT, ACCEPT),
    Entry("server-rsa", "server", "RSA 2048: root, issuing CA, leaf", server(use_rsa=True), ACCEPT, ACCEPT),
    Entry("server-leaf-without-aki", "server", "leaf without authorityKeyIdentifier",
          server(leaf=Shape(aki=False)), ACCEPT, ACCEPT),
    Entry("server-issuer-basic-constraints-non-critical", "server", "issuing CA with a non-critical basicConstraints",
          server(issuer=Shape(basic_constraints="non-critical")), ACCEPT, ACCEPT),
    Entry("server-issuer-without-key-usage", "server", "issuing CA without keyUsage",
          server(issuer=Shape(usage=None)), ACCEPT, ACCEPT),
    Entry("server-leaf-rsa-without-digital-signature", "server", "RSA leaf whose keyUsage is keyEncipherment only",
          server(use_rsa=True, leaf=Shape(usage=NO_DS_RSA)), ACCEPT, ACCEPT),
    Entry("server-as-deep-as-proxy-ssl-verify-depth", "server",
          f"{specs.PROXY_SSL_VERIFY_DEPTH} issuing CAs (proxy-ssl-verify-depth {specs.PROXY_SSL_VERIFY_DEPTH})",
          server(depth=specs.PROXY_SSL_VERIFY_DEPTH), ACCEPT, ACCEPT),
    Entry("server-deeper-than-proxy-ssl-verify-depth", "server",
          f"{specs.PROXY_SSL_VERIFY_DEPTH + 1} issuing CAs",
          server(depth=specs.PROXY_SSL_VERIFY_DEPTH + 1),
          f"{NOT_VERIFIED_AS_SERVER}: its chain needs more intermediate certificates than the "
          f"{specs.PROXY_SSL_VERIFY_DEPTH} allowed.",
          "nginx: 20:unable to get local issuer certificate"),
    Entry("server-intermediate-as-anchor", "server", "trustedCaPem holds only the issuing CA (no self-signed root)",
          server(anchor="intermediate"),
          "trustedCaPem holds no self-signed root certificate, and OpenSSL (nginx) verifies without partial chains, "
          f"so no chain from {GATEWAY_CRT} can end in it.",
          "nginx: 2:unable to get issuer certificate"),
    Entry("server-intermediate-as-anchor-beside-roots", "server",
          "trustedCaPem holds the issuing CA and the ISRG-like root (not the corpus root)",
          server(anchor="intermediate", trusted_extra=LE.anchors),
          f"{NOT_VERIFIED_AS_SERVER}: its chain ends at CN=Corpus Issuing CA 1 in trustedCaPem, which is not a "
          "self-signed root, and OpenSSL (nginx) verifies without partial chains, so it needs the root above it "
          "in trustedCaPem.",
          "nginx: 2:unable to get issuer certificate"),
    Entry("server-issuer-any-eku", "server", "issuing CA whose EKU is anyExtendedKeyUsage only",
          server(issuer=Shape(ekus=(ANY_EKU,))),
          f"{NOT_VERIFIED_AS_SERVER}: a certificate in its chain lacks the serverAuth extended key usage.",
          "nginx: 26:unsuitable certificate purpose"),
    Entry("server-leaf-client-auth-only", "server", "leaf with clientAuth only",
          server(leaf=Shape(ekus=(CLIENT_AUTH,))),
          f"{NOT_VERIFIED_AS_SERVER}: a certificate in its chain lacks the serverAuth extended key usage (at "
          "certificate CN=corpus-leaf).",
          "nginx: 26:unsuitable certificate purpose"),
    Entry("server-cn-only", "server", f"leaf with common name {SHORT_GATEWAY_DOMAIN} and no subjectAltName",
          server(dns_names=(), common_name=SHORT_GATEWAY_DOMAIN, gateway_domain=SHORT_GATEWAY_DOMAIN),
          f"{NOT_VERIFIED_AS_SERVER}: certificate CN={SHORT_GATEWAY_DOMAIN} lacks the subjectAltName extension, "
          "so it names no host (the common name does not count).",
          ACCEPT,
          allowed="the common name does not count"),  # nginx falls back to the CN; Traefik and browsers do not
    Entry("server-trusted-expired-ca-beside-roots", "server", "trustedCaPem holds the ISRG-like root and an expired CA",
          letsencrypt_gateway(trusted=(*LE.anchors, corpus.expired_ca())),
          f"trustedCaPem: CA certificate #2 (CN=Corpus Expired Root) expired on "
          f"{(NOW - DAY).strftime('%Y-%m-%dT%H:%M:%SZ')}.",
          ACCEPT,
          allowed="expired on"),
    Entry("server-trusted-non-ca-beside-roots", "server", "trustedCaPem holds the ISRG-like root and a leaf certificate",
          letsencrypt_gateway(trusted=(*LE.anchors, corpus.not_a_ca())),
          f"trustedCaPem: certificate #2 (DNS:{pki.GATEWAY_DOMAIN}) is not a CA certificate (basicConstraints "
          "CA:TRUE is missing), so it cannot be a trust anchor.",
          ACCEPT,
          allowed="is not a CA certificate"),
    # --- the gateway's server certificate with albFlavor=traefik: the checks as Traefik verifies vs Traefik ------
    Entry("traefik-intermediate-as-anchor", "traefik", "trustedCaPem holds only the issuing CA (partial chain)",
          server(anchor="intermediate"), ACCEPT, ACCEPT),
    Entry("traefik-cn-only", "traefik", f"leaf with common name {SHORT_GATEWAY_DOMAIN} and no subjectAltName",
          server(dns_names=(), common_name=SHORT_GATEWAY_DOMAIN, gateway_domain=SHORT_GATEWAY_DOMAIN),
          f"{NOT_VERIFIED_AS_SERVER}: certificate CN={SHORT_GATEWAY_DOMAIN} lacks the subjectAltName extension, "
          "so it names no host (the common name does not count).",
          "traefik: x509: certificate relies on legacy Common Name field"),
]


def agreement(entry: Entry, checks: Verdict, proxy: Verdict) -> str:
    """``agree``, ``allowed: <reason>`` (the checks refuse for a reason their message states and
    the proxy does not check), or ``DISAGREE``."""
    if checks.accepted == proxy.accepted:
        return "agree"
    if not checks.accepted and entry.allowed and entry.allowed in checks.detail:
        return f"allowed: {entry.allowed}"
    return "DISAGREE"


def _params() -> list[object]:
    return [pytest.param(entry, id=entry.id) for entry in CORPUS]


# --- (a) the checks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", _params())
def test_the_checks_verdict(entry: Entry) -> None:
    verdict, error = corpus.check_verdict(entry.role, entry.material())
    assert verdict.word == entry.expected_checks.word, verdict.detail
    if entry.checks == ACCEPT:
        if entry.warning:
            assert entry.warning in verdict.detail, verdict.detail
        else:
            assert verdict.detail == "", verdict.detail
        return
    assert error is not None
    assert verdict.detail == entry.checks
    assert "\n" not in verdict.detail and verdict.detail.count(". ") == 0, "one line, one sentence"
    assert error.what in {CRT, GATEWAY_CRT, "trustedCaPem"} and verdict.detail.startswith(error.what)


def test_every_message_of_the_corpus_is_in_the_troubleshooting_page() -> None:
    records = [(entry.id, entry.checks) for entry in CORPUS]
    missing = documented.undocumented(records)
    assert missing == [], "docs/troubleshooting.md lacks:\n" + "\n".join(missing)


def test_the_preflight_pins_the_names_the_gateway_pins() -> None:
    """certs.pinned_alb_names is what the Gateway of clientCertSource=alb pins."""
    material = corpus.letsencrypt_alb()
    cluster = standin(secrets={corpus.SECRET: {"tls.crt": material.chain_pem, "tls.key": material.key_pem}})
    rendering = mock_program.render(
        {**CONFIG, "clientCertSource": "alb"}, cluster,
        program=lambda discover: run(discover, preflight=lambda *args, **kwargs: []),
    )
    assert rendering.error is None, rendering.error
    gateway = next(m for m in rendering.manifests() if m["kind"] == "Gateway")
    pinned = [s["tls"]["subjectAltNames"] for s in gateway["spec"]["servers"] if s.get("tls", {}).get("mode") == "MUTUAL"]
    assert pinned == [list(certs.pinned_alb_names(pki.ALB_HOST))]


# --- (b) the proxies ---------------------------------------------------------------------------------------


@pytest.mark.dataplane
@pytest.mark.parametrize("entry", _params())
def test_the_proxys_verdict(entry: Entry) -> None:
    require_tools(*corpus.TOOLS[entry.role])
    verdict = corpus.proxy_verdict(entry.role, entry.material())
    assert verdict.word == entry.expected_proxy.word, verdict.detail
    if not verdict.accepted:
        assert entry.proxy in verdict.detail, verdict.detail


# --- (c) agreement -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", _params())
def test_the_verdicts_agree(entry: Entry) -> None:
    """(a) and (b) prove the table's verdicts; here the table itself: agreement, or the checks
    refuse for the reason the row names, which their message states."""
    verdict = agreement(entry, entry.expected_checks, entry.expected_proxy)
    assert verdict != "DISAGREE", (entry.id, entry.checks, entry.proxy)
    assert (entry.allowed is None) == (verdict == "agree"), "a reason only where they differ"


def test_the_corpus_has_what_the_issue_names() -> None:
    ids = {entry.id for entry in CORPUS}
    for wanted in (
        "client-leaf-without-aki", "client-issuer-without-aki", "client-leaf-without-ski", "client-issuer-without-ski",
        "client-leaf-basic-constraints-non-critical", "client-issuer-basic-constraints-non-critical",
        "client-cn-only", "server-cn-only", "client-intermediate-as-anchor", "server-intermediate-as-anchor",
        "server-deeper-than-proxy-ssl-verify-depth", "client-deeper-than-proxy-ssl-verify-depth",
        "client-rsa", "client-ecdsa", "server-rsa", "server-ecdsa",
        "client-leaf-rsa-without-digital-signature", "server-leaf-rsa-without-digital-signature",
        "traefik-intermediate-as-anchor",
    ):
        assert wanted in ids, wanted
    assert len(ids) == len(CORPUS), "ids are unique"


# --- the table -------------------------------------------------------------------------------------------------


def main() -> int:
    """Print the table: each entry's verdicts as they are now (the proxies where installed)."""
    missing: dict[str, str] = {}
    for tool in ("nginx", "envoy", "traefik"):
        try:
            dataplane.find_tool(tool)
        except dataplane.ToolMissing as exc:
            missing[tool] = str(exc)
            print(f"(not run: {exc})")
    print(f"{'entry':48} {'role':8} {'checks':7} {'proxy':16} agreement")
    status = 0
    with signals.stop_on_signals(restore=False):
        for entry in CORPUS:
            material = entry.material()
            checks, _ = corpus.check_verdict(entry.role, material)
            ran = not any(tool in missing for tool in corpus.TOOLS[entry.role])
            proxy = corpus.proxy_verdict(entry.role, material) if ran else entry.expected_proxy
            verdict = agreement(entry, checks, proxy)
            mismatch = (checks.word, proxy.word) != (entry.expected_checks.word, entry.expected_proxy.word)
            status |= mismatch or verdict == "DISAGREE"
            proxy_word = f"{proxy.word} ({corpus.VERIFIER[entry.role]})" + ("" if ran else "*")
            flag = "  (not as the table says!)" if mismatch else ""
            print(f"{entry.id:48} {entry.role:8} {checks.word:7} {proxy_word:16} {verdict}{flag}")
            print(f"    chain:   {entry.chain}")
            if checks.detail:
                print(f"    checks:  {checks.detail}")
            if not proxy.accepted:
                print(f"    proxy:   {proxy.detail}")
            if entry.role != "client":
                program = corpus.program_verdict(entry.role, material)
                print(f"    program: {program.word}s: {program.detail}")
    if missing:
        print("* the table's verdict: the proxy is not installed here")
    for role, runs in corpus.PROGRAM_RUNS.items():
        print(f"{role} role: the program runs {runs}")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
