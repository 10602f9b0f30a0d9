"""Is a message documented?  ``docs/troubleshooting.md`` writes every message the program and
its checks give, with ``…`` for the parts that vary; each record of bad input asserts through
:func:`undocumented` that its messages are there."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from components import settings
from tests.support import cluster, pki

TROUBLESHOOTING = cluster.ROOT / "docs" / "troubleshooting.md"
CONFIG_PREFIX = f"config {settings.PROJECT}:"
WILDCARD = "…"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")

#: The stand-in cluster's names as the docs write them; longer names first (a secret name is a
#: prefix of its domain).
_NAMES = sorted(
    {
        cluster.ALB_DOMAIN: "<albDomain>",
        cluster.GATEWAY_DOMAIN: "<gatewayDomain>",
        cluster.ALB_SECRET: "<albSecret>",
        cluster.GATEWAY_SECRET: "<gatewaySecret>",
        pki.ALB_DOMAIN: "<albDomain>",
        pki.GATEWAY_DOMAIN: "<gatewayDomain>",
        pki.ALB_SECRET_NAME: "<albSecret>",
        pki.GATEWAY_SECRET_NAME: "<gatewaySecret>",
    }.items(),
    key=lambda item: -len(item[0]),
)


def prose(text: str) -> str:
    """The text outside fenced code blocks (links and headings there are not links or headings)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def code_spans(text: str) -> list[str]:
    """Inline code spans, line by line; a double-backtick span loses its padding space."""
    spans = []
    for line in prose(text).splitlines():
        for ticks, body in CODE_SPAN.findall(line):
            spans.append(body[1:-1] if len(ticks) > 1 and body.startswith(" ") and body.endswith(" ") else body)
    return spans


def as_documented(message: str) -> str:
    """A recorded message as the page writes it: config prefix off, names as placeholders, no times."""
    if message.startswith(CONFIG_PREFIX):
        message = message[len(CONFIG_PREFIX):]
    for name, placeholder in _NAMES:
        message = message.replace(name, placeholder)
    return TIMESTAMP.sub("<time>", message)


@functools.lru_cache(maxsize=1)
def patterns() -> tuple[re.Pattern[str], ...]:
    """Each code span of the page as a pattern: ``…`` stands for any text, the rest is literal.

    Spans with fewer than 25 literal characters are not messages (``…``, ``tls.crt``) and are left out.
    """
    found = []
    for span in code_spans(TROUBLESHOOTING.read_text(encoding="utf-8")):
        pieces = TIMESTAMP.sub("<time>", span).split(WILDCARD)
        if sum(len(p) for p in pieces) >= 25:
            found.append(re.compile(".+?".join(re.escape(p) for p in pieces)))
    return tuple(found)


def is_documented(message: str) -> bool:
    return any(p.fullmatch(as_documented(message)) for p in patterns())


def undocumented(records: Iterable[tuple[str, str]]) -> list[str]:
    """``case: message`` for each (case, message) the page lacks; empty messages are checked elsewhere."""
    return sorted({f"{case}: {as_documented(message)}" for case, message in records if message and not is_documented(message)})
