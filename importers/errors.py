"""What an import refuses, and why: every message names the file, the position (a JSON path
such as `$.items[3].results[0].result`, or `line 12`) and what was expected there."""

from __future__ import annotations


class ImporterError(Exception):
    """Base of the importers' errors."""


class MalformedInput(ImporterError):
    """The input is not what its KIND reads; nothing of it is imported."""

    def __init__(self, source: str, position: str, expected: str, got: object = None):
        self.source, self.position, self.expected = source, position, expected
        message = f"{source}: at {position}: expected {expected}"
        if got is not None:
            message += f", got {_show(got)}"
        super().__init__(message)


class DeliveryFailed(ImporterError):
    """The events could not be made durable (collector refused or unreachable, storage
    failed); the snapshots were not advanced, so re-running the import is safe."""


def _show(value: object) -> str:
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
