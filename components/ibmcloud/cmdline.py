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
import math
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .alb import discover, mirror_secret, unmirror_secret
from .calls import CLUSTER_TYPES
from .errors import PROG, IbmCloudError
from .nlb import DEFAULT_TIMEOUT, Nlb, NlbSettings, stored_result
from .parsing import HOSTNAME, normalise_address
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

# Stricter than the CLI, which passes an empty or odd value on to IBM (or turns an empty
# --secret-namespace into "default"): a value that cannot name a real thing is refused here,
# before any call.  Every line ever stored in Pulumi state passes (tests/data/ibmcloud_stored_lines.json).

#: A cluster name or ID as IKS accepts them; components/settings.py uses the same patterns.
CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: A Kubernetes namespace name (an RFC 1123 label).
NAMESPACE_NAME = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
#: A Kubernetes secret name (an RFC 1123 subdomain).
SECRET_NAME = re.compile(r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?")
_KINDS = {
    "cluster": (CLUSTER_NAME, "an IKS cluster name or ID (letters, digits, '.', '_', '-'; at most 100)"),
    "namespace": (NAMESPACE_NAME, "a Kubernetes namespace name (lower-case letters, digits, '-'; at most 63)"),
    "secret": (SECRET_NAME, "a Kubernetes secret name (lower-case letters, digits, '-', '.'; at most 253)"),
}
#: Bounds of --call-timeout, --poll-initial and --poll-max: below 10 ms a poll loop spins against
#: IBM Cloud; above a day a value only hides a typo (and overflows the timers).  --timeout is
#: only positive: a stored delete line carries certWaitTimeoutSeconds, whatever it was.
MIN_INTERVAL = 0.01
MAX_INTERVAL = 86400.0
#: Upper bound of --attempts: more would turn one outage into hours of retries.
MAX_ATTEMPTS = 100


def shown(value: str, limit: int = 60) -> str:
    """A value as messages quote it: ``repr`` (one line, control characters visible), cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "..." + text[0]


def name_problem(kind: str, value: str) -> str | None:
    """Why a cluster (``kind`` "cluster"), namespace or secret name is refused, or ``None``.

    The usual slips (empty, blanks, a flag, a pasted line break) get their own words.
    """
    pattern, what = _KINDS[kind]
    if value == "":
        return "must not be empty"
    if not value.strip():
        return "must not be only whitespace"
    if value.startswith("-"):
        return f"must not start with '-' (it would read as a flag): {shown(value)}"
    if not value.isprintable():
        return f"holds a control character (a line break or tab pasted with it?): {shown(value)}"
    if not pattern.fullmatch(value):
        return f"is not {what}: {shown(value)}"
    return None


def address_problem(cluster_type: str, address: str) -> str | None:
    """Why an ``--address`` is refused (classic: an IP, VPC: a hostname), or ``None``."""
    if not address.strip():
        return "must not be empty"
    if address != address.strip() or not address.isprintable():
        return f"holds blanks or control characters: {shown(address)}"
    if cluster_type == "classic":
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return f"{shown(address)} is not an IP address (classic clusters register NLB IPs)"
        return None
    if len(address) > 253 or not HOSTNAME.fullmatch(address):
        return f"{shown(address)} is not a hostname (VPC load balancers have a hostname)"
    return None


def _checked(**names: tuple[str, str]) -> None:
    """``ValueError`` naming the first value (``arg=(kind, value)``) the parser would refuse."""
    for arg, (kind, value) in names.items():
        problem = name_problem(kind, value)
        if problem:
            raise ValueError(f"{arg} {problem}")


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
    another checkout and outside any virtualenv.  Every value is shell-quoted.  A value the parser
    would refuse is a ``ValueError`` here, so a stored line always runs.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    if cluster_type not in CLUSTER_TYPES:
        raise ValueError(f"cluster_type must be one of {', '.join(CLUSTER_TYPES)}, not {cluster_type!r}")
    if isinstance(addresses, str) or not addresses:
        raise ValueError("addresses must be a non-empty sequence of IPs (classic) or one hostname (vpc)")
    if cluster_type == "vpc" and len(addresses) != 1:
        raise ValueError("a vpc registration takes exactly one load balancer hostname")
    _checked(cluster=("cluster", cluster), secret_namespace=("namespace", secret_namespace))
    for address in addresses:
        problem = address_problem(cluster_type, address)
        if problem:
            raise ValueError(f"address {problem}")
    if timeout_seconds <= 0:
        raise ValueError("timeout_seconds must be positive")
    words = [*PROG.split(), action, "--cluster", cluster, "--type", cluster_type]
    for address in addresses:
        words += ["--address", address]
    words += ["--secret-namespace", secret_namespace, "--timeout", str(int(timeout_seconds))]
    return " ".join(shlex.quote(w) for w in words)


def mirror_command_line(action: str, *, cluster: str, name: str, source_namespace: str, namespace: str) -> str:
    """The shell command for the ALB-secret mirror Command (``mirror-secret``/``unmirror-secret``).

    Same rules as :func:`command_line`: relative module, plain ``python3``, every value quoted,
    and a value the parser would refuse is a ``ValueError``.
    """
    if action not in MIRROR_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(MIRROR_ACTIONS)}, not {action!r}")
    _checked(
        cluster=("cluster", cluster), name=("secret", name),
        source_namespace=("namespace", source_namespace), namespace=("namespace", namespace),
    )
    if source_namespace == namespace:
        raise ValueError("source_namespace and namespace must differ: the secret is already there")
    words = [
        *PROG.split(), action, "--cluster", cluster, "--name", name,
        "--from-namespace", source_namespace, "--namespace", namespace,
    ]
    return " ".join(shlex.quote(w) for w in words)


# --------------------------------------------------------------------------------------------
# The parser.


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``error: <message> (see `<prog> --help`)``, exit code 2.

    pulumi shows a failed Command's stderr; a usage block would bury the one line that matters.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {' '.join(message.splitlines())} (see `{self.prog} --help`)\n")


class _Once(argparse.Action):
    """Store a value that may be given once: two clusters or namespaces on one line are a mistake."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is not None:
            raise argparse.ArgumentError(self, "given more than once")
        setattr(namespace, self.dest, values)


def _name(kind: str) -> Callable[[str], str]:
    """argparse type: a cluster, namespace or secret name (see :func:`name_problem`)."""

    def parse(text: str) -> str:
        problem = name_problem(kind, text)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return text

    parse.__name__ = kind
    return parse


def _seconds(minimum: float | None = None, maximum: float | None = None) -> Callable[[str], float]:
    """argparse type: a finite number of seconds above zero, within ``minimum``..``maximum`` when given."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {shown(text)}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number of seconds: {shown(text)}")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {shown(text)}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g} seconds: {shown(text)}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g} seconds: {shown(text)}")
        return value

    parse.__name__ = "seconds"
    return parse


def _count(text: str) -> int:
    """argparse type: a whole number of tries, at least 1 and at most :data:`MAX_ATTEMPTS`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {shown(text)}") from None
    if not 1 <= value <= MAX_ATTEMPTS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_ATTEMPTS}: {shown(text)}")
    return value


def _add_call_flags(parser: argparse.ArgumentParser, timeout: float) -> None:
    """The flags every action shares: the cluster, the time budget and the retry policy."""
    parser.add_argument("--cluster", required=True, type=_name("cluster"), action=_Once, help="cluster name or ID")
    parser.add_argument(
        "--timeout", type=_seconds(), default=timeout, help=f"seconds for the whole action (default {timeout:g})"
    )
    parser.add_argument(
        "--poll-initial",
        type=_seconds(MIN_INTERVAL, MAX_INTERVAL),
        default=DEFAULT_POLL_INITIAL,
        help=f"first poll/retry interval in seconds; doubles each time (default {DEFAULT_POLL_INITIAL:g})",
    )
    parser.add_argument(
        "--poll-max",
        type=_seconds(MIN_INTERVAL, MAX_INTERVAL),
        default=DEFAULT_POLL_MAX,
        help=f"longest poll/retry interval in seconds (default {DEFAULT_POLL_MAX:g})",
    )
    parser.add_argument(
        "--call-timeout",
        type=_seconds(MIN_INTERVAL, MAX_INTERVAL),
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
    """The command line; :func:`command_line` builds lines this parser accepts (tested).

    Errors are one line and exit code 2 (:class:`_Parser`); so are the checks :func:`main` adds.
    """
    parser = _Parser(
        prog=PROG,
        description="nlb-dns registration of the Istio gateway and ALB discovery on IBM Cloud Kubernetes Service.",
        allow_abbrev=False,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    helps = {
        "create": "register (or adopt) the addresses, wait for the certificate, print the JSON result",
        "update": "re-print the stored result (PULUMI_COMMAND_STDOUT) if still valid, else like create",
        "delete": "unregister the addresses wherever `nlb-dns ls` finds them and remove the certificate secret "
        "(idempotent; the stored result is only a hint)",
    }
    for action in ACTIONS:
        sub = actions.add_parser(action, help=helps[action], description=helps[action], allow_abbrev=False)
        _add_call_flags(sub, DEFAULT_TIMEOUT)
        sub.add_argument(
            "--type", dest="cluster_type", choices=CLUSTER_TYPES, required=True, action=_Once, help="cluster type"
        )
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
            type=_name("namespace"),
            action=_Once,
            help="namespace for the certificate secret (the gateway's namespace)",
        )
    mirror_helps = {
        "mirror-secret": "have IKS keep a copy of an Ingress TLS secret in another namespace; print the JSON result",
        "unmirror-secret": "remove that copy (idempotent)",
    }
    for action in MIRROR_ACTIONS:
        sub = actions.add_parser(
            action, help=mirror_helps[action], description=mirror_helps[action], allow_abbrev=False
        )
        _add_call_flags(sub, 300.0)
        sub.add_argument("--name", required=True, type=_name("secret"), action=_Once,
                         help="the secret's name (the ALB secret)")
        sub.add_argument("--from-namespace", required=True, type=_name("namespace"), action=_Once,
                         help="where the IKS-managed original lives")
        sub.add_argument("--namespace", required=True, type=_name("namespace"), action=_Once,
                         help="where the copy goes")
    discover_parser = actions.add_parser(
        "discover", help="print the ALB Ingress subdomain and secret", description="print {albDomain, albSecret}",
        allow_abbrev=False,
    )
    _add_call_flags(discover_parser, 60.0)
    return parser


def _usage_error(action: str, message: str) -> NoReturn:
    """A check :func:`main` adds after parsing, failing as the action's own parser would (one line, exit 2)."""
    _Parser(prog=f"{PROG} {action}", add_help=False).error(message)


def _check_addresses(action: str, cluster_type: str, addresses: Sequence[str]) -> tuple[str, ...]:
    """The ``--address`` values, de-duplicated; a usage error (exit 2) before any call if they cannot be right."""
    for address in addresses:
        problem = address_problem(cluster_type, address)
        if problem:
            _usage_error(action, f"argument --address: {problem}")
    distinct: dict[str, str] = {}
    for address in addresses:
        distinct.setdefault(normalise_address(address), address)
    if cluster_type == "vpc" and len(distinct) != 1:
        _usage_error(action, "argument --address: --type vpc takes exactly one: the VPC load balancer hostname")
    return tuple(distinct.values())


def _check(args: argparse.Namespace) -> tuple[str, ...]:
    """The checks argparse cannot make alone (two arguments together, the addresses for the type);
    each failure is a usage error (exit 2) before any call.  Returns the addresses to use, if any.
    """
    if args.poll_max < args.poll_initial:
        _usage_error(args.action, "argument --poll-max: must be at least --poll-initial")
    if args.action in MIRROR_ACTIONS and args.from_namespace == args.namespace:
        _usage_error(args.action, "argument --namespace: must differ from --from-namespace (the secret is already there)")
    if args.action in ACTIONS:
        return _check_addresses(args.action, args.cluster_type, args.addresses)
    return ()


class _Terminated(BaseException):
    """SIGTERM (pulumi cancel): unwind so a running ibmcloud call is killed, not orphaned."""


def _on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into an exception, so the ``finally``/``except`` paths kill the running call."""
    raise _Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run one action; errors become ``error: <message>`` and exit code 1 (2: the command line)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the action's parser, so the hint names the action's --help
        _usage_error(args.action, f"unrecognized arguments: {' '.join(extra)}")
    addresses = _check(args)
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
            addresses=addresses,
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
