"""Schema checks for the tests: built-in kinds against the official Kubernetes schemas that
``kubernetes-validate`` ships (strict: unknown fields rejected), custom resources against
whatever CRD files a :class:`CrdCatalog` was given (Istio's, Traefik's, ...), made strict the way
the API server prunes: a field the schema does not declare is an error here, because the API
server would silently drop it (a misspelt ``credentialName`` would leave the gateway without
mutual TLS).  Adding a CRD-backed kind is adding its CRD file to :data:`CRD_FILES`, nothing else.

The CRDs are read in place from ``shared/reference`` beside the checkout (never copied into the
project; ``SHARED_REFERENCE_DIR`` overrides).  Without it the CRD tests skip, except with
``CI=true``, where they fail.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from tests.support.cluster import ROOT

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


#: A Secret (or ConfigMap) key as the API server validates it (``IsConfigMapKey``).
_SECRET_KEY: Final = re.compile(r"^[-._a-zA-Z0-9]+$")
#: The keys the API server requires of a Secret of a given type (``ValidateSecret``).
_SECRET_TYPE_KEYS: Final = {"kubernetes.io/tls": ("tls.crt", "tls.key")}


def secret_problems(manifest: Mapping[str, Any]) -> list[str]:
    """What the API server refuses in a Secret beyond its schema (empty: it passes): every key a valid
    one, and the keys its type requires (``stringData`` is merged into ``data`` before the check)."""
    keys = [*(manifest.get("data") or {}), *(manifest.get("stringData") or {})]
    out = [
        f"key {key!r} is not a valid Secret key (letters, digits, '-', '_' or '.', at most 253, not '.' or '..')"
        for key in keys
        if len(key) > 253 or not _SECRET_KEY.match(key) or key in (".", "..") or key.startswith("..")
    ]
    for required in _SECRET_TYPE_KEYS.get(str(manifest.get("type") or ""), ()):
        if required not in keys:
            out.append(f"a {manifest.get('type')} Secret needs key {required} (in data or stringData)")
    return out


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


def _go_duration_seconds(text: str) -> float | None:
    if not _GO_DURATION.match(text):
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def evaluate_cel(rule: str, value: Any) -> bool | None:
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
    crds: CrdCatalog | None = None

    def problems(self, manifest: Mapping[str, Any]) -> list[str]:
        if is_custom(manifest):
            if self.crds is None:
                return [f"no CRD catalog to check {manifest.get('apiVersion')} {manifest.get('kind')} against"]
            return self.crds.problems(manifest, metadata_version=self.versions[-1])
        return [p for version in self.versions for p in builtin_problems(manifest, version)]


# --- the reference CRDs and the versions -----------------------------------------------------

_CANDIDATES = [ROOT.parent / "shared" / "reference", Path("/work/shared/reference")]
REFERENCE = Path(
    os.environ.get("SHARED_REFERENCE_DIR", "") or next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
)
#: API group -> its CRD file under shared/reference.
CRD_FILES: dict[str, str] = {
    "networking.istio.io": "istio/crd-all.gen-1.30.3.yaml",
    "traefik.io": "traefik/traefik.io_serverstransports.yaml",
}


def crd_catalog() -> CrdCatalog:
    """The catalogued CRDs, or a clean skip (a failure with CI=true) when the reference is absent."""
    missing = [REFERENCE / f for f in CRD_FILES.values() if not (REFERENCE / f).is_file()]
    if missing:
        names = ", ".join(str(m) for m in missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{names} missing, and CI=true requires the reference CRDs")
        pytest.skip(f"{names} not here (shared/reference is laid beside the checkout in CI)")
    return _load_catalog()


@functools.lru_cache(maxsize=1)
def _load_catalog() -> CrdCatalog:
    return CrdCatalog.from_files(REFERENCE / f for f in CRD_FILES.values())


VERSIONS = k8s_versions()
_BUILTIN_CACHE: dict[str, list[str]] = {}


def every_version_problems(manifest: dict[str, Any]) -> list[str]:
    """Strict problems in every Kubernetes minor, each distinct object validated once per session."""
    key = json.dumps(manifest, sort_keys=True)
    if key not in _BUILTIN_CACHE:
        _BUILTIN_CACHE[key] = SchemaBook(VERSIONS).problems(manifest)
    return _BUILTIN_CACHE[key]
