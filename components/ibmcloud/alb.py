"""The cluster's ALB: discovering its Ingress subdomain and TLS secret, and mirroring that secret.

Discovery is ``ibmcloud ks cluster get``, called in-process by the Pulumi program
(:func:`discover_alb`) or by ``discover``.  The mirror (``mirror-secret``/``unmirror-secret``)
has IKS keep a copy of the ALB's IBM-managed TLS secret in the gateway's namespace.
"""

from __future__ import annotations

import json
import time

from . import calls
from .errors import CliCommandError, ClusterNotFound, IbmCloudError, TransientCliError
from .parsing import AlbInfo, is_gone, listed_ingress_secrets, parse_cluster_ingress, text_of
from .runner import Cli, find_executable


def discover_alb(cluster: str, *, timeout: float = 60.0) -> AlbInfo:
    """The cluster's ALB Ingress subdomain and TLS secret name, from ``ibmcloud ks cluster get``.

    For the Pulumi program (imported directly).  ``timeout`` bounds the whole lookup, retries
    included.  Raises :class:`IbmCloudError` with a message that says what to do.
    """
    clock = time.monotonic
    cli = Cli(
        find_executable(),
        call_timeout=timeout,
        backoff_initial=min(2.0, timeout / 8),
        backoff_max=max(min(10.0, timeout / 4), min(2.0, timeout / 8)),
        deadline=clock() + timeout,
    )
    return discover(cli, cluster)


def discover(cli: Cli, cluster: str) -> AlbInfo:
    """:func:`discover_alb` with a given runner (the ``discover`` action sets its own retries)."""
    args = calls.cluster_get(cluster)
    return parse_cluster_ingress(_json(cli, args, cli.run(args)), cluster)


def _json(cli: Cli, args: list[str], output: str) -> object:
    """A call's stdout decoded; anything else (garbage, absurd nesting) is one error naming the call."""
    try:
        return json.loads(output)
    except json.JSONDecodeError as exc:
        raise IbmCloudError(f"`{cli.display(args)}` did not print JSON ({exc})") from None
    except RecursionError:
        raise IbmCloudError(f"`{cli.display(args)}` did not print JSON (nested too deeply)") from None


def ingress_secret(cli: Cli, cluster: str, name: str, namespace: str) -> dict[str, object] | None:
    """``ibmcloud ks ingress secret get`` as JSON, or ``None`` when there is no such secret."""
    args = calls.ingress_secret_get(cluster, name, namespace)
    try:
        output = cli.run(args)
    except CliCommandError as exc:
        if is_gone(exc.cli_message):
            return None
        raise
    data = _json(cli, args, output)
    if not isinstance(data, dict):
        raise IbmCloudError(f"`{cli.display(args)}` printed unexpected JSON: not an object")
    return data


def mirror_secret(cli: Cli, cluster: str, name: str, source_namespace: str, namespace: str) -> dict[str, str]:
    """Make IKS keep a copy of the ALB's TLS secret in ``namespace`` (same certificate CRN).

    A copy made with ``ingress secret create --cert-crn`` is IKS-managed, so IKS renews it with
    the original (unlike a kubectl copy).  Idempotent: an up-to-date copy is left alone.
    """
    source = ingress_secret(cli, cluster, name, source_namespace)
    if source is None:
        raise IbmCloudError(
            f"no Ingress secret {name!r} in namespace {source_namespace!r} of cluster {cluster!r}; check "
            f"`ibmcloud ks ingress secret ls --cluster {cluster}` and albSecret/albSecretNamespace"
        )
    crn = text_of(source.get("crn"))
    if not crn:
        raise IbmCloudError(
            f"the Ingress secret {source_namespace}/{name} has no certificate CRN, so IKS cannot copy it; "
            "set albTlsMode=default-certificate (or copy the secret yourself and set albSecretNamespace)"
        )
    target = ingress_secret(cli, cluster, name, namespace)
    if target is None:
        cli.run(calls.ingress_secret_create(cluster, name, namespace, crn))
        cli.log(f"copied the Ingress secret {source_namespace}/{name} to {namespace}/{name}")
    elif text_of(target.get("crn")) != crn:
        cli.run(calls.ingress_secret_update(cluster, name, namespace, crn))
        cli.log(f"pointed {namespace}/{name} at the certificate of {source_namespace}/{name}")
    else:
        cli.log(f"{namespace}/{name} is already a copy of {source_namespace}/{name}")
    return {"secretName": name, "namespace": namespace, "crn": crn}


def unmirror_secret(cli: Cli, cluster: str, name: str, namespace: str) -> None:
    """Remove the copy.  If the removal fails, a fresh ``ingress secret ls`` decides: a copy that is
    not listed is gone, which is success whatever words the CLI chose.
    """
    args = calls.ingress_secret_rm(cluster, name, namespace)
    try:
        cli.run(args)
        cli.log(f"removed the Ingress secret copy {namespace}/{name}")
        return
    except (CliCommandError, TransientCliError, ClusterNotFound) as exc:
        failure: IbmCloudError = exc
    said = getattr(failure, "cli_message", str(failure))
    look = calls.ingress_secret_ls(cluster)
    try:
        present = (namespace, name) in listed_ingress_secrets(_json(cli, look, cli.run(look)))
    except IbmCloudError as error:
        cli.log(f"could not take a fresh look after the failed removal ({error})")
        raise failure from None
    if not present:
        cli.log(f"already gone: {namespace}/{name} (`{cli.display(args)}` said: {said}; a fresh "
                "`ingress secret ls` agrees)")
        return
    if isinstance(failure, CliCommandError):
        raise CliCommandError(
            f"{failure}; a fresh `ingress secret ls` still lists {namespace}/{name}", failure.cli_message
        ) from None
    raise failure from None
