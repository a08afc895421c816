"""User-facing errors: one paragraph naming file:line, the key, what was expected and found."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None = None  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class UserError(Exception):
    """A mistake in the user's input. The CLI prints it and exits 2, never a traceback."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        where: Location | None = None,
        key: str | None = None,
        expected: str | None = None,
        found: object = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.where = where
        self.key = key
        self.expected = expected
        self.found = found
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.where}: " if self.where else ""
        parts = [f"error: {head}{self.message}"]
        if self.key:
            parts.append(f"key: {self.key}")
        if self.expected:
            parts.append(f"expected: {self.expected}")
        if self.found is not None:
            parts.append(f"found: {_short(self.found)}")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n  ".join(parts)


class NotLocked(UserError):
    """A pin images.yaml asks for that the lock does not have yet (not a stale or malformed one): `validate` and `list`
    go on without it, what must write the pin fails, naming the images.yaml entry that asks for it."""


class OperationError(Exception):
    """An environment failure (engine, network, registry): exit 1 with a one-line message."""

    exit_code = 1


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
