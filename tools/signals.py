"""Stop signals for the command-line tools: SIGINT, SIGTERM and SIGHUP become :class:`Interrupted`
in the main thread, so a tool unwinds through its ``finally`` blocks (the loopback data plane stops
every process it started and removes its key files), and the few steps that must not be cut in
two hold a signal back until they are done."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

#: The signals that ask a run to stop: Ctrl-C, ``kill``, a closed terminal.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived.  A KeyboardInterrupt, so code that catches ``Exception`` (and
    asyncio, and subprocess) lets it through exactly as it lets Ctrl-C through."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + self.signum


_held = 0
_pending: int | None = None
_received: int | None = None


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    global _pending, _received
    _received = _received or signum  # remembered: a library may swallow the exception (see check_signals)
    if _held:
        _pending = signum  # raised when the held section ends
        return
    raise Interrupted(signum)


def check_signals() -> None:
    """Raise :class:`Interrupted` if a stop signal arrived under :func:`stop_on_signals`, even if
    the exception it raised was lost: pulumi_kubernetes' lazy imports, for one, turn it into an
    AttributeError, and the program's run then looks like a refusal."""
    if _received is not None:
        raise Interrupted(_received)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """A section a stop signal must not cut in two: a signal that arrives inside is raised as
    :class:`Interrupted` when it ends.  (Under Python's default handlers, a no-op.)"""
    global _held, _pending
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _pending is not None:
            signum, _pending = _pending, None
            raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals(*, restore: bool = True) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread while inside, so
    ``finally`` blocks (and :meth:`LoopbackDataPlane.stop`) run.  After, the previous handlers
    come back, or with ``restore=False`` (a command about to exit, with nothing left to stop) the
    default action, so a late signal ends the process quietly instead of raising somewhere in the
    interpreter's shutdown.  A signal that was ignored (``nohup``) stays ignored.  Off the main
    thread, where no handler can be set, a no-op."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received = None
    previous: dict[signal.Signals, Any] = {}
    try:
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) != signal.SIG_IGN:
                previous[signum] = signal.signal(signum, _on_stop_signal)
        yield
    finally:
        for signum, handler in previous.items():
            if not restore or handler is None:
                handler = signal.SIG_DFL
            signal.signal(signum, handler)
