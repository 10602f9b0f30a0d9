"""Running the ``ibmcloud`` CLI: finding it, one call with a timeout, and the one retry loop.

Every call goes through :class:`Cli`, which kills a hung call (and the plugin processes it
started), retries transient failures with capped exponential backoff, and turns the failures
retrying cannot fix (not logged in, no ``ks`` plugin, unknown cluster) into errors that say what
to do.  Progress goes to stderr, so stdout stays the one JSON line.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from .errors import (
    CliCommandError,
    CliNotFound,
    ClusterNotFound,
    NotLoggedIn,
    PluginMissing,
    TransientCliError,
)
from .parsing import classify, cli_message

DEFAULT_POLL_INITIAL = 5.0
DEFAULT_POLL_MAX = 60.0
DEFAULT_CALL_TIMEOUT = 120.0
DEFAULT_ATTEMPTS = 5

INSTALL_URL = "https://cloud.ibm.com/docs/cli?topic=cli-install-ibmcloud-cli"

T = TypeVar("T")


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


def progress(message: str) -> None:
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
            f"({INSTALL_URL}), then run `ibmcloud plugin install container-service` and `ibmcloud login` "
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
    """The ``--cluster`` of a call, to name it in "cluster not found"."""
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
    log: Callable[[str], None] = progress
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    calls: int = field(default=0, init=False)

    def display(self, args: Sequence[str]) -> str:
        """The command as the user would type it, for messages."""
        return "ibmcloud " + " ".join(shlex.quote(a) for a in args)

    def run(self, args: Sequence[str]) -> str:
        """Stdout of a successful call; a transient failure is retried (the call must be idempotent)."""
        return self._retrying(args, None)

    def run_unsure(self, args: Sequence[str], settled: Callable[[TransientCliError], T | None]) -> str | T:
        """Stdout of a call that must not simply be repeated (``nlb-dns create``), or what ``settled`` found.

        A call that failed transiently may still have taken effect.  Before each retry,
        ``settled(error)`` looks; whatever it returns (not ``None``) ends the call as its result.
        """
        return self._retrying(args, settled)

    def _retrying(self, args: Sequence[str], settled: Callable[[TransientCliError], T | None] | None) -> str | T:
        """The one retry loop: up to ``attempts`` calls, ``backoff`` apart, within ``deadline``."""
        delays = backoff(self.backoff_initial, self.backoff_max)
        # run_unsure keeps the wording the create's messages have always had.
        of_attempts = f"/{self.attempts}" if settled is None else ""
        advice = "IBM Cloud may be having trouble: check" if settled is None else "Check"
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._once(args)
            except TransientCliError as exc:
                if settled is not None:
                    outcome = settled(exc)
                    if outcome is not None:
                        return outcome
                delay = next(delays)
                out_of_time = self.deadline is not None and self.clock() + delay >= self.deadline
                if attempt >= self.attempts or out_of_time:
                    raise TransientCliError(
                        f"`{self.display(args)}` kept failing ({attempt} attempts); last error: {exc.cli_message}. "
                        f"{advice} https://cloud.ibm.com/status and run again",
                        exc.cli_message,
                    ) from None
                self.log(
                    f"`{self.display(args)}` failed ({exc.cli_message}); "
                    f"attempt {attempt + 1}{of_attempts} in {delay:.2f}s"
                )
                self.sleep(delay)

    def _timeout(self) -> float:
        """The per-call timeout, shortened so no call outlives the deadline (but never below 0.5 s)."""
        if self.deadline is None:
            return self.call_timeout
        return max(0.5, min(self.call_timeout, self.deadline - self.clock()))

    def _once(self, args: Sequence[str]) -> str:
        """One call: its stdout, or the exception class that says whether to retry."""
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
                f"the IBM Cloud CLI {self.executable!r} disappeared: install it ({INSTALL_URL})"
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
