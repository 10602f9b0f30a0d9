"""Everything this project asks of IBM Cloud: the gateway's nlb-dns subdomain and the ALB's names.

Run as ``python3 -m components.ibmcloud ACTION ...`` from the project root.  pulumi-command
runs it outside the program's virtualenv, and replays the stored ``delete`` command later,
maybe from another checkout, with whatever ``python3`` is on PATH: so this package uses the
standard library only, works on Python >= 3.9 and never names an absolute path.

Contract (what the Pulumi program and its operator rely on):

* ``create`` / ``update`` print exactly one JSON line on stdout,
  ``{"hostname": ..., "secretName": ..., "secretNamespace": ...}``; ``discover`` prints
  ``{"albDomain": ..., "albSecret": ...}``; ``delete`` prints nothing.
* Progress and diagnostics go to stderr; a failure is one line ``error: <message>`` and exit
  code 1 (argparse usage errors: 2).  Never a traceback.
* Only *names* pass through here (subdomains, secret names); never key material.

The IBM Cloud CLI is ``ibmcloud`` on PATH, or ``$IBMCLOUD_BIN`` (tests point it at a fake).

One module per concern: :mod:`.errors`, :mod:`.parsing` (CLI output and fault classification),
:mod:`.calls` (the argument list of every ``ibmcloud`` call), :mod:`.runner` (running the CLI,
the retry loop), :mod:`.nlb` (the nlb-dns actions), :mod:`.alb` (ALB discovery and the Ingress
secret mirror), :mod:`.cmdline` (argparse and ``main``).  The names other code uses are
re-exported here, so ``from components import ibmcloud`` then ``ibmcloud.X`` is the way in.
"""

from __future__ import annotations

from . import calls
from .alb import discover, discover_alb, ingress_secret, mirror_secret, unmirror_secret
from .calls import CLUSTER_TYPES
from .cmdline import ACTIONS, MIRROR_ACTIONS, build_parser, command_line, main, mirror_command_line
from .errors import (
    PROG,
    CertificateRateLimited,
    CliCommandError,
    CliNotFound,
    ClusterNotFound,
    IbmCloudError,
    NotLoggedIn,
    PluginMissing,
    TransientCliError,
    WaitTimeout,
)
from .nlb import DEFAULT_TIMEOUT, Nlb, NlbSettings, covers, find_subdomain, records_for, stored_result
from .parsing import (
    RATE_LIMITED,
    READY_STATUSES,
    WAITING_STATUSES,
    AlbInfo,
    NlbRecord,
    NlbResult,
    classify,
    cli_message,
    is_gone,
    listed_ingress_secrets,
    normalise_address,
    parse_cluster_ingress,
    parse_created_subdomain,
    parse_mirror_result,
    parse_nlb_rows,
    parse_result,
)
from .runner import (
    DEFAULT_ATTEMPTS,
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_POLL_INITIAL,
    DEFAULT_POLL_MAX,
    Cli,
    backoff,
    find_executable,
)

__all__ = [
    "ACTIONS",
    "CLUSTER_TYPES",
    "DEFAULT_ATTEMPTS",
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_POLL_INITIAL",
    "DEFAULT_POLL_MAX",
    "DEFAULT_TIMEOUT",
    "MIRROR_ACTIONS",
    "PROG",
    "RATE_LIMITED",
    "READY_STATUSES",
    "WAITING_STATUSES",
    "AlbInfo",
    "CertificateRateLimited",
    "Cli",
    "CliCommandError",
    "CliNotFound",
    "ClusterNotFound",
    "IbmCloudError",
    "Nlb",
    "NlbRecord",
    "NlbResult",
    "NlbSettings",
    "NotLoggedIn",
    "PluginMissing",
    "TransientCliError",
    "WaitTimeout",
    "backoff",
    "build_parser",
    "calls",
    "classify",
    "cli_message",
    "command_line",
    "covers",
    "discover",
    "discover_alb",
    "find_executable",
    "find_subdomain",
    "ingress_secret",
    "is_gone",
    "listed_ingress_secrets",
    "main",
    "mirror_command_line",
    "mirror_secret",
    "normalise_address",
    "parse_cluster_ingress",
    "parse_created_subdomain",
    "parse_mirror_result",
    "parse_nlb_rows",
    "parse_result",
    "records_for",
    "stored_result",
    "unmirror_secret",
]
