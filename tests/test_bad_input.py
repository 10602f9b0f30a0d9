"""Bad input through the whole program: one clear message naming the culprit, nothing carried.

Two records, run through :func:`tools.mock_program.render` exactly as ``pulumi up`` runs the
program:

- ``BAD_CONFIG``: a stack config value that is wrong.  The run fails with the exact message
  before *any* resource (not even the provider) is registered.
- ``BAD_ALB_MATERIAL``: with ``clientCertSource=alb``, the ALB's TLS secret as read from the
  cluster.  The run fails with the exact message, and none of the resources that would carry
  the material (``alb-certs``, the ``-cacert`` secret, the Gateway pinning it, the Ingress)
  is registered.

The pure checks behind the second record have their own, longer record in test_certs.py.
Run ``python -m tests.test_bad_input`` to print both records; docs/troubleshooting.md lists every
message (tests/test_docs.py checks it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from components import specs
from tests.support import documented, pki
from tests.support.cluster import ALB_DOMAIN, ALB_SECRET, CLUSTER, standin
from tools import mock_program

P = "config iks-alb-istio-mtls"
DAMAGED_CERT = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
GARBAGE = "this is not a certificate, just text pasted by mistake"

GENERIC_BASE: dict[str, Any] = {
    "platform": "generic", "albDomain": "apps.example.com", "albSecret": "apps-tls", "ingressClassName": "nginx",
}


def app(name: str, **fields: Any) -> dict[str, Any]:
    """An ``apps`` entry: host ``name``, Service ``web:8080`` in namespace ``shop`` unless told otherwise."""
    return {"name": name, "host": name, "service": "web", "namespace": "shop", "port": 8080, **fields}


# (case id, config overrides as the CLI passes them, key the message names, exact message)
BAD_CONFIG: list[tuple[str, dict[str, Any], str, str]] = [
    ("cluster-missing", {"cluster": ""}, "cluster",
     f"{P}:cluster: is required: the IKS cluster name or ID (pulumi config set cluster <name>)"),
    ("unknown-key", {"albdomain": ALB_DOMAIN}, "albdomain",
     f"{P}:albdomain: is not a configuration key of this program; did you mean albDomain?"),
    ("clusterType-unknown", {"clusterType": "classik"}, "clusterType",
     f"{P}:clusterType: must be one of classic, vpc; got 'classik'"),
    ("albFlavor-unknown", {"albFlavor": "haproxy"}, "albFlavor",
     f"{P}:albFlavor: must be one of nginx, ibm-legacy, traefik; got 'haproxy'"),
    ("clientCertSource-unknown", {"clientCertSource": "letsencrypt"}, "clientCertSource",
     f"{P}:clientCertSource: must be one of private-ca, alb; got 'letsencrypt'"),
    ("albTlsMode-unknown", {"albTlsMode": "copy"}, "albTlsMode",
     f"{P}:albTlsMode: must be one of mirror, default-certificate; got 'copy'"),
    ("istioApiVersion-unknown", {"istioApiVersion": "networking.istio.io/v1alpha3"}, "istioApiVersion",
     f"{P}:istioApiVersion: must be one of networking.istio.io/v1, networking.istio.io/v1beta1; "
     "got 'networking.istio.io/v1alpha3'"),
    ("albDomain-spaces", {"albDomain": "my cluster.example.com"}, "albDomain",
     f"{P}:albDomain: is not a valid DNS subdomain: 'my cluster.example.com'"),
    ("albDomain-single-label", {"albDomain": "localhost"}, "albDomain",
     f"{P}:albDomain: is not a valid DNS subdomain: 'localhost'"),
    ("albDomain-leading-hyphen", {"albDomain": "-bad.example.com"}, "albDomain",
     f"{P}:albDomain: must not start with '-' (a command line would read it as a flag): '-bad.example.com'"),
    ("albDomain-url", {"albDomain": "https://mycluster.example.com"}, "albDomain",
     f"{P}:albDomain: is not a valid DNS subdomain: 'https://mycluster.example.com'"),
    ("gatewayDomain-underscore",
     {"gatewayDomain": "gw_1.example.com", "gatewaySecret": "gw-1"}, "gatewayDomain",
     f"{P}:gatewayDomain: is not a valid DNS subdomain: 'gw_1.example.com'"),
    ("gatewayDomain-without-secret", {"gatewayDomain": "gw.example.com"}, "gatewaySecret",
     f"{P}:gatewaySecret: must be set together with gatewayDomain/gatewaySecret "
     "(both: use that existing nlb-dns subdomain)"),
    ("gatewaySecret-without-domain", {"gatewaySecret": "gw"}, "gatewayDomain",
     f"{P}:gatewayDomain: must be set together with gatewayDomain/gatewaySecret "
     "(both: use that existing nlb-dns subdomain)"),
    ("routes-empty", {"routes": []}, "routes",
     f'{P}:routes: must be a non-empty list of absolute paths, e.g. ["/status"]'),
    ("routes-not-a-list", {"routes": "/status"}, "routes",
     f'{P}:routes: must be a list of paths, e.g. ["/status"]'),
    ("routes-relative", {"routes": ["status"]}, "routes",
     f"{P}:routes: entry 'status' is not an absolute path such as /status"),
    ("routes-url", {"routes": ["https://x/status"]}, "routes",
     f"{P}:routes: entry 'https://x/status' is not an absolute path such as /status"),
    ("routes-double-slash", {"routes": ["//status"]}, "routes",
     f"{P}:routes: entry '//status' contains '//', which the Kubernetes API server refuses in an Ingress path"),
    ("routes-not-strings", {"routes": [1]}, "routes",
     f"{P}:routes: entry 1 is not an absolute path such as /status"),
    ("routes-twice", {"routes": ["/status", "/status/"]}, "routes",
     f"{P}:routes: entry '/status/' is listed twice"),
    ("routes-bad-json", {"routes": '["/status"'}, "routes",
     f"{P}:routes: is not valid JSON (Expecting ',' delimiter at position 10)"),
    ("certWaitTimeoutSeconds-zero", {"certWaitTimeoutSeconds": "0"}, "certWaitTimeoutSeconds",
     f"{P}:certWaitTimeoutSeconds: must be a positive whole number; got '0'"),
    ("certWaitTimeoutSeconds-negative", {"certWaitTimeoutSeconds": -5}, "certWaitTimeoutSeconds",
     f"{P}:certWaitTimeoutSeconds: must be a positive whole number; got '-5'"),
    ("certWaitTimeoutSeconds-words", {"certWaitTimeoutSeconds": "half an hour"}, "certWaitTimeoutSeconds",
     f"{P}:certWaitTimeoutSeconds: must be a positive whole number; got 'half an hour'"),
    ("certWaitTimeoutSeconds-fraction", {"certWaitTimeoutSeconds": "1.5"}, "certWaitTimeoutSeconds",
     f"{P}:certWaitTimeoutSeconds: must be a positive whole number; got '1.5'"),
    ("clientCertValidityHours-zero", {"clientCertValidityHours": "0"}, "clientCertValidityHours",
     f"{P}:clientCertValidityHours: must be a positive whole number; got '0'"),
    ("clientCertEarlyRenewalHours-too-long",
     {"clientCertValidityHours": 100, "clientCertEarlyRenewalHours": 100}, "clientCertEarlyRenewalHours",
     f"{P}:clientCertEarlyRenewalHours: must be smaller than clientCertValidityHours"),
    ("gatewaySelector-list", {"gatewaySelector": ["istio"]}, "gatewaySelector",
     f'{P}:gatewaySelector: must be a non-empty map of label to string, e.g. {{"istio": "ingressgateway"}}'),
    ("gatewaySelector-empty", {"gatewaySelector": {}}, "gatewaySelector",
     f'{P}:gatewaySelector: must be a non-empty map of label to string, e.g. {{"istio": "ingressgateway"}}'),
    ("gatewaySelector-plain-string", {"gatewaySelector": "istio=ingressgateway"}, "gatewaySelector",
     f'{P}:gatewaySelector: must be a non-empty map of label to string, e.g. {{"istio": "ingressgateway"}}'),
    ("gatewaySelector-number-value", {"gatewaySelector": {"istio": 1}}, "gatewaySelector",
     f"{P}:gatewaySelector: must map strings to strings; 'istio': 1 is not"),
    ("gatewaySelector-nested", {"gatewaySelector": {"istio": {"app": "gw"}}}, "gatewaySelector",
     f"{P}:gatewaySelector: must map strings to strings; 'istio': {{'app': 'gw'}} is not"),
    ("gatewaySelector-bad-label", {"gatewaySelector": {"istio": "ingress gateway"}}, "gatewaySelector",
     f"{P}:gatewaySelector: 'istio': 'ingress gateway' is not a valid Kubernetes label"),
    ("gatewaySelector-bad-json", {"gatewaySelector": '{"istio": }'}, "gatewaySelector",
     f"{P}:gatewaySelector: is not valid JSON (Expecting value at position 10)"),
    ("gatewayNamespace-upper-case", {"gatewayNamespace": "Istio-System"}, "gatewayNamespace",
     f"{P}:gatewayNamespace: is not a valid Kubernetes name (lower-case letters, digits, '-'; "
     "at most 63): 'Istio-System'"),
    ("albSecret-bad-name", {"albSecret": "my_secret"}, "albSecret",
     f"{P}:albSecret: is not a valid Kubernetes secret name: 'my_secret'"),
    ("deployHttpbin-yes", {"deployHttpbin": "yes"}, "deployHttpbin",
     f"{P}:deployHttpbin: must be true or false; got 'yes'"),
    # --- round two: what the API server, ingress-nginx or the ibmcloud CLI would refuse later ---
    ("cluster-whitespace", {"cluster": "   "}, "cluster",
     f"{P}:cluster: is only whitespace: give it a value, or remove the key to use its default"),
    ("kubeContext-whitespace", {"kubeContext": " \t "}, "kubeContext",
     f"{P}:kubeContext: is only whitespace: give it a value, or remove the key to use its default"),
    ("cluster-flag", {"cluster": "--help"}, "cluster",
     f"{P}:cluster: must not start with '-' (a command line would read it as a flag): '--help'"),
    ("cluster-spaces", {"cluster": "my cluster"}, "cluster",
     f"{P}:cluster: is not an IKS cluster name or ID (letters, digits, '.', '_', '-'; at most 100): 'my cluster'"),
    ("cluster-line-break", {"cluster": "mycluster\n--output json"}, "cluster",
     f"{P}:cluster: holds a control character (a line break or tab pasted with it?)"),
    ("albSecret-flag", {"albSecret": "-x"}, "albSecret",
     f"{P}:albSecret: must not start with '-' (a command line would read it as a flag): '-x'"),
    ("albDomain-too-long-for-the-alb-host", {"albDomain": ".".join(["a" * 60] * 4) + ".example"}, "albDomain",
     f"{P}:albDomain: is 251 characters long, so httpbin.<albDomain> would be 259: a DNS name has at most 253"),
    ("gatewaySecret-too-long-for-cacert",
     {"gatewayDomain": "gw.example.com", "gatewaySecret": "s" * 250}, "gatewaySecret",
     f"{P}:gatewaySecret: is 250 characters long, so <gatewaySecret>-cacert would be 257: a secret name has at most 253"),
    ("gatewaySelector-label-name-too-long", {"gatewaySelector": {"example.com/" + "n" * 64: "x"}}, "gatewaySelector",
     f"{P}:gatewaySelector: {'example.com/' + 'n' * 64!r}: 'x' is not a valid Kubernetes label"),
    ("gatewaySelector-label-prefix-too-long",
     {"gatewaySelector": {".".join(["p" * 60] * 5) + "/app": "x"}}, "gatewaySelector",
     f"{P}:gatewaySelector: {'.'.join(['p' * 60] * 5) + '/app'!r}: 'x' is not a valid Kubernetes label"),
    ("routes-dot-segment", {"routes": ["/a/../status"]}, "routes",
     f"{P}:routes: entry '/a/../status' contains '/../', which the Kubernetes API server refuses in an Ingress path"),
    ("routes-dot-suffix", {"routes": ["/status/."]}, "routes",
     f"{P}:routes: entry '/status/.' contains '/.', which the Kubernetes API server refuses in an Ingress path"),
    ("routes-encoded-slash", {"routes": ["/a%2Fb"]}, "routes",
     f"{P}:routes: entry '/a%2Fb' contains '%2F', which the Kubernetes API server refuses in an Ingress path"),
    ("routes-nginx-strict-path", {"routes": ["/v1.0"]}, "routes",
     f"{P}:routes: entry '/v1.0': ingress-nginx (strict-validate-path-type, on by default) accepts only letters, "
     "digits, '/', '_' and '-' in a Prefix path, so the nginx ALB would refuse the Ingress; use a path without other "
     "characters, or albFlavor=traefik"),
    ("routes-nginx-well-known", {"routes": ["/.well-known"]}, "routes",
     f"{P}:routes: entry '/.well-known': ingress-nginx (strict-validate-path-type, on by default) accepts only letters, "
     "digits, '/', '_' and '-' in a Prefix path, so the nginx ALB would refuse the Ingress; use a path without "
     "other characters, or albFlavor=traefik"),
    ("appNamespace-kube-system", {"appNamespace": "kube-system"}, "appNamespace",
     f"{P}:appNamespace: 'kube-system' is a system namespace; the program creates appNamespace and deletes it on destroy"),
    ("appNamespace-default", {"appNamespace": "default"}, "appNamespace",
     f"{P}:appNamespace: 'default' is a system namespace; the program creates appNamespace and deletes it on destroy"),
    ("appNamespace-ibm", {"appNamespace": "ibm-system"}, "appNamespace",
     f"{P}:appNamespace: 'ibm-system' is a system namespace; the program creates appNamespace and deletes it on destroy"),
    ("appNamespace-is-the-gateways", {"appNamespace": "gw", "gatewayNamespace": "gw"}, "appNamespace",
     f"{P}:appNamespace: is the gateway's namespace (gw); the program creates appNamespace and deletes it on destroy"),
    ("trustedCaPem-garbage", {"trustedCaPem": GARBAGE}, "trustedCaPem",
     f"{P}:trustedCaPem: holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)"),
    ("trustedCaPem-a-key", {"trustedCaPem": pki.key_pem(pki.new_key())}, "trustedCaPem",
     f"{P}:trustedCaPem: holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)"),
    ("trustedCaPem-damaged", {"trustedCaPem": DAMAGED_CERT}, "trustedCaPem",
     "trustedCaPem: PEM certificate #1 does not parse as an X.509 certificate "
     "(damaged or truncated base64?)."),
    ("trustedCaPem-intermediates-only-on-nginx",
     {"trustedCaPem": pki.self_signed_ca("Test Root").intermediate("Test Intermediate").cert_pem}, "trustedCaPem",
     "trustedCaPem holds no self-signed root certificate, only intermediates: ingress-nginx verifies the gateway's "
     "chain only up to a root in the bundle, so it would refuse every gateway certificate; add the root that issued them."),
    ("trustedCaPem-not-a-ca",
     {"trustedCaPem": pki.self_signed_ca("Test Root").issue_leaf(["leaf.example.com"]).cert_pem},
     "trustedCaPem", ""),  # message checked by test_certs.py; here: refused before resources
    # --- apps: your own services (issue 17) ---
    ("apps-same-host-and-path-twice", {"apps": [app("shop", paths=["/cart"]), app("cart", host="shop", paths=["/cart/"])]},
     "apps", f"{P}:apps: entry 2 ('cart') claims host shop.{ALB_DOMAIN} path /cart, which entry 1 ('shop') claims already"),
    ("apps-label-and-domain-are-one-host",
     {"apps": [app("shop", host="SHOP.example.com", tlsSecret="shop-tls"), app("shop2", host="shop.example.com.",
                                                                             tlsSecret="shop-tls")]},
     "apps", f"{P}:apps: entry 2 ('shop2') claims host shop.example.com path /, which entry 1 ('shop') claims already"),
    ("apps-one-host-two-certificates",
     {"apps": [app("shop", host="shop.example.com", tlsSecret="shop-a", paths=["/a"]),
               app("cart", host="shop.example.com", tlsSecret="shop-b", paths=["/b"])]},
     "apps", f"{P}:apps: entry 2 ('cart') serves host shop.example.com with tlsSecret shop-b, entry 1 ('shop') with "
     "tlsSecret shop-a: a host has one certificate, so give its entries the same host and tlsSecret"),
    ("apps-label-host-also-with-a-tlsSecret",
     {"apps": [app("shop", paths=["/a"]), app("cart", host=f"shop.{ALB_DOMAIN}", tlsSecret="shop-tls", paths=["/b"])]},
     "apps", f"{P}:apps: entry 2 ('cart') serves host shop.{ALB_DOMAIN} with tlsSecret shop-tls, entry 1 ('shop') with "
     "the ALB's certificate: a host has one certificate, so give its entries the same host and tlsSecret"),
    ("apps-nested-paths-of-one-host", {"apps": [app("web"), app("api", host="web", paths=["/api"])]},
     "apps", f"{P}:apps: entry 2 ('api') path /api and entry 1 ('web') path / overlap on host web.{ALB_DOMAIN}: Istio "
     "merges one host's VirtualServices in creation order, so the shorter path could take the longer one's requests; "
     "route both paths in one entry, or use paths that do not nest"),
    ("apps-port-out-of-range", {"apps": [app("shop", port=70000)]},
     "apps", f"{P}:apps: entry 1 ('shop') port must be a port number from 1 to 65535; got 70000"),
    ("apps-port-zero", {"apps": [app("shop", port=0)]},
     "apps", f"{P}:apps: entry 1 ('shop') port must be a port number from 1 to 65535; got 0"),
    ("apps-port-not-a-number", {"apps": [app("shop", port="http")]},
     "apps", f"{P}:apps: entry 1 ('shop') port must be a port number from 1 to 65535; got 'http'"),
    ("apps-custom-domain-without-tlsSecret", {"apps": [app("shop", host="shop.example.com")]},
     "apps", f"{P}:apps: entry 1 ('shop') host shop.example.com is a custom domain: it needs 'tlsSecret', the name of a "
     "TLS secret for it that you keep in gatewayNamespace (a single label is served as <label>.<albDomain> with the "
     "ALB's certificate)"),
    ("apps-tlsSecret-on-a-label", {"apps": [app("shop", tlsSecret="shop-tls")]},
     "apps", f"{P}:apps: entry 1 ('shop') host 'shop' is a label under albDomain, served with the ALB's certificate: "
     "'tlsSecret' is only for a custom domain"),
    ("apps-unknown-field", {"apps": [app("shop", serviceport=80)]},
     "apps", f"{P}:apps: entry 1 ('shop') has an unknown field 'serviceport'; did you mean service?"),
    ("apps-missing-field", {"apps": [{"name": "shop", "host": "shop", "service": "web", "namespace": "shop"}]},
     "apps", f"{P}:apps: entry 1 ('shop') needs 'port' (every entry has name, host, service, namespace, port)"),
    ("apps-createNamespace-system", {"apps": [app("shop", namespace="kube-system", createNamespace=True)]},
     "apps", f"{P}:apps: entry 1 ('shop') createNamespace: 'kube-system' is a system namespace, which the program must "
     "not create or delete"),
    ("apps-createNamespace-gateway", {"apps": [app("shop", namespace="istio-system", createNamespace=True)]},
     "apps", f"{P}:apps: entry 1 ('shop') createNamespace: the gateway's namespace (istio-system) is never created or "
     "deleted by the program"),
    ("apps-createNamespace-disagrees",
     {"apps": [app("shop", createNamespace=True), app("cart", host="cart", createNamespace=False)]},
     "apps", f"{P}:apps: entry 2 ('cart') and entry 1 disagree on createNamespace for namespace shop: say the same in "
     "both (true: the program creates and deletes it; false: it must exist)"),
    ("apps-nginx-strict-path", {"apps": [app("shop", paths=["/v1.0"])]},
     "apps", f"{P}:apps: entry 1 ('shop') path '/v1.0': ingress-nginx (strict-validate-path-type, on by default) "
     "accepts only letters, digits, '/', '_' and '-' in a Prefix path, so the nginx ALB would refuse the Ingress; use a "
     "path without other characters, or albFlavor=traefik"),
    ("apps-api-server-path", {"apps": [app("shop", paths=["/a/../b"])]},
     "apps", f"{P}:apps: entry 1 ('shop') path '/a/../b' contains '/../', which the Kubernetes API server refuses in an "
     "Ingress path"),
    ("apps-name-not-a-kubernetes-name", {"apps": [app("Shop_1")]},
     "apps", f"{P}:apps: entry 1 ('Shop_1') name is not a valid Kubernetes name (lower-case letters, digits, '-'; at "
     "most 63): 'Shop_1'"),
    ("apps-service-not-a-kubernetes-name", {"apps": [app("shop", service="web.svc")]},
     "apps", f"{P}:apps: entry 1 ('shop') service is not a valid Kubernetes name (lower-case letters, digits, '-'; at "
     "most 63): 'web.svc'"),
    ("apps-host-not-dns", {"apps": [app("shop", host="shop_1")]},
     "apps", f"{P}:apps: entry 1 ('shop') host is not a valid Kubernetes name (lower-case letters, digits, '-'; at most "
     "63): 'shop_1'"),
    ("apps-same-name-twice", {"apps": [app("shop"), app("shop", host="cart")]},
     "apps", f"{P}:apps: entry 2 ('shop') has the same name as entry 1: names must be unique"),
    ("apps-not-a-list", {"apps": {"name": "shop"}},
     "apps", f'{P}:apps: must be a non-empty list of services, e.g. [{{"name": "shop", "host": "shop", "paths": ["/"], '
     '"service": "web", "namespace": "shop", "port": 8080}] (remove the key for the httpbin sample)'),
    ("apps-entry-not-an-object", {"apps": ["shop"]},
     "apps", f'{P}:apps: entry 1 must be an object such as {{"name": "shop", "host": "shop", "paths": ["/"], '
     '"service": "web", "namespace": "shop", "port": 8080}; got \'shop\''),
    ("apps-bad-json", {"apps": '[{"name": "shop",]'},
     "apps", f"{P}:apps: is not valid JSON (Expecting property name enclosed in double quotes at position 17)"),
    ("apps-with-routes", {"apps": [app("shop")], "routes": ["/status"]},
     "routes", f"{P}:routes: is for the httpbin sample; with apps set each entry has its own paths (remove routes)"),
    # --- the gateway's certificate without IBM's DNS, and any cluster (issue 18) ---
    ("platform-unknown", {"platform": "openshift"}, "platform",
     f"{P}:platform: must be one of iks, generic; got 'openshift'"),
    ("gatewayCertSource-unknown", {"gatewayCertSource": "letsencrypt"}, "gatewayCertSource",
     f"{P}:gatewayCertSource: must be one of nlb-dns, private-ca; got 'letsencrypt'"),
    ("private-ca-with-gatewayDomain",
     {"gatewayCertSource": "private-ca", "gatewayDomain": "gw.example.com", "gatewaySecret": "gw-cert"}, "gatewayDomain",
     f"{P}:gatewayDomain: names the nlb-dns way; with gatewayCertSource=private-ca the program issues the gateway's "
     "certificate"),
    ("private-ca-with-gatewaySecret", {"gatewayCertSource": "private-ca", "gatewaySecret": "gw-cert"}, "gatewaySecret",
     f"{P}:gatewaySecret: names the nlb-dns way; with gatewayCertSource=private-ca the program issues the gateway's "
     "certificate"),
    ("private-ca-without-the-programs-ca", {"gatewayCertSource": "private-ca", "clientCertSource": "alb"},
     "gatewayCertSource", f"{P}:gatewayCertSource: private-ca needs the program's CA, which exists with "
     "clientCertSource=private-ca only"),
    ("private-ca-with-trustedCaPem", {"gatewayCertSource": "private-ca", "trustedCaPem": pki.self_signed_ca("R").cert_pem},
     "trustedCaPem", f"{P}:trustedCaPem: is not used with gatewayCertSource=private-ca: the ALB trusts the program's CA "
     "for the gateway"),
    ("gatewayCertValidityHours-zero", {"gatewayCertValidityHours": 0}, "gatewayCertValidityHours",
     f"{P}:gatewayCertValidityHours: must be a positive whole number; got '0'"),
    ("gatewayCertEarlyRenewalHours-too-long", {"gatewayCertValidityHours": 100, "gatewayCertEarlyRenewalHours": 100},
     "gatewayCertEarlyRenewalHours", f"{P}:gatewayCertEarlyRenewalHours: must be smaller than gatewayCertValidityHours"),
    ("generic-without-albDomain", {**GENERIC_BASE, "albDomain": ""}, "albDomain",
     f"{P}:albDomain: is required on platform generic: there is no IBM Cloud to discover it from"),
    ("generic-without-albSecret", {**GENERIC_BASE, "albSecret": ""}, "albSecret",
     f"{P}:albSecret: is required on platform generic: there is no IBM Cloud to discover it from"),
    ("generic-without-ingressClassName", {**GENERIC_BASE, "ingressClassName": ""}, "ingressClassName",
     f"{P}:ingressClassName: is required on platform generic: name your ingress controller's IngressClass"),
    ("generic-ibm-legacy", {**GENERIC_BASE, "albFlavor": "ibm-legacy"}, "albFlavor",
     f"{P}:albFlavor: ibm-legacy is IBM's retired IKS ALB: use nginx or traefik on platform generic"),
    ("generic-nlb-dns", {**GENERIC_BASE, "gatewayCertSource": "nlb-dns"}, "gatewayCertSource",
     f"{P}:gatewayCertSource: nlb-dns registers an IKS subdomain with ibmcloud: use private-ca on platform generic"),
    ("generic-mirror", {**GENERIC_BASE, "albTlsMode": "mirror"}, "albTlsMode",
     f"{P}:albTlsMode: mirror copies the ALB certificate with IBM's certificate manager: on platform generic keep the "
     "TLS secret (albSecret) in gatewayNamespace, or use default-certificate"),
]


@pytest.mark.parametrize(
    ("config", "key", "expected"),
    [pytest.param(config, key, expected, id=case) for case, config, key, expected in BAD_CONFIG],
)
def test_bad_config_fails_before_any_resource(config: dict[str, Any], key: str, expected: str) -> None:
    r = mock_program.render({"cluster": CLUSTER, **config}, standin())
    assert r.error is not None, "the run should have failed"
    message = str(r.error)
    if expected:
        assert message == expected
    assert key in message
    assert "Traceback" not in message and "\n" not in message
    assert r.resources == [], [x.urn for x in r.resources]
    assert "PRIVATE KEY" not in message


def test_every_key_that_validates_has_a_bad_config_case() -> None:
    """Keys whose values are checked: each is tried at least once in the record."""
    tried = {key for _, _, key, _ in BAD_CONFIG}
    free_text = {"kubeContext", "albSecretNamespace", "ingressClassName", "gatewayService", "appNamespace"}
    from components.settings import KEYS

    missing = set(KEYS) - free_text - tried
    assert not missing, f"no bad-config case for {sorted(missing)}"


# --- clientCertSource=alb: the ALB's secret as the cluster hands it over ------------------------
SECRET_REF = f"default/{ALB_SECRET}"
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
NOW = pki.utcnow()
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Material:
    """What ``kubectl get secret <albSecret> -n default`` would return, and what is trusted."""

    data: dict[str, str]
    trusted: str


def _client_pki() -> tuple[pki.CA, pki.CA]:
    root = pki.self_signed_ca("Test Client Root", organization="Example Corp (test)")
    inter = root.intermediate("Test Client Issuing CA", organization="Example Corp (test)",
                              ekus=[SERVER_AUTH, CLIENT_AUTH])
    return root, inter


ROOT_CA, INTER = _client_pki()
GOOD = INTER.issue_leaf(pki.ALB_SANS, client_auth=True)
LE = pki.letsencrypt_like()
LE_ALB = pki.alb_leaf(LE)
LE_ALB_OLD = pki.alb_leaf(LE, client_auth=True)


def tls_secret(issued: pki.Issued, trusted: str | None = None, **replace: str) -> Material:
    data = {"tls.crt": issued.chain_pem, "tls.key": issued.key_pem, **replace}
    return Material({k: v for k, v in data.items() if v != "<absent>"}, trusted or ROOT_CA.cert_pem)


def _expiring_soon() -> pki.Issued:
    return INTER.issue_leaf(pki.ALB_SANS, client_auth=True, not_before=NOW - 80 * DAY, not_after=NOW + 5 * DAY)


HOST = specs.alb_host(ALB_DOMAIN)
CRT = f"secret {SECRET_REF} key tls.crt"
KEY = f"secret {SECRET_REF} key tls.key"
ALB_DN = f"(DNS:*.{ALB_DOMAIN})"
LE_2026 = (
    "Let's Encrypt, which signs IKS ALB certificates, stopped issuing client-authentication "
    "certificates in 2026 (the default profile dropped clientAuth on 11 Feb 2026; the tlsclient "
    "profile ended 8 Jul 2026), so set clientCertSource=private-ca to have the program issue the "
    "ALB a client certificate from its own CA."
)
EXPIRED = INTER.issue_leaf(pki.ALB_SANS, client_auth=True, not_before=NOW - 90 * DAY, not_after=NOW - DAY)
FUTURE = INTER.issue_leaf(pki.ALB_SANS, client_auth=True, not_before=NOW + DAY)
OTHER_HOST = INTER.issue_leaf(["other.example.com"], client_auth=True)


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# (case id, the secret and trust bundle as read from the cluster, the exact message)
BAD_ALB_MATERIAL: list[tuple[str, Callable[[], Material], str]] = [
    ("letsencrypt-2026-server-auth-only", lambda: tls_secret(LE_ALB, LE.anchors_pem),
     f"{CRT} {ALB_DN} has no clientAuth extended key usage (only serverAuth), so it cannot act as "
     f"the ALB's client certificate: {LE_2026}"),
    ("letsencrypt-old-leaf-under-server-only-intermediate", lambda: tls_secret(LE_ALB_OLD, LE.anchors_pem),
     f"{CRT}: intermediate certificate #2 (CN=Test YR1) limits the extended key usage to serverAuth "
     "without clientAuth, so the chain cannot act as the ALB's client certificate (OpenSSL and Envoy "
     f"refuse it as 'unsuitable certificate purpose'): {LE_2026}"),
    ("key-does-not-match", lambda: tls_secret(GOOD, **{"tls.key": pki.key_pem(pki.new_key())}),
     f"{KEY} does not belong to the certificate in key tls.crt {ALB_DN}: their public keys differ."),
    ("expired", lambda: tls_secret(EXPIRED),
     f"{CRT} {ALB_DN} expired on {_iso(EXPIRED.cert.not_valid_after_utc)}."),
    ("not-yet-valid", lambda: tls_secret(FUTURE),
     f"{CRT} {ALB_DN} is not valid before {_iso(FUTURE.cert.not_valid_before_utc)}."),
    ("other-host", lambda: tls_secret(OTHER_HOST),
     f"{CRT} (CN=other.example.com) does not cover host {HOST}: its DNS names are other.example.com."),
    ("other-ca", lambda: tls_secret(GOOD, pki.self_signed_ca("Test Other Root").cert_pem),
     f"{CRT} does not verify as a TLS client certificate against trustedCaPem: no chain leads from it "
     "(issuer CN=Test Client Issuing CA,O=Example Corp (test),C=US) to a certificate in trustedCaPem: "
     "another CA issued it, or an intermediate certificate is missing after the leaf."),
    ("crt-garbage", lambda: tls_secret(GOOD, **{"tls.crt": GARBAGE}),
     f"{CRT} contains no PEM certificate (no BEGIN CERTIFICATE line found)."),
    ("crt-is-a-key", lambda: tls_secret(GOOD, **{"tls.crt": GOOD.key_pem}),
     f"{CRT} holds a private key where only certificates belong."),
    ("crt-empty", lambda: tls_secret(GOOD, **{"tls.crt": ""}),
     f"secret {SECRET_REF} has no key tls.crt: it is not the ALB's TLS secret (albSecret)"),
    ("key-absent", lambda: tls_secret(GOOD, **{"tls.key": "<absent>"}),
     f"secret {SECRET_REF} has no key tls.key: it is not the ALB's TLS secret (albSecret)"),
    ("key-encrypted", lambda: tls_secret(GOOD, **{"tls.key": pki.key_pem(GOOD.key, b"pass")}),
     f"{KEY}: encrypted private keys are not supported: store it unencrypted in the Kubernetes secret."),
    ("key-garbage", lambda: tls_secret(GOOD, **{"tls.key": GARBAGE}),
     f"{KEY} contains no PEM private key (no BEGIN PRIVATE KEY line found)."),
]


def _render_alb(material: Material, *, secret_present: bool = True) -> mock_program.Rendering:
    secrets = {SECRET_REF: material.data} if secret_present else {}
    return mock_program.render(
        {"cluster": CLUSTER, "clientCertSource": "alb", "trustedCaPem": material.trusted},
        standin(secrets=secrets),
    )


def carrying(r: mock_program.Rendering) -> list[str]:
    """Registered (not read) resources that would carry the ALB material or pin it."""
    out = []
    for res in r.resources:
        if res.read:
            continue
        name = str(res.inputs.get("metadata", {}).get("name", res.name))
        if res.type == "kubernetes:core/v1:Secret" and (name == specs.ALB_CERTS_SECRET or name.endswith("-cacert")):
            out.append(res.urn)
        if res.type.endswith(":Gateway") or res.type.endswith(":Ingress"):
            out.append(res.urn)
    return out


def _all_pem_lines(material: Material) -> set[str]:
    lines = set()
    for value in material.data.values():
        for line in value.splitlines():
            if line and not line.startswith("-----") and len(line) > 16:
                lines.add(line)
    return lines


@pytest.mark.parametrize(
    ("make", "expected"),
    [pytest.param(make, expected, id=case) for case, make, expected in BAD_ALB_MATERIAL],
)
def test_bad_alb_material_fails_before_anything_carries_it(make: Callable[[], Material], expected: str) -> None:
    material = make()
    r = _render_alb(material)
    assert r.error is not None, "the run should have failed"
    message = str(r.error)
    assert message == expected
    assert SECRET_REF in message
    assert carrying(r) == []
    assert not any(line in message for line in _all_pem_lines(material))
    for _level, log in r.logs:
        assert not any(line in log for line in _all_pem_lines(material))


def test_good_alb_material_is_carried() -> None:
    """The control for the record above: the same run with a client-auth chain goes through."""
    r = _render_alb(tls_secret(GOOD))
    assert r.error is None, r.error
    assert len(carrying(r)) == 4  # alb-certs, -cacert, Gateway, Ingress
    secrets = [x for x in r.resources if x.type == "kubernetes:core/v1:Secret" and not x.read
               and x.inputs["metadata"]["name"] == specs.ALB_CERTS_SECRET]
    assert len(secrets) == 1
    assert secrets[0].inputs["stringData"]["tls.crt"].startswith(GOOD.cert_pem.strip())
    assert secrets[0].is_secret("stringData")


def test_expiring_alb_certificate_is_a_warning_not_an_error() -> None:
    soon = _expiring_soon()
    material = tls_secret(soon)
    r = _render_alb(material)
    assert r.error is None, r.error
    warnings = [msg for level, msg in r.logs if level == "warning"]
    assert any("expires" in w and SECRET_REF in w for w in warnings), warnings
    assert len(carrying(r)) == 4


def test_missing_alb_secret_is_one_clear_error() -> None:
    r = _render_alb(tls_secret(GOOD), secret_present=False)
    assert r.error is not None
    assert ALB_SECRET in str(r.error)
    assert carrying(r) == []


def _print_records() -> None:  # pragma: no cover - documentation helper
    for case, config, _key, _expected in BAD_CONFIG:
        r = mock_program.render({"cluster": CLUSTER, **config}, standin())
        print(f"| {case} | {r.error} |")
    for case, make, _ in BAD_ALB_MATERIAL:
        print(f"| {case} | {_render_alb(make()).error} |")


def test_every_message_here_is_in_the_troubleshooting_page() -> None:
    records = [(case, message) for case, _config, _key, message in BAD_CONFIG]
    records += [(entry[0], entry[-1]) for entry in BAD_ALB_MATERIAL]
    assert len(records) > 60, "the records were not found"
    missing = documented.undocumented(records)
    assert missing == [], "docs/troubleshooting.md lacks:\n" + "\n".join(missing)


def test_an_intermediate_anchor_is_fine_where_traefik_verifies() -> None:
    """Traefik (and Envoy) verify partial chains: the root requirement is nginx's alone."""
    inter = pki.self_signed_ca("Test Root").intermediate("Test Intermediate").cert_pem
    r = mock_program.render({"cluster": CLUSTER, "albFlavor": "traefik", "trustedCaPem": inter}, standin())
    assert r.error is None, r.error


if __name__ == "__main__":  # pragma: no cover
    _print_records()
