"""A wrapper that keeps secrets out of reprs, logs and tracebacks."""

from __future__ import annotations

__all__ = ["Secret"]


class Secret:
    """A secret string. ``repr``/``str`` are masked; ``reveal()`` returns the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("stickyctx.Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)
