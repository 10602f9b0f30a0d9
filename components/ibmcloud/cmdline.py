"""The command line: the shell lines pulumi-command stores, the parser that reads them, ``main``.

:func:`command_line` and :func:`mirror_command_line` build the lines; :func:`build_parser`
accepts exactly those lines (tested), including the ones already stored in Pulumi state, which
pulumi-command replays at delete time.  :func:`main` runs one action and turns every failure
into one ``error: <message>`` line and an exit code.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shlex
import signal
import sys
from collections.abc import Sequence

from .alb import discover, mirror_secret, unmirror_secret
from .calls import CLUSTER_TYPES
from .errors import PROG, IbmCloudError
from .nlb import DEFAULT_TIMEOUT, Nlb, NlbSettings, stored_result
from .parsing import HOSTNAME
from .runner import (
    DEFAULT_ATTEMPTS,
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_POLL_INITIAL,
    DEFAULT_POLL_MAX,
    Cli,
    find_executable,
)

#: Actions pulumi-command runs (``discover`` is for people and the program).
ACTIONS = ("create", "update", "delete")
#: Copy (and remove the copy of) the ALB's IBM-managed TLS secret into another namespace.
MIRROR_ACTIONS = ("mirror-secret", "unmirror-secret")


def command_line(
    action: str,
    *,
    cluster: str,
    cluster_type: str,
    addresses: Sequence[str],
    secret_namespace: str,
    timeout_seconds: int,
) -> str:
    """The shell command pulumi-command stores and runs (``sh -c``) for one action.

    Relative module path and plain ``python3``: the delete command is replayed later, maybe from
    another checkout and outside any virtualenv.  Every value is shell-quoted.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    if cluster_type not in CLUSTER_TYPES:
        raise ValueError(f"cluster_type must be one of {', '.join(CLUSTER_TYPES)}, not {cluster_type!r}")
    if isinstance(addresses, str) or not addresses:
        raise ValueError("addresses must be a non-empty sequence of IPs (classic) or one hostname (vpc)")
    if cluster_type == "vpc" and len(addresses) != 1:
        raise ValueError("a vpc registration takes exactly one load balancer hostname")
    if not cluster or not secret_namespace:
        raise ValueError("cluster and secret_namespace must not be empty")
    if timeout_seconds <= 0:
        raise ValueError("timeout_seconds must be positive")
    words = [*PROG.split(), action, "--cluster", cluster, "--type", cluster_type]
    for address in addresses:
        words += ["--address", address]
    words += ["--secret-namespace", secret_namespace, "--timeout", str(int(timeout_seconds))]
    return " ".join(shlex.quote(w) for w in words)


def mirror_command_line(action: str, *, cluster: str, name: str, source_namespace: str, namespace: str) -> str:
    """The shell command for the ALB-secret mirror Command (``mirror-secret``/``unmirror-secret``).

    Same rules as :func:`command_line`: relative module, plain ``python3``, every value quoted.
    """
    if action not in MIRROR_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(MIRROR_ACTIONS)}, not {action!r}")
    if not (cluster and name and source_namespace and namespace):
        raise ValueError("cluster, name, source_namespace and namespace must not be empty")
    if source_namespace == namespace:
        raise ValueError("source_namespace and namespace must differ: the secret is already there")
    words = [
        *PROG.split(), action, "--cluster", cluster, "--name", name,
        "--from-namespace", source_namespace, "--namespace", namespace,
    ]
    return " ".join(shlex.quote(w) for w in words)


def _positive(text: str) -> float:
    """argparse type: a number above zero (a zero interval would spin)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _count(text: str) -> int:
    """argparse type: an integer of at least 1 (at least one try)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _add_call_flags(parser: argparse.ArgumentParser, timeout: float) -> None:
    """The flags every action shares: the cluster, the time budget and the retry policy."""
    parser.add_argument("--cluster", required=True, help="cluster name or ID")
    parser.add_argument(
        "--timeout", type=_positive, default=timeout, help=f"seconds for the whole action (default {timeout:g})"
    )
    parser.add_argument(
        "--poll-initial",
        type=_positive,
        default=DEFAULT_POLL_INITIAL,
        help=f"first poll/retry interval in seconds; doubles each time (default {DEFAULT_POLL_INITIAL:g})",
    )
    parser.add_argument(
        "--poll-max",
        type=_positive,
        default=DEFAULT_POLL_MAX,
        help=f"longest poll/retry interval in seconds (default {DEFAULT_POLL_MAX:g})",
    )
    parser.add_argument(
        "--call-timeout",
        type=_positive,
        default=DEFAULT_CALL_TIMEOUT,
        help=f"seconds before one hung ibmcloud call is killed and retried (default {DEFAULT_CALL_TIMEOUT:g})",
    )
    parser.add_argument(
        "--attempts",
        type=_count,
        default=DEFAULT_ATTEMPTS,
        help=f"tries per ibmcloud call on transient failures (default {DEFAULT_ATTEMPTS})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line; :func:`command_line` builds lines this parser accepts (tested)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="nlb-dns registration of the Istio gateway and ALB discovery on IBM Cloud Kubernetes Service.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    helps = {
        "create": "register (or adopt) the addresses, wait for the certificate, print the JSON result",
        "update": "re-print the stored result (PULUMI_COMMAND_STDOUT) if still valid, else like create",
        "delete": "unregister the addresses and remove the certificate secret (idempotent)",
    }
    for action in ACTIONS:
        sub = actions.add_parser(action, help=helps[action], description=helps[action])
        _add_call_flags(sub, DEFAULT_TIMEOUT)
        sub.add_argument("--type", dest="cluster_type", choices=CLUSTER_TYPES, required=True, help="cluster type")
        sub.add_argument(
            "--address",
            dest="addresses",
            action="append",
            required=True,
            help="NLB IP (classic; repeat for several zones) or load balancer hostname (vpc; once)",
        )
        sub.add_argument(
            "--secret-namespace",
            required=action != "delete",
            default=None,
            help="namespace for the certificate secret (the gateway's namespace)",
        )
    mirror_helps = {
        "mirror-secret": "have IKS keep a copy of an Ingress TLS secret in another namespace; print the JSON result",
        "unmirror-secret": "remove that copy (idempotent)",
    }
    for action in MIRROR_ACTIONS:
        sub = actions.add_parser(action, help=mirror_helps[action], description=mirror_helps[action])
        _add_call_flags(sub, 300.0)
        sub.add_argument("--name", required=True, help="the secret's name (the ALB secret)")
        sub.add_argument("--from-namespace", required=True, help="where the IKS-managed original lives")
        sub.add_argument("--namespace", required=True, help="where the copy goes")
    discover_parser = actions.add_parser(
        "discover", help="print the ALB Ingress subdomain and secret", description="print {albDomain, albSecret}"
    )
    _add_call_flags(discover_parser, 60.0)
    return parser


def _check_addresses(parser: argparse.ArgumentParser, cluster_type: str, addresses: Sequence[str]) -> tuple[str, ...]:
    """The ``--address`` values, de-duplicated; a usage error (exit 2) before any call if they cannot be right."""
    cleaned = tuple(dict.fromkeys(a.strip() for a in addresses if a.strip()))
    if not cleaned:
        parser.error("--address must not be empty")
    if cluster_type == "classic":
        for address in cleaned:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                parser.error(f"--address {address!r} is not an IP address (classic clusters register NLB IPs)")
    else:
        if len(cleaned) != 1:
            parser.error("--type vpc takes exactly one --address: the VPC load balancer hostname")
        if not HOSTNAME.fullmatch(cleaned[0]):
            parser.error(f"--address {cleaned[0]!r} is not a hostname (VPC load balancers have a hostname)")
    return cleaned


class _Terminated(BaseException):
    """SIGTERM (pulumi cancel): unwind so a running ibmcloud call is killed, not orphaned."""


def _on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into an exception, so the ``finally``/``except`` paths kill the running call."""
    raise _Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run one action; errors become ``error: <message>`` and exit code 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.poll_max < args.poll_initial:
        parser.error("--poll-max must be at least --poll-initial")
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # pragma: no cover - not the main thread
        pass
    try:
        cli = Cli(
            find_executable(),
            call_timeout=args.call_timeout,
            attempts=args.attempts,
            backoff_initial=args.poll_initial,
            backoff_max=args.poll_max,
        )
        if args.action in MIRROR_ACTIONS:
            if args.from_namespace == args.namespace:
                parser.error("--from-namespace and --namespace must differ")
            cli.deadline = cli.clock() + args.timeout
            if args.action == "unmirror-secret":
                unmirror_secret(cli, args.cluster, args.name, args.namespace)
                return 0
            print(json.dumps(mirror_secret(cli, args.cluster, args.name, args.from_namespace, args.namespace)), flush=True)
            return 0
        if args.action == "discover":
            cli.deadline = cli.clock() + args.timeout
            info = discover(cli, args.cluster)
            print(json.dumps({"albDomain": info.domain, "albSecret": info.secret}), flush=True)
            return 0
        settings = NlbSettings(
            cluster=args.cluster,
            cluster_type=args.cluster_type,
            addresses=_check_addresses(parser, args.cluster_type, args.addresses),
            secret_namespace=args.secret_namespace or "",
            timeout=args.timeout,
            poll_initial=args.poll_initial,
            poll_max=args.poll_max,
        )
        nlb = Nlb(cli, settings)
        if args.action == "create":
            result = nlb.create()
        elif args.action == "update":
            result = nlb.update(stored_result(os.environ))
        else:
            nlb.delete(stored_result(os.environ))
            return 0
        print(result.to_json(), flush=True)
        return 0
    except IbmCloudError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, _Terminated):
        print("error: interrupted; the running ibmcloud call was stopped. Run again to finish", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug still gets one line, never a traceback
        print(f"error: internal error in components.ibmcloud: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
