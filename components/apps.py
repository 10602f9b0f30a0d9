"""Your own services behind the hop (config ``apps``): their namespaces and custom domains' TLS.

A namespace is created (``createNamespace: true``, with sidecar injection, deleted on destroy)
or only read, which fails the run when it does not exist: the choice is the entry's, never
inferred from what the cluster holds.  A custom domain's ``tlsSecret`` is read from
``gatewayNamespace`` (where the Ingress is) and checked before the Ingress names it; it is
never copied.  The routes themselves are the Gateway's, the VirtualServices' and the Ingress's
(:mod:`components.mesh_gateway`, :mod:`components.alb_ingress`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypedDict, cast

import pulumi
import pulumi_kubernetes as k8s

from . import certs, specs
from .client_pki import decode_secret_data
from .settings import App


class HostTlsPreflight(Protocol):
    """Checks a custom domain's TLS secret before the Ingress names it; returns warnings
    (:func:`certs.preflight_host_tls_material`)."""

    def __call__(self, tls_crt: str, tls_key: str, *, host: str, secret_ref: str) -> list[str]: ...


class ServiceAppsArgs(TypedDict):
    """What :class:`ServiceApps` needs."""

    apps: Sequence[App]
    """The entries of ``apps``, validated."""
    alb_domain: str
    """The ALB's Ingress subdomain: a label host is served under it."""
    gateway_namespace: str
    """Where the Ingress lives, and so where a custom domain's ``tlsSecret`` must be."""
    existing: Mapping[str, pulumi.Resource]
    """Namespaces this program already owns elsewhere (``appNamespace`` with httpbin), by name."""
    preflight: HostTlsPreflight
    """The check of a custom domain's TLS secret."""


class ServiceApps(pulumi.ComponentResource):
    """The namespaces of ``apps`` (created or read) and the checked TLS secrets of custom domains."""

    namespaces: dict[str, pulumi.Resource]
    """Each app namespace's resource (created, read, or the httpbin sample's), by name."""
    tls_secrets: dict[str, pulumi.Output[str]]
    """Custom domain -> its ``tlsSecret``'s name, known only once the secret passed the check."""

    def __init__(self, name: str, args: ServiceAppsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        """``opts`` carries the Kubernetes provider (``providers``), which the children inherit."""
        super().__init__("iks-alb-istio-mtls:index:ServiceApps", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.namespaces = dict(args["existing"])
        for app in args["apps"]:
            if app.namespace in self.namespaces:
                continue
            if app.create_namespace:
                self.namespaces[app.namespace] = k8s.core.v1.Namespace(
                    f"{name}-namespace-{app.namespace}",
                    metadata={
                        "name": app.namespace,
                        "labels": {"istio-injection": "enabled", **specs.labels(app.namespace)},
                    },
                    opts=child,
                )
            else:
                # Read, never owned: a missing namespace fails here, before anything routes to it.
                self.namespaces[app.namespace] = k8s.core.v1.Namespace.get(
                    f"{name}-namespace-{app.namespace}", app.namespace, opts=child
                )
        self.tls_secrets = {}
        reads: dict[str, k8s.core.v1.Secret] = {}
        for app in args["apps"]:
            if not app.custom_domain or app.tls_secret is None:
                continue
            ref = f"{args['gateway_namespace']}/{app.tls_secret}"
            if app.tls_secret not in reads:
                reads[app.tls_secret] = k8s.core.v1.Secret.get(f"{name}-tls-{app.tls_secret}", ref, opts=child)
            self.tls_secrets[app.host] = self._checked(reads[app.tls_secret], app, ref, args["preflight"])
        self.register_outputs({"namespaces": sorted(self.namespaces)})

    def _checked(self, source: k8s.core.v1.Secret, app: App, ref: str, preflight: HostTlsPreflight) -> pulumi.Output[str]:
        """The secret's name once its certificate covers the app's host (the key stays in the read)."""
        secret_name = cast(str, app.tls_secret)

        def check(data: Mapping[str, str] | None) -> str:
            say = f"apps entry {app.name!r} tlsSecret"
            try:
                cert_pem = decode_secret_data(data, "tls.crt", ref, what="a TLS secret (kubectl create secret tls)")
                key_pem = decode_secret_data(data, "tls.key", ref, what="a TLS secret (kubectl create secret tls)")
                warnings = preflight(cert_pem, key_pem, host=app.host, secret_ref=ref)
            except (pulumi.RunError, certs.CertificateError) as exc:
                raise pulumi.RunError(f"{say}: {exc}") from None
            for warning in warnings:
                pulumi.log.warn(f"{say}: {warning}", resource=self)
            return secret_name

        return pulumi.Output.unsecret(pulumi.Output.secret(cast(Any, source.data)).apply(check))
