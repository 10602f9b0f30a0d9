"""Everything this project asks of IBM Cloud: the gateway's nlb-dns subdomain and the ALB's names.

Run as ``python3 -m components.ibmcloud ACTION ...`` from the project root.  pulumi-command
runs it outside the program's virtualenv, and replays the stored ``delete`` command later,
maybe from another checkout, with whatever ``python3`` is on PATH: so this file uses the
standard library only, works on Python >= 3.9 and never names an absolute path.

Contract (what the Pulumi program and its operator rely on):

* ``create`` / ``update`` print exactly one JSON line on stdout,
  ``{"hostname": ..., "secretName": ..., "secretNamespace": ...}``; ``discover`` prints
  ``{"albDomain": ..., "albSecret": ...}``; ``delete`` prints nothing.
* Progress and diagnostics go to stderr; a failure is one line ``error: <message>`` and exit
  code 1 (argparse usage errors: 2).  Never a traceback.
* Only *names* pass through here (subdomains, secret names); never key material.

The IBM Cloud CLI is ``ibmcloud`` on PATH, or ``$IBMCLOUD_BIN`` (tests point it at a fake).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "ACTIONS",
    "CLUSTER_TYPES",
    "MIRROR_ACTIONS",
    "AlbInfo",
    "IbmCloudError",
    "NlbRecord",
    "NlbResult",
    "backoff",
    "build_parser",
    "command_line",
    "discover_alb",
    "main",
    "mirror_command_line",
    "parse_cluster_ingress",
    "parse_mirror_result",
    "parse_nlb_rows",
    "parse_result",
]

#: Actions pulumi-command runs (``discover`` is for people and the program).
ACTIONS = ("create", "update", "delete")
#: Copy (and remove the copy of) the ALB's IBM-managed TLS secret into another namespace.
MIRROR_ACTIONS = ("mirror-secret", "unmirror-secret")
CLUSTER_TYPES = ("classic", "vpc")

#: Certificate statuses in ``nlb-dns ls``: ready, still coming, or refused by Let's Encrypt.
READY_STATUSES = frozenset({"created", "enabled"})
WAITING_STATUSES = frozenset({"", "creating", "pending", "regenerating"})
RATE_LIMITED = "rate_limited"

DEFAULT_TIMEOUT = 1800.0
DEFAULT_POLL_INITIAL = 5.0
DEFAULT_POLL_MAX = 60.0
DEFAULT_CALL_TIMEOUT = 120.0
DEFAULT_ATTEMPTS = 5

_PROG = "python3 -m components.ibmcloud"
_INSTALL_URL = "https://cloud.ibm.com/docs/cli?topic=cli-install-ibmcloud-cli"


# --------------------------------------------------------------------------------------------
# Errors: each becomes one ``error: <message>`` line; the message says what to do.


class IbmCloudError(Exception):
    """A failure reported to the user as one line; the message names the fix."""


class CliNotFound(IbmCloudError):
    """No ``ibmcloud`` executable: nothing else can work."""


class NotLoggedIn(IbmCloudError):
    """The CLI has no session: retrying cannot help."""


class PluginMissing(IbmCloudError):
    """The CLI lacks the Kubernetes Service (``ks``) plugin: retrying cannot help."""


class ClusterNotFound(IbmCloudError):
    """Wrong cluster name, account, region or resource group: retrying cannot help."""


class TransientCliError(IbmCloudError):
    """A 5xx-style failure or a hung call: worth retrying with backoff."""

    def __init__(self, message: str, cli_message: str) -> None:
        super().__init__(message)
        self.cli_message = cli_message


class CliCommandError(IbmCloudError):
    """The CLI refused the request for a reason retries will not change."""

    def __init__(self, message: str, cli_message: str) -> None:
        super().__init__(message)
        self.cli_message = cli_message


class CertificateRateLimited(IbmCloudError):
    """Let's Encrypt refused the certificate; IBM retries by itself only after days."""


class WaitTimeout(IbmCloudError):
    """The certificate was not ready within ``--timeout``."""


# --------------------------------------------------------------------------------------------
# Pure helpers: parsing and policies (unit-tested directly).


@dataclass(frozen=True)
class NlbRecord:
    """One row of ``ibmcloud ks nlb-dns ls --output json``, whatever the cluster type.

    ``addresses`` holds the registered NLB IPs (classic) or the load balancer hostname first,
    then any IPs (VPC), all normalised to lower case.
    """

    subdomain: str
    addresses: tuple[str, ...]
    secret_name: str
    secret_status: str
    secret_namespace: str
    lb_hostname: str = ""


@dataclass(frozen=True)
class NlbResult:
    """What create/update print and pulumi-command stores: names only, never key material."""

    hostname: str
    secret_name: str
    secret_namespace: str

    def to_json(self) -> str:
        """The one stdout line; key names are the Pulumi program's contract."""
        return json.dumps(
            {"hostname": self.hostname, "secretName": self.secret_name, "secretNamespace": self.secret_namespace}
        )


class AlbInfo(NamedTuple):
    """The cluster's ALB Ingress subdomain and the name of its TLS secret (namespace ``default``)."""

    domain: str
    secret: str


def normalise_address(address: str) -> str:
    """Compare IPs and hostnames the way DNS does: case-insensitive, no trailing dot."""
    return address.strip().lower().rstrip(".")


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _addresses(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(normalise_address(v) for v in value if isinstance(v, str) and v.strip())


def parse_nlb_rows(data: object) -> list[NlbRecord]:
    """Both row shapes of ``nlb-dns ls --output json``: flat classic rows and nested VPC rows.

    The shape is decided per row (not by cluster type) because IBM has served both for the same
    API over time; rows without a subdomain are skipped rather than failing the whole call.
    """
    if data is None:
        return []
    if not isinstance(data, list):
        raise IbmCloudError(f"unexpected `nlb-dns ls` JSON: expected a list, got {type(data).__name__}")
    records: list[NlbRecord] = []
    for row in data:
        if not isinstance(row, dict):
            continue
        nested = row.get("Nlb")
        if isinstance(nested, dict):
            lb_host = normalise_address(_text(nested.get("lbHostname")))
            ips = _addresses(nested.get("nlbIPArray"))
            record = NlbRecord(
                subdomain=normalise_address(_text(nested.get("nlbSubdomain"))),
                addresses=((lb_host,) if lb_host else ()) + ips,
                secret_name=_text(row.get("secretName")),
                secret_status=_text(row.get("secretStatus")).lower(),
                secret_namespace=_text(nested.get("secretNamespace")),
                lb_hostname=lb_host,
            )
        else:
            record = NlbRecord(
                subdomain=normalise_address(_text(row.get("nlbHost"))),
                addresses=_addresses(row.get("nlbIPArray")),
                secret_name=_text(row.get("nlbSslSecretName")),
                secret_status=_text(row.get("nlbSslSecretStatus")).lower(),
                secret_namespace=_text(row.get("secretNamespace")),
            )
        if record.subdomain:
            records.append(record)
    return records


def find_subdomain(records: Sequence[NlbRecord], subdomain: str) -> NlbRecord | None:
    """The row of one subdomain, if ``ls`` still lists it."""
    wanted = normalise_address(subdomain)
    return next((r for r in records if r.subdomain == wanted), None)


def _holds(record: NlbRecord, address: str, cluster_type: str) -> bool:
    """Whether a row registers this address (VPC: the load balancer hostname)."""
    if cluster_type == "vpc" and record.lb_hostname:
        return record.lb_hostname == address
    return address in record.addresses


def records_for(records: Sequence[NlbRecord], addresses: Sequence[str], cluster_type: str) -> list[NlbRecord]:
    """Rows registering any of the addresses: candidates for adoption or removal."""
    wanted = [normalise_address(a) for a in addresses]
    return [r for r in records if any(_holds(r, a, cluster_type) for a in wanted)]


def covers(record: NlbRecord, addresses: Sequence[str], cluster_type: str) -> bool:
    """Whether one row registers every address."""
    return all(_holds(record, normalise_address(a), cluster_type) for a in addresses)


def backoff(initial: float, maximum: float, factor: float = 2.0) -> Iterator[float]:
    """``initial, initial*factor, ...`` capped at ``maximum``, forever.

    Polls get rarer as a wait drags on (few CLI calls for a half-hour certificate) but never
    rarer than ``maximum``, which bounds how late a status change is noticed.
    """
    if initial <= 0 or maximum < initial or factor < 1:
        raise ValueError(f"bad backoff: initial={initial}, maximum={maximum}, factor={factor}")
    delay = initial
    while True:
        yield delay
        delay = min(delay * factor, maximum)


def parse_result(text: str) -> NlbResult:
    """The stored create/update result (pulumi-command ``stdout``): its last non-empty line.

    Raises ``ValueError`` for anything else, so a broken result is never taken for a name.
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty result")
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"result is not JSON: {exc}") from None
    data = data if isinstance(data, dict) else {}
    values = {}
    for key in ("hostname", "secretName", "secretNamespace"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"result has no {key!r}")
        values[key] = value.strip()
    return NlbResult(values["hostname"], values["secretName"], values["secretNamespace"])


def parse_cluster_ingress(data: object, cluster: str) -> AlbInfo:
    """``.ingress.hostname``/``.ingress.secretName``, or the older top-level ``ingressHostname``/
    ``ingressSecretName``: IBM's CLI and API have served both shapes.
    """
    if not isinstance(data, dict):
        raise IbmCloudError(f"unexpected `ibmcloud ks cluster get` JSON for cluster {cluster!r}: not an object")
    ingress = data.get("ingress")
    ingress = ingress if isinstance(ingress, dict) else {}
    domain = _text(ingress.get("hostname")) or _text(data.get("ingressHostname"))
    secret = _text(ingress.get("secretName")) or _text(data.get("ingressSecretName"))
    if domain and secret:
        return AlbInfo(domain, secret)
    missing = " and ".join(
        name
        for name, value in (("Ingress subdomain", domain), ("Ingress secret", secret))
        if not value
    )
    detail = _text(ingress.get("message")) or _text(ingress.get("status"))
    raise IbmCloudError(
        f"cluster {cluster!r} reports no {missing} (looked for .ingress.hostname/.ingress.secretName "
        f"and ingressHostname/ingressSecretName in `ibmcloud ks cluster get --output json`)"
        + (f"; IBM says: {detail}" if detail else "")
        + ". A new cluster gets them some minutes after it is deployed; check `ibmcloud ks cluster get "
        f"--cluster {cluster}`, or set albDomain and albSecret in the stack config"
    )


_HOSTNAME = re.compile(r"(?<![\w.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]*[a-z0-9])?)(?![\w-])", re.IGNORECASE)


def parse_created_subdomain(output: str, exclude: Sequence[str] = ()) -> str | None:
    """The subdomain in ``nlb-dns create`` text output ("NLB hostname was created as <name>").

    Only a hint: the caller confirms it in ``nlb-dns ls``.  The VPC load balancer hostname that
    was passed in is excluded, since it also ends in ``appdomain.cloud``.
    """
    skip = {normalise_address(e) for e in exclude}
    found = [normalise_address(m) for m in _HOSTNAME.findall(output)]
    found = [h for h in found if h not in skip]
    preferred = [h for h in found if h.endswith(".appdomain.cloud")]
    if preferred:
        return preferred[-1]
    return found[-1] if found else None


# Fault classification of the CLI's own words.  Checked in this order; a non-zero exit that
# matches none of them is a real error and fails at once, quoting the CLI.
_NOT_LOGGED_IN = re.compile(
    r"not logged in|log ?in again|session (?:has )?expired|(?:access|iam|refresh) token (?:has |is )?expired",
    re.IGNORECASE,
)
_PLUGIN_MISSING = re.compile(
    r"'?\bks'? is not a registered command|\bnot a registered command\b|"
    r"plugin ['\"]?(?:container-service|kubernetes-service)['\"]? (?:is )?not (?:found|installed)",
    re.IGNORECASE,
)
_CLUSTER_NOT_FOUND = re.compile(
    r"cluster (?:could not|cannot|can't) be found|cluster (?:was )?not found|"
    r"no cluster (?:was )?found|cluster [^.\n]* (?:does not|doesn't) exist",
    re.IGNORECASE,
)
_CLUSTER_CODES = re.compile(r"\b(?:G0004|A0006|E0006|E0008)\b")
_TRANSIENT = re.compile(
    r"\b5\d\d\b|internal server error|bad gateway|service unavailable|gateway time-?out|"
    r"time[ds]? ?out|too many requests|\b429\b|connection (?:reset|refused|closed)|"
    r"temporar(?:y|ily)|try again later|\bEOF\b|TLS handshake|no such host|network is unreachable",
    re.IGNORECASE,
)
_GONE = re.compile(
    r"could not be found|cannot be found|not found|does not exist|doesn't exist|no longer exists|"
    r"not registered|is not associated|already (?:been )?(?:removed|deleted)|no (?:such|matching)",
    re.IGNORECASE,
)


def classify(message: str) -> str:
    """``not-logged-in`` / ``plugin-missing`` / ``cluster-not-found`` / ``transient`` / ``error``."""
    if _NOT_LOGGED_IN.search(message):
        return "not-logged-in"
    if _PLUGIN_MISSING.search(message):
        return "plugin-missing"
    if _CLUSTER_NOT_FOUND.search(message) or (
        _CLUSTER_CODES.search(message) and "cluster" in message.lower()
    ):
        return "cluster-not-found"
    if _TRANSIENT.search(message):
        return "transient"
    return "error"


def is_gone(message: str) -> bool:
    """Whether a failed removal says the thing is already gone (which is what delete wanted)."""
    return bool(_GONE.search(message)) and classify(message) == "error"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def cli_message(stdout: str, stderr: str, limit: int = 600) -> str:
    """The CLI's own words on one line, minus ``FAILED``/``OK``/incident noise, for our errors."""

    def useful(text: str) -> list[str]:
        lines = []
        for raw in _ANSI.sub("", text).splitlines():
            line = raw.strip()
            if not line or line in ("FAILED", "OK") or line.lower().startswith("incident id"):
                continue
            lines.append(line)
        return lines

    lines = useful(stderr) or useful(stdout)
    message = " ".join(lines) or "(no output)"
    return message if len(message) <= limit else message[: limit - 3] + "..."


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
    words = ["python3", "-m", "components.ibmcloud", action, "--cluster", cluster, "--type", cluster_type]
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
        "python3", "-m", "components.ibmcloud", action, "--cluster", cluster, "--name", name,
        "--from-namespace", source_namespace, "--namespace", namespace,
    ]
    return " ".join(shlex.quote(w) for w in words)


def parse_mirror_result(text: str) -> str:
    """The mirrored secret's name from the stored ``mirror-secret`` stdout; ``ValueError`` otherwise."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty mirror result")
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"mirror result is not JSON: {exc}") from None
    name = data.get("secretName") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ValueError("mirror result has no 'secretName'")
    return name.strip()


# --------------------------------------------------------------------------------------------
# Running the CLI.


def _log(message: str) -> None:
    """Progress for the operator: stderr only, so stdout stays the one JSON line."""
    print(f"ibmcloud: {message}", file=sys.stderr, flush=True)


def find_executable(environ: Mapping[str, str] | None = None) -> str:
    """``$IBMCLOUD_BIN`` or ``ibmcloud`` on PATH; a clear error when there is none."""
    env = os.environ if environ is None else environ
    override = env.get("IBMCLOUD_BIN", "").strip()
    if override:
        found = shutil.which(override, path=env.get("PATH"))
        if found is None:
            raise CliNotFound(f"IBMCLOUD_BIN={override!r} is not an executable file: fix or unset IBMCLOUD_BIN")
        return found
    found = shutil.which("ibmcloud", path=env.get("PATH"))
    if found is None:
        raise CliNotFound(
            "the IBM Cloud CLI `ibmcloud` is not on PATH: install it "
            f"({_INSTALL_URL}), then run `ibmcloud plugin install container-service` and `ibmcloud login` "
            "(or set IBMCLOUD_BIN to its path)"
        )
    return found


def _kill(proc: subprocess.Popen[str]) -> None:
    """Kill a call and everything it started (``ibmcloud`` runs its plugins as children)."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - not exercised on POSIX CI
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a grandchild kept the pipes open
        pass


def _cluster_of(args: Sequence[str]) -> str:
    for flag in ("--cluster", "-c"):
        if flag in args and args.index(flag) + 1 < len(args):
            return args[args.index(flag) + 1]
    return "?"


@dataclass
class Cli:
    """``ibmcloud`` with a per-call timeout and bounded, backed-off retries of transient failures.

    Faults that retrying cannot fix (not logged in, no ``ks`` plugin, unknown cluster) fail on
    the first call.  ``deadline`` (a ``clock()`` value) caps the retries and call timeouts.
    """

    executable: str
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS
    backoff_initial: float = DEFAULT_POLL_INITIAL
    backoff_max: float = DEFAULT_POLL_MAX
    deadline: float | None = None
    log: Callable[[str], None] = _log
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    calls: int = field(default=0, init=False)

    def display(self, args: Sequence[str]) -> str:
        """The command as the user would type it, for messages."""
        return "ibmcloud " + " ".join(shlex.quote(a) for a in args)

    def run(self, args: Sequence[str], *, retry: bool = True) -> str:
        """Stdout of a successful call.  ``retry=False`` for calls that must not run twice blindly."""
        delays = backoff(self.backoff_initial, self.backoff_max)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._once(args)
            except TransientCliError as exc:
                if not retry:
                    raise
                delay = next(delays)
                out_of_time = self.deadline is not None and self.clock() + delay >= self.deadline
                if attempt >= self.attempts or out_of_time:
                    raise TransientCliError(
                        f"`{self.display(args)}` kept failing ({attempt} attempts); last error: {exc.cli_message}. "
                        "IBM Cloud may be having trouble: check https://cloud.ibm.com/status and run again",
                        exc.cli_message,
                    ) from None
                self.log(
                    f"`{self.display(args)}` failed ({exc.cli_message}); "
                    f"attempt {attempt + 1}/{self.attempts} in {delay:.2f}s"
                )
                self.sleep(delay)

    def _timeout(self) -> float:
        if self.deadline is None:
            return self.call_timeout
        return max(0.5, min(self.call_timeout, self.deadline - self.clock()))

    def _once(self, args: Sequence[str]) -> str:
        self.calls += 1
        timeout = self._timeout()
        env = dict(os.environ, IBMCLOUD_COLOR="false", IBMCLOUD_VERSION_CHECK="false")
        try:
            proc = subprocess.Popen(
                [self.executable, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=env,
                start_new_session=(os.name == "posix"),
            )
        except FileNotFoundError:
            raise CliNotFound(
                f"the IBM Cloud CLI {self.executable!r} disappeared: install it ({_INSTALL_URL})"
            ) from None
        except OSError as exc:
            raise CliNotFound(f"cannot run the IBM Cloud CLI {self.executable!r}: {exc.strerror or exc}") from None
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            message = f"no answer within {timeout:g}s (call killed)"
            raise TransientCliError(f"`{self.display(args)}`: {message}", message) from None
        except BaseException:
            _kill(proc)
            raise
        if proc.returncode == 0:
            return stdout
        message = cli_message(stdout, stderr)
        kind = classify(message)
        said = f"`{self.display(args)}` said: {message}"
        if kind == "not-logged-in":
            raise NotLoggedIn(
                f"not logged in to IBM Cloud ({said}). Run `ibmcloud login` (non-interactive: set "
                "IBMCLOUD_API_KEY first) and `ibmcloud target -r <region>`, then run again"
            )
        if kind == "plugin-missing":
            raise PluginMissing(
                f"the IBM Cloud CLI has no Kubernetes Service plugin ({said}). "
                "Run `ibmcloud plugin install container-service`, then run again"
            )
        if kind == "cluster-not-found":
            raise ClusterNotFound(
                f"cluster {_cluster_of(args)!r} not found ({said}). Check the name with `ibmcloud ks cluster ls` "
                "and that `ibmcloud target` points at the cluster's account, region and resource group"
            )
        if kind == "transient":
            raise TransientCliError(said, message)
        raise CliCommandError(f"`{self.display(args)}` failed: {message}", message)


# --------------------------------------------------------------------------------------------
# The actions.


@dataclass
class NlbSettings:
    """One nlb-dns run's inputs, from the command line."""

    cluster: str
    cluster_type: str
    addresses: tuple[str, ...]
    secret_namespace: str
    timeout: float = DEFAULT_TIMEOUT
    poll_initial: float = DEFAULT_POLL_INITIAL
    poll_max: float = DEFAULT_POLL_MAX


class Nlb:
    """nlb-dns registration of the gateway's load balancer: idempotent create, wait, delete."""

    def __init__(self, cli: Cli, settings: NlbSettings) -> None:
        self.cli = cli
        self.s = settings
        self.log = cli.log
        self.start = cli.clock()

    # -- reading

    def ls(self) -> list[NlbRecord]:
        """``nlb-dns ls`` parsed; polled, so retried like any idempotent read."""
        args = ["ks", "nlb-dns", "ls", "--cluster", self.s.cluster, "--output", "json"]
        output = self.cli.run(args)
        try:
            data = json.loads(output) if output.strip() else []
        except json.JSONDecodeError as exc:
            raise IbmCloudError(
                f"`{self.cli.display(args)}` did not print JSON ({exc}); is the container-service plugin current? "
                "Run `ibmcloud plugin update container-service`"
            ) from None
        return parse_nlb_rows(data)

    def _adoptable(self, records: Sequence[NlbRecord]) -> NlbRecord | None:
        """The existing registration to use, if any; refuses an ambiguous or unusable one."""
        candidates = records_for(records, self.s.addresses, self.s.cluster_type)
        if not candidates:
            return None
        full = [r for r in candidates if covers(r, self.s.addresses, self.s.cluster_type)]
        if full:
            full.sort(key=lambda r: (r.secret_status not in READY_STATUSES, r.subdomain))
            chosen = full[0]
        elif len(candidates) == 1:
            chosen = candidates[0]
        else:
            where = "; ".join(
                f"{', '.join(a for a in self.s.addresses if _holds(r, normalise_address(a), self.s.cluster_type))}"
                f" -> {r.subdomain}"
                for r in candidates
            )
            raise IbmCloudError(
                f"the addresses are registered to different nlb-dns subdomains ({where}); remove the stray ones "
                f"with `ibmcloud ks nlb-dns rm classic --cluster {self.s.cluster} --ip IP --nlb-host SUBDOMAIN` "
                "and run again"
            )
        others = [r.subdomain for r in candidates if r is not chosen]
        if others:
            self.log(f"note: some addresses are also registered to {', '.join(others)}; using {chosen.subdomain}")
        if chosen.secret_namespace and chosen.secret_namespace != self.s.secret_namespace:
            raise IbmCloudError(
                f"{', '.join(self.s.addresses)} is already registered to {chosen.subdomain}, whose certificate "
                f"secret lives in namespace {chosen.secret_namespace!r}, not {self.s.secret_namespace!r} "
                "(an nlb-dns secret cannot move). Either set the gateway namespace to "
                f"{chosen.secret_namespace!r}, or remove that registration (`{_PROG} delete ...` or "
                "`ibmcloud ks nlb-dns rm ...`) and run again"
            )
        return chosen

    # -- create / update / delete

    def create(self, records: list[NlbRecord] | None = None) -> NlbResult:
        """Register (or adopt) the addresses, wait for the certificate, return the names."""
        if records is None:
            records = self.ls()
        subdomain = self._register(records)
        record = self.wait(subdomain)
        secret = record.secret_name
        if not secret:
            secret = subdomain.split(".", 1)[0]
            self.log(f"note: `nlb-dns ls` shows no secret name for {subdomain}; assuming {secret} (IBM's naming)")
        return NlbResult(record.subdomain, secret, record.secret_namespace or self.s.secret_namespace)

    def _register(self, records: list[NlbRecord]) -> str:
        """The subdomain holding all addresses: adopted if one exists, else created once."""
        existing = self._adoptable(records)
        if existing is not None:
            self._adopt(existing)
            return existing.subdomain
        if self.s.cluster_type == "classic":
            args = ["ks", "nlb-dns", "create", "classic", "--cluster", self.s.cluster]
            for address in self.s.addresses:
                args += ["--ip", address]
        else:
            args = ["ks", "nlb-dns", "create", "vpc-gen2", "--cluster", self.s.cluster, "--lb-host", self.s.addresses[0]]
        args += ["--secret-namespace", self.s.secret_namespace]
        # A create that failed transiently may still have registered: look before trying again,
        # or IBM would hand out a second subdomain for the same load balancer.
        delays = backoff(self.s.poll_initial, self.s.poll_max)
        attempt = 0
        while True:
            attempt += 1
            try:
                output = self.cli.run(args, retry=False)
                break
            except TransientCliError as exc:
                existing = self._adoptable(self.ls())
                if existing is not None:
                    self.log(f"`{self.cli.display(args)}` failed ({exc.cli_message}) but the registration exists")
                    self._adopt(existing)
                    return existing.subdomain
                if attempt >= self.cli.attempts:
                    raise TransientCliError(
                        f"`{self.cli.display(args)}` kept failing ({attempt} attempts); last error: "
                        f"{exc.cli_message}. Check https://cloud.ibm.com/status and run again",
                        exc.cli_message,
                    ) from None
                delay = next(delays)
                self.log(f"`{self.cli.display(args)}` failed ({exc.cli_message}); attempt {attempt + 1} in {delay:.2f}s")
                self.cli.sleep(delay)
        subdomain = parse_created_subdomain(output, exclude=self.s.addresses)
        if subdomain is None:
            # Unknown wording: ask the source of truth instead.
            found = self._adoptable(self.ls())
            if found is None:
                raise IbmCloudError(
                    f"`{self.cli.display(args)}` succeeded but neither its output nor `nlb-dns ls` names a subdomain "
                    f"for {', '.join(self.s.addresses)}: {cli_message(output, '')}"
                )
            subdomain = found.subdomain
        self.log(f"registered {', '.join(self.s.addresses)} as {subdomain}")
        return subdomain

    def _adopt(self, record: NlbRecord) -> None:
        """Use an existing registration; on classic add the addresses it lacks."""
        held = [a for a in self.s.addresses if _holds(record, normalise_address(a), self.s.cluster_type)]
        self.log(f"adopting existing registration: {', '.join(held)} already registered to {record.subdomain}")
        missing = [a for a in self.s.addresses if a not in held]
        if not missing:
            return
        args = ["ks", "nlb-dns", "add", "--cluster", self.s.cluster]
        for address in missing:
            args += ["--ip", address]
        args += ["--nlb-host", record.subdomain]
        try:
            self.cli.run(args)
        except CliCommandError as exc:
            if "already" not in exc.cli_message.lower():
                raise
        self.log(f"added {', '.join(missing)} to {record.subdomain}")

    def wait(self, subdomain: str) -> NlbRecord:
        """Poll ``nlb-dns ls`` with capped exponential backoff until the certificate is ready.

        The wait is bounded by ``--timeout`` from the start of the action; a status change is
        seen at most one poll interval (``--poll-max``) plus one CLI call after it happens.
        """
        deadline = self.start + self.s.timeout
        delays = backoff(self.s.poll_initial, self.s.poll_max)
        while True:
            record = find_subdomain(self.ls(), subdomain)
            status = record.secret_status if record is not None else ""
            if record is not None and status in READY_STATUSES:
                self.log(f"certificate for {subdomain} is ready (status {status!r}, {self._elapsed():.1f}s)")
                return record
            if status == RATE_LIMITED:
                raise CertificateRateLimited(
                    f"Let's Encrypt refused the certificate for {subdomain} (status rate_limited: too many "
                    "certificates were issued for this domain recently). IBM Cloud retries by itself, but only after "
                    "some days, so waiting here cannot help. Check later with `ibmcloud ks nlb-dns ls --cluster "
                    f"{self.s.cluster}` and run `pulumi up` again once it shows 'created', or set gatewayDomain and "
                    "gatewaySecret to a subdomain whose certificate exists"
                )
            now = self.cli.clock()
            shown = status if record is not None else "not listed yet"
            if now >= deadline:
                raise WaitTimeout(
                    f"the certificate for {subdomain} was not ready after {self.s.timeout:g}s (last status: "
                    f"{shown!r}). Issuing can take a while: check `ibmcloud ks nlb-dns ls --cluster {self.s.cluster}` "
                    "and run again (the registration is kept and will be adopted), or raise certWaitTimeoutSeconds"
                )
            delay = min(next(delays), deadline - now)
            note = "" if status in WAITING_STATUSES else " (unrecognised status, still waiting)"
            self.log(
                f"waiting for the certificate of {subdomain}: status {shown!r}{note}, "
                f"{now - self.start:.1f}s elapsed, next check in {delay:.2f}s"
            )
            self.cli.sleep(delay)

    def _elapsed(self) -> float:
        return self.cli.clock() - self.start

    def update(self, stored: NlbResult | None) -> NlbResult:
        """Keep the stored result while ``ls`` still shows it for these addresses; else create.

        A stored result exists only after a create saw the certificate ready, so a status that is
        not ready now is a renewal under way: no reason to block an unrelated update on it.
        """
        records = self.ls()
        if stored is not None:
            record = find_subdomain(records, stored.hostname)
            if (
                record is not None
                and covers(record, self.s.addresses, self.s.cluster_type)
                and stored.secret_namespace == self.s.secret_namespace
            ):
                note = "" if record.secret_status in READY_STATUSES else " (renewal under way?)"
                self.log(
                    f"keeping the stored registration {stored.hostname} "
                    f"(certificate status {record.secret_status!r}{note})"
                )
                return stored
            self.log(f"the stored registration {stored.hostname} no longer matches {', '.join(self.s.addresses)}")
        return self.create(records)

    def delete(self, stored: NlbResult | None) -> None:
        """Unregister the addresses and remove the certificate secret; what is gone already is fine."""
        records = self.ls()
        if stored is not None:
            hosts = [stored.hostname]
            self.log(f"removing {stored.hostname} (from the stored result)")
        else:
            hosts = [r.subdomain for r in records_for(records, self.s.addresses, self.s.cluster_type)]
            if not hosts:
                self.log(f"nothing is registered for {', '.join(self.s.addresses)}: nothing to delete")
                return
            self.log(f"removing {', '.join(hosts)} (looked up by address)")
        for host in hosts:
            self._delete_one(host, find_subdomain(records, host))

    def _delete_one(self, host: str, record: NlbRecord | None) -> None:
        wanted = [normalise_address(a) for a in self.s.addresses]
        if record is None:
            self.log(f"{host} is not listed any more: its addresses are already unregistered")
            remaining: tuple[str, ...] = ()
        elif self.s.cluster_type == "classic":
            for address in [a for a in wanted if a in record.addresses]:
                self._remove(["ks", "nlb-dns", "rm", "classic", "--cluster", self.s.cluster, "--ip", address, "--nlb-host", host])
            gone = [a for a in wanted if a not in record.addresses]
            if gone:
                self.log(f"{', '.join(gone)} already unregistered from {host}")
            remaining = tuple(a for a in record.addresses if a not in wanted)
        else:
            if record.lb_hostname and record.lb_hostname in wanted:
                self._remove(["ks", "nlb-dns", "rm", "vpc-gen2", "--cluster", self.s.cluster, "--nlb-subdomain", host])
                remaining = ()
            elif record.lb_hostname:
                remaining = (record.lb_hostname,)
            else:
                self.log(f"{host} already has no load balancer registered")
                remaining = ()
        if remaining:
            self.log(f"{host} still serves {', '.join(remaining)} (not ours): keeping its certificate secret")
            return
        if record is not None and not record.secret_name and not record.secret_status:
            self.log(f"the certificate secret of {host} is already removed")
            return
        self._remove(["ks", "nlb-dns", "secret", "rm", "--cluster", self.s.cluster, "--nlb-subdomain", host])

    def _remove(self, args: list[str]) -> None:
        """One removal; "not found" means someone already did it, which is success."""
        try:
            self.cli.run(args)
            self.log(f"done: {self.cli.display(args)}")
        except CliCommandError as exc:
            if not is_gone(exc.cli_message):
                raise
            self.log(f"already gone: {self.cli.display(args)} ({exc.cli_message})")


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
    return _discover(cli, cluster)


def _discover(cli: Cli, cluster: str) -> AlbInfo:
    args = ["ks", "cluster", "get", "--cluster", cluster, "--output", "json"]
    output = cli.run(args)
    try:
        data = json.loads(output)
    except json.JSONDecodeError as exc:
        raise IbmCloudError(f"`{cli.display(args)}` did not print JSON ({exc})") from None
    return parse_cluster_ingress(data, cluster)


def _ingress_secret(cli: Cli, cluster: str, name: str, namespace: str) -> dict[str, object] | None:
    """``ibmcloud ks ingress secret get`` as JSON, or ``None`` when there is no such secret."""
    args = ["ks", "ingress", "secret", "get", "--cluster", cluster, "--name", name, "--namespace", namespace,
            "--output", "json"]
    try:
        output = cli.run(args)
    except CliCommandError as exc:
        if is_gone(exc.cli_message):
            return None
        raise
    try:
        data = json.loads(output)
    except json.JSONDecodeError as exc:
        raise IbmCloudError(f"`{cli.display(args)}` did not print JSON ({exc})") from None
    if not isinstance(data, dict):
        raise IbmCloudError(f"`{cli.display(args)}` printed unexpected JSON: not an object")
    return data


def mirror_secret(cli: Cli, cluster: str, name: str, source_namespace: str, namespace: str) -> dict[str, str]:
    """Make IKS keep a copy of the ALB's TLS secret in ``namespace`` (same certificate CRN).

    A copy made with ``ingress secret create --cert-crn`` is IKS-managed, so IKS renews it with
    the original (unlike a kubectl copy).  Idempotent: an up-to-date copy is left alone.
    """
    source = _ingress_secret(cli, cluster, name, source_namespace)
    if source is None:
        raise IbmCloudError(
            f"no Ingress secret {name!r} in namespace {source_namespace!r} of cluster {cluster!r}; check "
            f"`ibmcloud ks ingress secret ls --cluster {cluster}` and albSecret/albSecretNamespace"
        )
    crn = _text(source.get("crn"))
    if not crn:
        raise IbmCloudError(
            f"the Ingress secret {source_namespace}/{name} has no certificate CRN, so IKS cannot copy it; "
            "set albTlsMode=default-certificate (or copy the secret yourself and set albSecretNamespace)"
        )
    target = _ingress_secret(cli, cluster, name, namespace)
    base = ["--cluster", cluster, "--name", name, "--namespace", namespace]
    if target is None:
        cli.run(["ks", "ingress", "secret", "create", "--cluster", cluster, "--cert-crn", crn, "--name", name,
                 "--namespace", namespace])
        cli.log(f"copied the Ingress secret {source_namespace}/{name} to {namespace}/{name}")
    elif _text(target.get("crn")) != crn:
        cli.run(["ks", "ingress", "secret", "update", *base, "--cert-crn", crn])
        cli.log(f"pointed {namespace}/{name} at the certificate of {source_namespace}/{name}")
    else:
        cli.log(f"{namespace}/{name} is already a copy of {source_namespace}/{name}")
    return {"secretName": name, "namespace": namespace, "crn": crn}


def unmirror_secret(cli: Cli, cluster: str, name: str, namespace: str) -> None:
    """Remove the copy; one that is already gone is success."""
    args = ["ks", "ingress", "secret", "rm", "--cluster", cluster, "--name", name, "--namespace", namespace]
    try:
        cli.run(args)
        cli.log(f"removed the Ingress secret copy {namespace}/{name}")
    except CliCommandError as exc:
        if not is_gone(exc.cli_message):
            raise
        cli.log(f"already gone: {namespace}/{name} ({exc.cli_message})")


def stored_result(environ: Mapping[str, str], log: Callable[[str], None] = _log) -> NlbResult | None:
    """The previous result pulumi-command hands to update/delete in ``PULUMI_COMMAND_STDOUT``."""
    text = environ.get("PULUMI_COMMAND_STDOUT", "")
    if not text.strip():
        return None
    try:
        return parse_result(text)
    except ValueError as exc:
        log(f"ignoring PULUMI_COMMAND_STDOUT ({exc})")
        return None


# --------------------------------------------------------------------------------------------
# Command line.


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _add_call_flags(parser: argparse.ArgumentParser, timeout: float) -> None:
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
        prog=_PROG,
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
    discover = actions.add_parser(
        "discover", help="print the ALB Ingress subdomain and secret", description="print {albDomain, albSecret}"
    )
    _add_call_flags(discover, 60.0)
    return parser


def _check_addresses(parser: argparse.ArgumentParser, cluster_type: str, addresses: Sequence[str]) -> tuple[str, ...]:
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
        if not _HOSTNAME.fullmatch(cleaned[0]):
            parser.error(f"--address {cleaned[0]!r} is not a hostname (VPC load balancers have a hostname)")
    return cleaned


class _Terminated(BaseException):
    """SIGTERM (pulumi cancel): unwind so a running ibmcloud call is killed, not orphaned."""


def _on_sigterm(signum: int, frame: object) -> None:
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
            info = _discover(cli, args.cluster)
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


if __name__ == "__main__":
    sys.exit(main())
