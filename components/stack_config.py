"""A stack's configuration read straight from ``Pulumi.<stack>.yaml``, for the offline tools.

``rehearse`` and ``render`` run the program without the Pulumi CLI, so they read the stack
file themselves.  Values stay as YAML gave them (the program's own parser takes natives as
well as the CLI's strings); ``Pulumi.yaml``'s defaults need not be merged because the
program applies the same defaults itself (tests check the two agree).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .settings import PROJECT

PROJECT_DIR = Path(__file__).resolve().parent.parent


class StackConfigError(ValueError):
    """The stack file is missing, unreadable, or holds a value the offline tools cannot read."""


def stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def read_stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """This project's keys (without the ``iks-alb-istio-mtls:`` prefix) from the stack file.

    Encrypted (``secure:``) values cannot be read without the CLI: refused with the key named.
    """
    path = stack_file(stack, project_dir)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise StackConfigError(f"{path.name} not found: no stack {stack!r} in {project_dir}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise StackConfigError(f"{path.name} cannot be read: {exc}") from None
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackConfigError(f"{path.name}: config is not a map")
    prefix = f"{PROJECT}:"
    out: dict[str, Any] = {}
    for key, value in config.items():
        if not str(key).startswith(prefix):
            continue
        name = str(key)[len(prefix):]
        if isinstance(value, dict) and "secure" in value:
            raise StackConfigError(
                f"config {PROJECT}:{name} is encrypted in {path.name}; the offline tools cannot decrypt it"
            )
        out[name] = value
    return out
