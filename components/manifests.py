"""The program's Kubernetes objects as a reviewer reads them: ordered, redacted, schema-checked.

Pure (no Pulumi import), shared by the offline render (:mod:`components.render`) and the tests.
The schema checks import ``kubernetes-validate`` and ``jsonschema`` (test dependencies) only
when called, so the Pulumi program never needs them.

Schemas are looked up by ``apiVersion``/``kind``: built-in kinds in the official Kubernetes
schemas that ``kubernetes-validate`` ships (strict: unknown fields rejected), custom resources in
whatever CRD files a :class:`CrdCatalog` was given (Istio's, Traefik's, ...), made strict the way
the API server prunes: a field the schema does not declare is an error here, because the API
server would silently drop it (a misspelt ``credentialName`` would leave the gateway without
mutual TLS).  Adding a CRD-backed kind is adding its CRD file to the catalog, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Final, Optional

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


# --- schemas ---------------------------------------------------------------------------------

#: The oldest Kubernetes minor the schema checks cover (IKS still supports it in 2026).
MIN_K8S_VERSION: Final = (1, 28)


def api_group(api_version: str) -> str:
    """``networking.istio.io/v1`` -> ``networking.istio.io``; ``v1`` -> ``""`` (core)."""
    return api_version.rpartition("/")[0]


def is_custom(manifest: Mapping[str, Any]) -> bool:
    """A CRD-backed kind: its group is a domain that is not one of Kubernetes' own."""
    group = api_group(str(manifest.get("apiVersion", "")))
    return "." in group and not group.endswith(".k8s.io")


def k8s_versions(minimum: tuple[int, int] = MIN_K8S_VERSION) -> list[str]:
    """Every Kubernetes minor from ``minimum`` to the newest that kubernetes-validate ships."""
    from kubernetes_validate import utils

    minors = sorted({tuple(int(p) for p in v.split(".")[:2]) for v in utils.all_versions()})
    return [f"{a}.{b}" for a, b in minors if (a, b) >= minimum]


def _where(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def builtin_problems(manifest: Mapping[str, Any], version: str) -> list[str]:
    """Why the official strict schema of Kubernetes ``version`` refuses ``manifest`` (empty: it passes)."""
    import kubernetes_validate
    from kubernetes_validate import utils

    try:
        kubernetes_validate.validate(copy.deepcopy(dict(manifest)), version, strict=True)
    except utils.ValidationError as exc:
        return [f"Kubernetes {version}: {_where(exc.path)}: {exc.message}"]
    except utils.SchemaNotFoundError as exc:
        return [f"Kubernetes {version}: {exc.message}"]
    return []


# CEL rules (x-kubernetes-validations) the API server evaluates.  Offline, the forms the
# catalogued CRDs use are evaluated here; any other rule on a value an object sets is an error
# ("cannot evaluate"), so a check is never silently skipped.
_AT_MOST_ONE: Final = re.compile(r"^\s*\(has\(self\.\w+\) \? 1 : 0\)(\s*\+\s*\(has\(self\.\w+\) \? 1 : 0\))*\s*<=\s*1\s*$")
_NOT_BOTH: Final = re.compile(r"^\s*!has\(self\.(\w+)\)\s*\|\|\s*!has\(self\.(\w+)\)\s*$")
_MIN_DURATION: Final = re.compile(r"^\s*duration\(self\)\s*>=\s*duration\('([^']+)'\)\s*$")
_HAS: Final = re.compile(r"has\(self\.(\w+)\)")
_GO_DURATION: Final = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _go_duration_seconds(text: str) -> Optional[float]:
    if not _GO_DURATION.match(text):
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def evaluate_cel(rule: str, value: Any) -> Optional[bool]:
    """The result of one CEL rule on ``value``, or ``None`` when this module cannot evaluate it."""
    if _AT_MOST_ONE.match(rule) and isinstance(value, Mapping):
        return sum(1 for name in _HAS.findall(rule) if name in value) <= 1
    both = _NOT_BOTH.match(rule)
    if both and isinstance(value, Mapping):
        return not (both.group(1) in value and both.group(2) in value)
    minimum = _MIN_DURATION.match(rule)
    if minimum and isinstance(value, str):
        bound, actual = _go_duration_seconds(minimum.group(1)), _go_duration_seconds(value)
        if bound is None:
            return None
        return actual is not None and actual >= bound
    return None


def strict_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """A CRD's structural schema as JSON Schema that rejects what the API server would prune.

    An object without ``x-kubernetes-preserve-unknown-fields`` keeps only declared properties,
    so undeclared ones become errors (``additionalProperties: false``); ``nullable`` admits
    ``null``.  Logical combinators (``oneOf``, ``anyOf``, ``not``) only validate and are kept as
    they are.
    """
    out = {k: v for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        out["properties"] = {k: strict_schema(v) for k, v in properties.items()}
    if isinstance(node.get("items"), Mapping):
        out["items"] = strict_schema(node["items"])
    if isinstance(node.get("additionalProperties"), Mapping):
        out["additionalProperties"] = strict_schema(node["additionalProperties"])
    is_object = node.get("type") == "object" or (isinstance(properties, Mapping) and "type" not in node)
    if is_object and "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@dataclass(frozen=True)
class CrdVersion:
    """One served version of one custom resource kind, as its CRD declares it."""

    api_version: str
    kind: str
    schema: Mapping[str, Any]
    served: bool
    deprecated: bool
    source: str


@dataclass
class CrdCatalog:
    """Strict validators for custom resources, looked up by ``apiVersion`` and ``kind``."""

    versions: dict[tuple[str, str], CrdVersion] = field(default_factory=dict)
    _validators: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> CrdCatalog:
        """Every CRD in the given YAML files (multi-document files welcome)."""
        catalog = cls()
        for path in paths:
            text = Path(path).read_text(encoding="utf-8")
            for doc in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    catalog.add(doc, source=Path(path).name)
        return catalog

    def add(self, crd: Mapping[str, Any], *, source: str) -> None:
        spec = crd["spec"]
        for version in spec.get("versions") or []:
            api_version = f"{spec['group']}/{version['name']}"
            kind = spec["names"]["kind"]
            self.versions[(api_version, kind)] = CrdVersion(
                api_version=api_version,
                kind=kind,
                schema=(version.get("schema") or {}).get("openAPIV3Schema") or {},
                served=bool(version.get("served", False)),
                deprecated=bool(version.get("deprecated", False)),
                source=source,
            )

    def groups(self) -> set[str]:
        return {api_group(api_version) for api_version, _ in self.versions}

    def _validator(self, key: tuple[str, str]) -> Any:
        if key not in self._validators:
            import jsonschema

            crd = self.versions[key]
            schema = strict_schema(crd.schema)
            properties = dict(schema.get("properties") or {})
            # The API server checks these three itself; metadata is ObjectMeta (checked apart).
            properties.update({"apiVersion": {"const": crd.api_version}, "kind": {"const": crd.kind}, "metadata": {"type": "object"}})
            schema.update(
                properties=properties,
                required=sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"}),
                additionalProperties=False,
            )
            cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"x-kubernetes-validations": _cel_keyword})
            self._validators[key] = cls(schema)
        return self._validators[key]

    def problems(self, manifest: Mapping[str, Any], *, metadata_version: str) -> list[str]:
        """Why the CRD of ``manifest``'s apiVersion/kind refuses it (empty: it passes).

        ``metadata`` is checked against the strict ObjectMeta of Kubernetes ``metadata_version``.
        """
        key = (str(manifest.get("apiVersion")), str(manifest.get("kind")))
        if key not in self.versions:
            known = sorted(v for v, k in self.versions if k == key[1])
            return [f"no CRD in the catalog defines {key[1]} in {key[0]} (versions known: {', '.join(known) or 'none'})"]
        crd = self.versions[key]
        label = f"{crd.source} {crd.api_version} {crd.kind}"
        out = [] if crd.served else [f"{label}: this version is not served"]
        errors = sorted(self._validator(key).iter_errors(dict(manifest)), key=lambda e: list(map(str, e.absolute_path)))
        out += [f"{label}: {_where(e.absolute_path)}: {e.message}" for e in errors]
        meta = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": manifest.get("metadata") or {}}
        out += builtin_problems(meta, metadata_version)
        return out


def _cel_keyword(validator: Any, rules: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    import jsonschema

    for rule in rules or []:
        result = evaluate_cel(str(rule.get("rule", "")), instance)
        if result is None:
            yield jsonschema.ValidationError(f"cannot evaluate the CEL rule {rule.get('rule')!r} offline")
        elif not result:
            yield jsonschema.ValidationError(f"{rule.get('message') or 'fails'} (CEL: {rule.get('rule')})")


@dataclass
class SchemaBook:
    """Every schema one object is checked against: all Kubernetes minors, or its CRD."""

    versions: Sequence[str]
    crds: Optional[CrdCatalog] = None

    def problems(self, manifest: Mapping[str, Any]) -> list[str]:
        if is_custom(manifest):
            if self.crds is None:
                return [f"no CRD catalog to check {manifest.get('apiVersion')} {manifest.get('kind')} against"]
            return self.crds.problems(manifest, metadata_version=self.versions[-1])
        return [p for version in self.versions for p in builtin_problems(manifest, version)]
