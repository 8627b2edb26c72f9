"""Errors with the location a user needs to fix their input, and the retry contract of backends."""

from __future__ import annotations


class ContamError(Exception):
    """Base of every error contam raises on purpose."""


class InputError(ContamError):
    """The user's input is wrong (CLI exit code 2). Says which file, line or row, and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.row = row
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}" if where else f"line {self.line}"
        elif self.row is not None:
            where += f" row {self.row}" if where else f"row {self.row}"
        parts = [where] if where else []
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        parts.append(self.message)
        return ": ".join(parts)


class BenchmarkError(InputError):
    """A benchmark file or mapping is malformed."""


class ModelSpecError(InputError):
    """A model spec (`hf:PATH`, `openai:NAME@URL`, ...) does not parse or names nothing usable."""


class BackendUnavailable(ContamError):
    """A backend's optional dependency is missing or the backend is not built yet (CLI exit code 2,
    like an input error: the user fixes it, usually with the `pip install 'contam[EXTRA]'` it names)."""


class TransientModelError(ContamError):
    """A model call failed in a way worth retrying (429, 5xx, dropped connection, timeout).

    `retry_after` carries a server's Retry-After hint in seconds, if it gave one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelCallError(ContamError):
    """A model call failed for good (bad request, retries exhausted)."""
