"""The new-shape stacks the schema and policy tiers render: ``apps`` (several entries, a shared
host, a custom domain, a namespace only read), ``gatewayCertSource=private-ca`` and
``platform=generic``; each as (config overrides as the CLI passes them, stand-in cluster
overrides), the shape of the ``CONFIGS`` tables of tests/test_schemas.py and tests/test_policy.py.
"""

from __future__ import annotations

from typing import Any, Final

from components import settings
from tests.support import pki
from tests.support.cluster import ALB_DOMAIN

Stack = tuple[dict[str, Any], dict[str, Any]]

CUSTOM_HOST: Final = "shop.example.com"
CUSTOM_SECRET: Final = "shop-example-tls"
CUSTOM_CERT: Final = pki.self_signed_ca("Test Shop Root", organization="Example Corp (test)").issue_leaf([CUSTOM_HOST])

#: web: its own label host, namespace created; orders and users: one shared label host, namespace
#: ``shop`` only read (createNamespace false); shop: a custom domain with its own TLS secret.
APPS: Final[list[dict[str, Any]]] = [
    {"name": "web", "host": "web", "paths": ["/"], "service": "frontend", "namespace": "web", "port": 8080,
     "createNamespace": True},
    {"name": "orders", "host": "api", "paths": ["/orders"], "service": "orders", "namespace": "shop", "port": 9000},
    {"name": "users", "host": "api", "paths": ["/users", "/login"], "service": "users", "namespace": "shop", "port": 9001},
    {"name": "shop", "host": CUSTOM_HOST, "tlsSecret": CUSTOM_SECRET, "paths": ["/"], "service": "storefront",
     "namespace": "shop", "port": 80},
]
WEB_HOST: Final = f"web.{ALB_DOMAIN}"
API_HOST: Final = f"api.{ALB_DOMAIN}"
#: The Ingress's hosts, in rule order, and the VirtualServices, one per entry.
APP_HOSTS: Final = [WEB_HOST, API_HOST, CUSTOM_HOST]
APP_VIRTUAL_SERVICES: Final = sorted(f"alb-mtls-{app['name']}" for app in APPS)

#: What the stand-in cluster holds for APPS: namespace ``shop`` and the custom domain's TLS secret.
APPS_CLUSTER: Final[dict[str, Any]] = {
    "namespaces": ("default", "istio-system", "kube-system", "shop"),
    "secrets": {f"istio-system/{CUSTOM_SECRET}": {"tls.crt": CUSTOM_CERT.chain_pem, "tls.key": CUSTOM_CERT.key_pem}},
}

GENERIC_DOMAIN: Final = "apps.example.com"
#: IngressClass of a generic cluster's controller per flavour (the usual upstream names).
GENERIC_CLASSES: Final = {"nginx": "nginx", "traefik": "traefik"}
#: The gateway's certificate names with gatewayCertSource=private-ca (the defaults of gatewayService/-Namespace).
PRIVATE_GATEWAY_NAME: Final = "istio-ingressgateway.istio-system.svc"


def generic(flavor: str) -> dict[str, Any]:
    """A platform=generic config: no IBM Cloud, the ALB's domain, secret and class given."""
    return {"platform": "generic", "albFlavor": flavor, "albDomain": GENERIC_DOMAIN, "albSecret": "apps-example-tls",
            "ingressClassName": GENERIC_CLASSES[flavor]}


def new_shape_stacks() -> dict[str, Stack]:
    """id -> (config, stand-in overrides): apps on every flavour, private-ca on every flavour,
    generic (private-ca by default there) with nginx and traefik."""
    return {
        **{f"apps-{flavor}": ({"albFlavor": flavor, "apps": APPS}, APPS_CLUSTER) for flavor in settings.ALB_FLAVORS},
        **{f"private-ca-{flavor}": ({"albFlavor": flavor, "gatewayCertSource": "private-ca"}, {})
           for flavor in settings.ALB_FLAVORS},
        **{f"generic-{flavor}": (generic(flavor), {}) for flavor in GENERIC_CLASSES},
    }
