"""User-facing errors.

Every error a user can cause (a wrong name, a missing package, a corrupt file) is a
:class:`LayerguardError` carrying *what* went wrong and *what to do*. The CLI prints
both and exits non-zero without a traceback; library callers can catch one type.
"""

from __future__ import annotations


class LayerguardError(Exception):
    """Base class of errors caused by user input or the user's environment.

    Args:
        message: What was wrong, naming the offending value or file.
        hint: What the user can do about it (a command to run, a flag to pass).
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UnknownModelError(LayerguardError):
    """A model name that is neither embedded, a local path nor a hub id."""


class MissingPackageError(LayerguardError):
    """An optional package that a feature needs is not installed."""


class CorruptModelError(LayerguardError):
    """A model file exists but is truncated, corrupt or fails its checksum."""


class TemplateError(LayerguardError):
    """A chat template that cannot be rendered or whose positions cannot be found."""


class InvalidInputError(LayerguardError):
    """Malformed arguments or data: a layer out of range, an empty dataset, a bad file."""


class OfflineError(LayerguardError):
    """Something needs the network (a hub id) and the network is not reachable."""
