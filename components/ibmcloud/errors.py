"""What can go wrong, as exception classes: each becomes one ``error: <message>`` line.

The class decides what happens next (only :class:`TransientCliError` is worth retrying); the
message says what the operator should do.  :data:`PROG` is here because messages quote it.
"""

from __future__ import annotations

#: How the package is run (by pulumi-command and by people); messages that say "run again" quote it.
PROG = "python3 -m components.ibmcloud"


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
