"""Reading what the ``ibmcloud`` CLI prints, and classifying its failures.

Pure functions (unit-tested directly): the JSON shapes IBM has served over time, the results
this package prints and pulumi-command stores, and which failures retrying can fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .errors import IbmCloudError

#: Certificate statuses in ``nlb-dns ls``: ready, still coming, or refused by Let's Encrypt.
READY_STATUSES = frozenset({"created", "enabled"})
WAITING_STATUSES = frozenset({"", "creating", "pending", "regenerating"})
RATE_LIMITED = "rate_limited"


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


def text_of(value: object) -> str:
    """A JSON field as stripped text; anything that is not a string (null, a number) reads as empty."""
    return value.strip() if isinstance(value, str) else ""


def _addresses(value: object) -> tuple[str, ...]:
    """An IP list field, tolerating a single string or null."""
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
            lb_host = normalise_address(text_of(nested.get("lbHostname")))
            ips = _addresses(nested.get("nlbIPArray"))
            record = NlbRecord(
                subdomain=normalise_address(text_of(nested.get("nlbSubdomain"))),
                addresses=((lb_host,) if lb_host else ()) + ips,
                secret_name=text_of(row.get("secretName")),
                secret_status=text_of(row.get("secretStatus")).lower(),
                secret_namespace=text_of(nested.get("secretNamespace")),
                lb_hostname=lb_host,
            )
        else:
            record = NlbRecord(
                subdomain=normalise_address(text_of(row.get("nlbHost"))),
                addresses=_addresses(row.get("nlbIPArray")),
                secret_name=text_of(row.get("nlbSslSecretName")),
                secret_status=text_of(row.get("nlbSslSecretStatus")).lower(),
                secret_namespace=text_of(row.get("secretNamespace")),
            )
        if record.subdomain:
            records.append(record)
    return records


#: Ingress secret statuses that mean the secret is going or gone (``ingress secret ls``).
GONE_SECRET_STATUSES = frozenset({"deleted", "deleting"})


def listed_ingress_secrets(data: object) -> set[tuple[str, str]]:
    """``(namespace, name)`` of each Ingress secret ``ingress secret ls --output json`` lists as present.

    Rows that are not objects or lack a name are skipped; a status of deleted/deleting counts as absent.
    """
    if data is None:
        return set()
    if not isinstance(data, list):
        raise IbmCloudError(f"unexpected `ingress secret ls` JSON: expected a list, got {type(data).__name__}")
    found = set()
    for row in data:
        if not isinstance(row, dict):
            continue
        name, namespace = text_of(row.get("name")), text_of(row.get("namespace"))
        if name and text_of(row.get("status")).lower() not in GONE_SECRET_STATUSES:
            found.add((namespace, name))
    return found


def _last_json_line(text: str, what: str) -> object:
    """The last non-empty line of a stored stdout, decoded; ``ValueError`` naming ``what`` otherwise."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"empty {what}")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from None
    except RecursionError:  # e.g. thousands of nested brackets: not a result either
        raise ValueError(f"{what} is not JSON: nested too deeply") from None


def parse_result(text: str) -> NlbResult:
    """The stored create/update result (pulumi-command ``stdout``): its last non-empty line.

    Raises ``ValueError`` for anything else, so a broken result is never taken for a name.
    """
    raw = _last_json_line(text, "result")
    data: dict[str, object] = raw if isinstance(raw, dict) else {}
    values = {}
    for key in ("hostname", "secretName", "secretNamespace"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"result has no {key!r}")
        values[key] = value.strip()
    return NlbResult(values["hostname"], values["secretName"], values["secretNamespace"])


def parse_mirror_result(text: str) -> str:
    """The mirrored secret's name from the stored ``mirror-secret`` stdout; ``ValueError`` otherwise."""
    data = _last_json_line(text, "mirror result")
    name = data.get("secretName") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ValueError("mirror result has no 'secretName'")
    return name.strip()


def parse_cluster_ingress(data: object, cluster: str) -> AlbInfo:
    """``.ingress.hostname``/``.ingress.secretName``, or the older top-level ``ingressHostname``/
    ``ingressSecretName``: IBM's CLI and API have served both shapes.
    """
    if not isinstance(data, dict):
        raise IbmCloudError(f"unexpected `ibmcloud ks cluster get` JSON for cluster {cluster!r}: not an object")
    ingress = data.get("ingress")
    ingress = ingress if isinstance(ingress, dict) else {}
    domain = text_of(ingress.get("hostname")) or text_of(data.get("ingressHostname"))
    secret = text_of(ingress.get("secretName")) or text_of(data.get("ingressSecretName"))
    if domain and secret:
        return AlbInfo(domain, secret)
    missing = " and ".join(
        name
        for name, value in (("Ingress subdomain", domain), ("Ingress secret", secret))
        if not value
    )
    detail = text_of(ingress.get("message")) or text_of(ingress.get("status"))
    raise IbmCloudError(
        f"cluster {cluster!r} reports no {missing} (looked for .ingress.hostname/.ingress.secretName "
        f"and ingressHostname/ingressSecretName in `ibmcloud ks cluster get --output json`)"
        + (f"; IBM says: {detail}" if detail else "")
        + ". A new cluster gets them some minutes after it is deployed; check `ibmcloud ks cluster get "
        f"--cluster {cluster}`, or set albDomain and albSecret in the stack config"
    )


#: A DNS name (at least two labels): in CLI output, and to check a VPC ``--address``.
HOSTNAME = re.compile(r"(?<![\w.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]*[a-z0-9])?)(?![\w-])", re.IGNORECASE)


def parse_created_subdomain(output: str, exclude: Sequence[str] = ()) -> str | None:
    """The subdomain in ``nlb-dns create`` text output ("NLB hostname was created as <name>").

    Only a hint: the caller confirms it in ``nlb-dns ls``.  The VPC load balancer hostname that
    was passed in is excluded, since it also ends in ``appdomain.cloud``.
    """
    skip = {normalise_address(e) for e in exclude}
    found = [normalise_address(m) for m in HOSTNAME.findall(output)]
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
