"""Recipe steps 1-2: namespace ``httptools`` with sidecar injection, and Istio's httpbin sample."""

from __future__ import annotations

from typing import TypedDict

import pulumi
import pulumi_kubernetes as k8s

from . import specs


class SampleAppArgs(TypedDict):
    """What :class:`SampleApp` needs."""

    namespace: str
    """The namespace the VirtualService routes to (``appNamespace``), created with sidecar injection."""
    deploy_httpbin: bool
    """Whether to deploy Istio's httpbin sample into it (``deployHttpbin``)."""


class SampleApp(pulumi.ComponentResource):
    """The namespace the mesh routes to and, unless disabled, the httpbin sample in it.

    httpbin does not depend on the DNS registration: it can start while IBM issues the
    gateway's certificate.
    """

    namespace: k8s.core.v1.Namespace

    def __init__(self, name: str, args: SampleAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        """``opts`` carries the Kubernetes provider (``providers``), which the children inherit."""
        super().__init__("iks-alb-istio-mtls:index:SampleApp", name, None, opts)
        namespace = args["namespace"]
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": namespace, "labels": {"istio-injection": "enabled", **specs.labels("httpbin")}},
            opts=child,
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        if args["deploy_httpbin"]:
            body = specs.httpbin_manifests(namespace)
            k8s.core.v1.ServiceAccount(f"{name}-httpbin-sa", metadata=body["serviceAccount"]["metadata"], opts=in_ns)
            k8s.core.v1.Service(
                f"{name}-httpbin-svc", metadata=body["service"]["metadata"], spec=body["service"]["spec"], opts=in_ns
            )
            k8s.apps.v1.Deployment(
                f"{name}-httpbin", metadata=body["deployment"]["metadata"], spec=body["deployment"]["spec"], opts=in_ns
            )
        self.register_outputs({"namespace": namespace})
