"""Every use of Pulumi's private internals, in one place, for :mod:`tools.mock_program`.

The public mocks API (``pulumi.runtime.set_mocks`` with a ``Mocks``) answers resource
registrations, but an offline render must also see what the engine would see: each resource's
parent, dependencies and secret inputs, and the stack's outputs after a run.  That needs the
names below, which are not part of Pulumi's documented API and may change in any release.
``requirements-dev.txt`` pins the pulumi minor they were written against; when upgrading it,
this module is the one to re-read (tests/test_program.py and tests/test_render.py exercise
every name here).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pulumi.runtime import rpc
from pulumi.runtime import settings as _settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

T = TypeVar("T")

#: How the wire format marks a secret: ``{SIG_KEY: SECRET_SIG, "value": ...}`` (private names).
SIG_KEY: str = rpc._special_sig_key
SECRET_SIG: str = rpc._special_secret_sig

#: The engine's marker for a value not known yet (preview); public, re-exported for one import.
UNKNOWN: str = rpc.UNKNOWN

#: ``set_mocks(monitor=...)`` takes a MockMonitor: subclassing it (its gRPC method names
#: ``RegisterResource``/``ReadResource`` and its ``resources`` map) is how the renderer records
#: requests.  Neither the override points nor the map are documented.
RecordingMonitorBase = MockMonitor

#: Turns a request's protobuf ``Struct`` into Python values (secrets kept wrapped).
deserialize_properties = rpc.deserialize_properties


def reset_runtime() -> None:
    """Forget the previous run's root resource, pending RPCs and outputs, so one process can run
    the program many times (``set_mocks`` alone does not reset them)."""
    _settings.ROOT.set(None)
    _settings.SETTINGS.rpc_manager.clear()
    _settings.SETTINGS.outputs.clear()


def run_program(body: Callable[[], None]) -> None:
    """Run a program body to completion as the language host would (waiting for every output)."""
    _sync_await(run_pulumi_func(body))


def wait(awaitable: Awaitable[T]) -> T:
    """Block on one of Pulumi's futures from synchronous code, on Pulumi's own event loop."""
    return _sync_await(awaitable)


def root_outputs() -> dict[str, Any]:
    """The stack's exported outputs (``pulumi.export``) of the run that just ended."""
    root = _settings.get_root_resource()
    return dict(getattr(root, "outputs", {}) or {})
