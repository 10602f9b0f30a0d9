"""The program's Kubernetes objects as a reviewer reads them: ordered and redacted.

Pure (no Pulumi import): the offline render (:mod:`tools.render`) writes its files with it.
Schema checks against Kubernetes' and the CRDs' schemas are test support
(:mod:`tests.support.schemas`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import yaml

# --- redaction -------------------------------------------------------------------------------

REDACTED: Final = "<redacted>"
#: Any PEM private key: PKCS#8, "RSA", "EC", "ENCRYPTED", "OPENSSH" ...
PRIVATE_KEY_RE: Final = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_CERT_RE: Final = re.compile(r"-----BEGIN CERTIFICATE-----")
_PATH_TOKEN: Final = re.compile(r"\[(\d+)\]")


def _as_text(value: Any) -> str:
    """A secret value as text: ``data`` values are base64, ``stringData`` values plain."""
    if not isinstance(value, str):
        return json.dumps(value)
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return value
    return decoded if "-----BEGIN" in decoded else value


def redacted_value(value: Any) -> str:
    """What a reviewer may see of a secret value: how many certificates it holds, nothing else."""
    if isinstance(value, str) and value.startswith(REDACTED[:-1]):
        return value  # redacted already
    text = _as_text(value)
    certs = len(_CERT_RE.findall(text))
    if certs and not PRIVATE_KEY_RE.search(text):
        return f"<redacted: {certs} PEM certificate{'s' if certs > 1 else ''}>"
    return REDACTED


def _redact_all(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_all(v) for v in value]
    return redacted_value(value)


def _redact_at(node: Any, path: str) -> None:
    """Redact the value at a Pulumi secret path such as ``stringData`` or ``spec.a[0].b``.

    Keys may contain dots (``tls.crt``), so each step takes the longest key the path starts with.
    """
    while path:
        match = _PATH_TOKEN.match(path)
        if match and isinstance(node, list):
            index, rest = int(match.group(1)), path[match.end():].lstrip(".")
            if index >= len(node):
                return
            if not rest:
                node[index] = _redact_all(node[index])
                return
            node, path = node[index], rest
            continue
        if not isinstance(node, dict):
            return
        keys = [k for k in node if path == k or path.startswith((k + ".", k + "["))]
        if not keys:
            return
        key = max(keys, key=len)
        rest = path[len(key):].lstrip(".")
        if not rest:
            node[key] = _redact_all(node[key])
            return
        node, path = node[key], rest


def redact(manifest: Mapping[str, Any], secret_paths: Sequence[str] = ()) -> dict[str, Any]:
    """The manifest with Pulumi-secret values and every Secret value replaced, keys kept.

    A Secret's values are redacted whatever Pulumi knows about them: a reviewer needs to see
    which keys exist, never what they hold.  (Renders then also stay identical between runs,
    although the stand-in PKI makes new keys each time.)
    """
    out = copy.deepcopy(dict(manifest))
    for path in secret_paths:
        _redact_at(out, path)
    if out.get("kind") == "Secret" and out.get("apiVersion") == "v1":
        for key in ("data", "stringData"):
            if isinstance(out.get(key), dict):
                out[key] = {k: redacted_value(v) for k, v in out[key].items()}
    return out


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a nested value, with its dotted path (keys included: they are text too)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            yield sub, str(key)
            yield from strings(item, sub)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")


def substitute(value: Any, replace: Callable[[str], str]) -> Any:
    """``value`` with ``replace`` applied to every string (dict keys included)."""
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, dict):
        return {replace(k) if isinstance(k, str) else k: substitute(v, replace) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, replace) for v in value]
    return value


# --- files -----------------------------------------------------------------------------------

_TOP_ORDER: Final = ("apiVersion", "kind", "metadata", "type", "immutable", "spec", "data", "stringData")
_META_ORDER: Final = ("name", "namespace", "labels", "annotations")


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _ordered(mapping: Mapping[str, Any], first: Sequence[str]) -> dict[str, Any]:
    keys = [k for k in first if k in mapping] + sorted(k for k in mapping if k not in first)
    return {k: mapping[k] for k in keys}


def canonical(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Stable key order (``apiVersion``, ``kind``, ``metadata`` first; the rest sorted), for diffs."""
    out = {k: _sorted(v) for k, v in manifest.items()}
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = _ordered(out["metadata"], _META_ORDER)
    return _ordered(out, _TOP_ORDER)


def file_name(index: int, manifest: Mapping[str, Any]) -> str:
    """``NN-kind-namespace-name.yaml``: sorted by name, the files list in dependency order."""
    meta = manifest.get("metadata") or {}
    parts = [str(manifest.get("kind", "object")), str(meta.get("namespace") or ""), str(meta.get("name") or "")]
    stem = "-".join(re.sub(r"[^a-z0-9.-]+", "", p.lower()).strip(".-") for p in parts if p)
    return f"{index:02d}-{stem}.yaml"


def to_yaml(manifest: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """One object as YAML, after ``#`` header lines."""
    body = yaml.safe_dump(canonical(manifest), sort_keys=False, default_flow_style=False, width=120, allow_unicode=True)
    return "".join(f"# {line}\n" if line else "#\n" for line in header) + body


def dependency_steps(dependencies: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Step (1, 2, ...) of each node: one more than the latest of its dependencies.

    Nodes of one step wait for nothing in the same or a later step, so the engine may run them
    in parallel.  Dependencies outside the mapping (component resources) are ignored.
    """
    steps: dict[str, int] = {}
    visiting: set[str] = set()

    def step(node: str) -> int:
        if node in steps:
            return steps[node]
        if node in visiting:
            raise ValueError(f"dependency cycle through {node}")
        visiting.add(node)
        before = [step(dep) for dep in dependencies[node] if dep in dependencies and dep != node]
        visiting.discard(node)
        steps[node] = 1 + max(before, default=0)
        return steps[node]

    for node in dependencies:
        step(node)
    return steps
