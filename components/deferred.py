"""Run a pure spec builder while some of its values are still unknown (``pulumi preview``).

``Output.all(...).apply(builder)`` makes the *whole* spec unknown until every value is known:
a stack's first preview would then show the Gateway's spec and the Ingress's annotations as
unknown, and the policy pack could check none of them.  Instead the builder runs at once on
markers that stand for the pending values; :meth:`Deferred.resolve` then puts each value back
where its marker landed, so only those leaves stay unknown (``credentialName``,
``proxy-ssl-name``, the hosts) and ``mode: MUTUAL``, the pinned SANs and every other literal
are plain to see in the preview.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

_OPEN = "\x00deferred-"
_CLOSE = "\x00"


class Deferred:
    """Markers for pending values, and the substitution that puts the values back."""

    def __init__(self) -> None:
        self._values: dict[str, pulumi.Input[Any]] = {}

    def _mark(self, value: pulumi.Input[Any]) -> str:
        marker = f"{_OPEN}{len(self._values)}{_CLOSE}"
        self._values[marker] = value
        return marker

    def text(self, value: pulumi.Input[Any]) -> str:
        """A scalar value: the marker may end up alone (the value, as it is) or inside a longer
        string (the value as text)."""
        return self._mark(value)

    def items(self, value: pulumi.Input[Sequence[str]]) -> list[str]:
        """A list value: the builder copies the one-marker list, which becomes the list."""
        return [self._mark(value)]

    def resolve(self, built: Any) -> Any:
        """``built`` with every marker replaced by its (possibly unknown) value."""
        if isinstance(built, Mapping):
            return {key: self.resolve(value) for key, value in built.items()}
        if isinstance(built, (list, tuple)):
            if len(built) == 1 and isinstance(built[0], str) and built[0] in self._values:
                return self._values[built[0]]
            return [self.resolve(item) for item in built]
        if isinstance(built, str) and _OPEN in built:
            if built in self._values:
                return self._values[built]
            used = [marker for marker in self._values if marker in built]

            def fill(values: list[Any]) -> str:
                text = built
                for marker, value in zip(used, values, strict=True):
                    text = text.replace(marker, str(value))
                return text

            return pulumi.Output.all(*(self._values[m] for m in used)).apply(fill)
        return built
