"""The nlb-dns actions: register the gateway's load balancer, wait for its certificate, remove it.

Idempotent by design, because pulumi-command re-runs these after failures and replays the
stored delete later: an existing registration of the same addresses is adopted (IBM would
otherwise hand out a second subdomain), and whatever is already removed counts as removed.
A delete is judged by a fresh ``nlb-dns ls``, never by the stored result or the CLI's wording:
the stored subdomain is a hint, the addresses are removed wherever ``ls`` finds them, and a
removal that fails is success when a second ``ls`` shows the thing gone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from . import calls
from .errors import (
    PROG,
    CertificateRateLimited,
    CliCommandError,
    ClusterNotFound,
    IbmCloudError,
    TransientCliError,
    WaitTimeout,
)
from .parsing import (
    HOSTNAME,
    RATE_LIMITED,
    READY_STATUSES,
    WAITING_STATUSES,
    NlbRecord,
    NlbResult,
    cli_message,
    normalise_address,
    parse_created_subdomain,
    parse_nlb_rows,
    parse_result,
)
from .runner import DEFAULT_POLL_INITIAL, DEFAULT_POLL_MAX, Cli, backoff, progress

#: Seconds create waits for the certificate by default (``--timeout``).
DEFAULT_TIMEOUT = 1800.0


# --------------------------------------------------------------------------------------------
# Which rows of ``nlb-dns ls`` are ours (pure).


def find_subdomain(records: Sequence[NlbRecord], subdomain: str) -> NlbRecord | None:
    """The row of one subdomain, if ``ls`` still lists it."""
    wanted = normalise_address(subdomain)
    return next((r for r in records if r.subdomain == wanted), None)


def holds(record: NlbRecord, address: str, cluster_type: str) -> bool:
    """Whether a row registers this (normalised) address (VPC: the load balancer hostname)."""
    if cluster_type == "vpc" and record.lb_hostname:
        return record.lb_hostname == address
    return address in record.addresses


def records_for(records: Sequence[NlbRecord], addresses: Sequence[str], cluster_type: str) -> list[NlbRecord]:
    """Rows registering any of the addresses: candidates for adoption or removal."""
    wanted = [normalise_address(a) for a in addresses]
    return [r for r in records if any(holds(r, a, cluster_type) for a in wanted)]


def covers(record: NlbRecord, addresses: Sequence[str], cluster_type: str) -> bool:
    """Whether one row registers every address."""
    return all(holds(record, normalise_address(a), cluster_type) for a in addresses)


def has_secret(record: NlbRecord | None) -> bool:
    """Whether ``ls`` still shows a certificate secret for the row (a removed one has no name and no status)."""
    return record is not None and bool(record.secret_name or record.secret_status)


def stored_result(environ: Mapping[str, str], log: Callable[[str], None] = progress) -> NlbResult | None:
    """The previous result pulumi-command hands to update/delete in ``PULUMI_COMMAND_STDOUT``.

    Only a hint: anything unreadable is ignored (and not echoed), and a fresh ``ls`` decides.
    """
    text = environ.get("PULUMI_COMMAND_STDOUT", "")
    if not text.strip():
        return None
    try:
        result = parse_result(text)
    except ValueError as exc:
        log(f"ignoring PULUMI_COMMAND_STDOUT ({exc})")
        return None
    if len(result.hostname) > 253 or not HOSTNAME.fullmatch(result.hostname):
        log("ignoring PULUMI_COMMAND_STDOUT (its 'hostname' is not a DNS name)")
        return None
    return result


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
        args = calls.nlb_dns_ls(self.s.cluster)
        output = self.cli.run(args)
        try:
            data = json.loads(output) if output.strip() else []
        except (json.JSONDecodeError, RecursionError) as exc:
            detail = exc if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise IbmCloudError(
                f"`{self.cli.display(args)}` did not print JSON ({detail}); is the container-service plugin current? "
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
                f"{', '.join(a for a in self.s.addresses if holds(r, normalise_address(a), self.s.cluster_type))}"
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
                f"{chosen.secret_namespace!r}, or remove that registration (`{PROG} delete ...` or "
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
        args = calls.nlb_dns_create(self.s.cluster, self.s.cluster_type, self.s.addresses, self.s.secret_namespace)
        outcome = self.cli.run_unsure(args, lambda exc: self._registered_anyway(args, exc))
        if isinstance(outcome, NlbRecord):
            self._adopt(outcome)
            return outcome.subdomain
        subdomain = parse_created_subdomain(outcome, exclude=self.s.addresses)
        if subdomain is None:
            # Unknown wording: ask the source of truth instead.
            found = self._adoptable(self.ls())
            if found is None:
                raise IbmCloudError(
                    f"`{self.cli.display(args)}` succeeded but neither its output nor `nlb-dns ls` names a subdomain "
                    f"for {', '.join(self.s.addresses)}: {cli_message(outcome, '')}"
                )
            subdomain = found.subdomain
        self.log(f"registered {', '.join(self.s.addresses)} as {subdomain}")
        return subdomain

    def _registered_anyway(self, args: Sequence[str], exc: TransientCliError) -> NlbRecord | None:
        """A create that failed transiently may still have registered: look before trying again,
        or IBM would hand out a second subdomain for the same load balancer.
        """
        existing = self._adoptable(self.ls())
        if existing is not None:
            self.log(f"`{self.cli.display(args)}` failed ({exc.cli_message}) but the registration exists")
        return existing

    def _adopt(self, record: NlbRecord) -> None:
        """Use an existing registration; on classic add the addresses it lacks."""
        held = [a for a in self.s.addresses if holds(record, normalise_address(a), self.s.cluster_type)]
        self.log(f"adopting existing registration: {', '.join(held)} already registered to {record.subdomain}")
        missing = [a for a in self.s.addresses if a not in held]
        if not missing:
            return
        try:
            self.cli.run(calls.nlb_dns_add(self.s.cluster, missing, record.subdomain))
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
        """Seconds since the action started, for progress lines."""
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
        """Unregister the addresses wherever a fresh ``ls`` finds them, and remove the certificate
        secrets nothing else uses.  The stored subdomain is only a hint: an address moved to another
        subdomain by hand is removed there; the stored one, once empty, loses its secret too.
        """
        records = self.ls()
        shown = ", ".join(self.s.addresses)
        found = records_for(records, self.s.addresses, self.s.cluster_type)
        hint = find_subdomain(records, stored.hostname) if stored is not None else None
        if stored is not None and hint is None:
            self.log(f"the stored subdomain {stored.hostname} is not listed by `nlb-dns ls`: nothing to remove there")
        elif hint is not None and hint not in found:
            self.log(f"the stored subdomain {hint.subdomain} no longer holds {shown}")
        for record in found:
            if hint is not None and record is not hint:
                held = ", ".join(a for a in self.s.addresses if holds(record, normalise_address(a), self.s.cluster_type))
                self.log(f"{held} registered to {record.subdomain}, not to the stored subdomain (moved by hand?): "
                         "unregistering there")
        targets = found + ([hint] if hint is not None and hint not in found else [])
        if not targets:
            self.log(f"nothing is registered for {shown}: nothing to delete")
            return
        if found:
            named = f"; the stored result names {hint.subdomain}" if hint is not None else ""
            self.log(f"removing {shown} from {', '.join(r.subdomain for r in found)} (found by `nlb-dns ls`{named})")
        for record in targets:
            self._delete_one(record)

    def _delete_one(self, record: NlbRecord) -> None:
        """Unregister our addresses from one listed subdomain; remove its secret unless others still use it."""
        host = record.subdomain
        wanted = [normalise_address(a) for a in self.s.addresses]
        remaining: tuple[str, ...] = ()
        if self.s.cluster_type == "classic":
            for address in [a for a in wanted if a in record.addresses]:
                self._remove(
                    calls.nlb_dns_rm_classic(self.s.cluster, address, host),
                    f"{address} on {host}",
                    still_listed(host, address),
                )
            remaining = tuple(a for a in record.addresses if a not in wanted)
        else:
            if record.lb_hostname and record.lb_hostname in wanted:
                lb = record.lb_hostname
                self._remove(
                    calls.nlb_dns_rm_vpc(self.s.cluster, host),
                    f"{lb} on {host}",
                    still_listed(host, lb, vpc=True),
                )
            elif record.lb_hostname:
                remaining = (record.lb_hostname,)
        if remaining:
            self.log(f"{host} still serves {', '.join(remaining)} (not ours): keeping its certificate secret")
            return
        if not has_secret(record):
            self.log(f"the certificate secret of {host} is already removed")
            return
        self._remove(
            calls.nlb_dns_secret_rm(self.s.cluster, host),
            f"the certificate secret of {host}",
            still_listed(host, secret=True),
        )

    def _remove(self, args: list[str], what: str, present: Callable[[list[NlbRecord]], bool]) -> None:
        """One removal.  If it fails, a fresh ``ls`` decides: absent is success, whatever the CLI said."""
        try:
            self.cli.run(args)
            self.log(f"done: {self.cli.display(args)}")
            return
        except (CliCommandError, TransientCliError, ClusterNotFound) as exc:
            failure: IbmCloudError = exc
        said = getattr(failure, "cli_message", str(failure))
        try:
            rows = self.ls()
        except IbmCloudError as look:
            self.log(f"could not take a fresh look after the failed removal ({look})")
            raise failure from None
        if not present(rows):
            self.log(f"already gone: {what} (`{self.cli.display(args)}` said: {said}; a fresh `nlb-dns ls` agrees)")
            return
        if isinstance(failure, CliCommandError):
            raise CliCommandError(f"{failure}; a fresh `nlb-dns ls` still shows {what}", failure.cli_message) from None
        raise failure from None


def still_listed(
    host: str, address: str = "", *, vpc: bool = False, secret: bool = False
) -> Callable[[list[NlbRecord]], bool]:
    """The fresh look's question for one removal: does ``ls`` still show this IP (classic), this load
    balancer hostname (``vpc``) or the certificate secret (``secret``) on ``host``?  An unlisted
    subdomain shows nothing.
    """

    def present(rows: list[NlbRecord]) -> bool:
        record = find_subdomain(rows, host)
        if record is None:
            return False
        if secret:
            return has_secret(record)
        if vpc:
            return record.lb_hostname == address
        return address in record.addresses

    return present
