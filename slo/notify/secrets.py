"""Secrets by reference: `env:NAME` reads an environment variable, `file:/path` reads a file
(trailing whitespace stripped, as written by `echo` or a Kubernetes secret mount).

The config holds only the reference; the value is resolved once at start-up and kept inside a
`Secret`, whose repr and str show the reference, never the value. Call `reveal()` at the one
place a value is put on the wire.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REFERENCE_PREFIXES = ("env:", "file:")


class SecretError(ValueError):
    """A secret reference cannot be resolved; the message names the config key and the
    reference (never the value)."""


def is_reference(value: str) -> bool:
    return value.startswith(REFERENCE_PREFIXES)


class Secret:
    """A resolved secret value. `repr()` shows where it came from, not what it is."""

    __slots__ = ("_source", "_value")

    def __init__(self, value: str, source: str = "<value>"):
        self._value = value
        self._source = source

    @classmethod
    def resolve(cls, reference: str, *, key: str,
                env: Mapping[str, str] | None = None) -> Secret:
        """Resolve `env:NAME` or `file:/path`; `key` names the config key for errors."""
        environ = os.environ if env is None else env
        if reference.startswith("env:"):
            name = reference[4:]
            if not name:
                raise SecretError(f"{key}: reference {reference!r} names no variable; "
                                  f"expected env:NAME")
            if name not in environ:
                raise SecretError(f"{key}: environment variable {name} is not set "
                                  f"(from {reference})")
            value = environ[name].strip()
        elif reference.startswith("file:"):
            path = Path(reference[5:]).expanduser()
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SecretError(f"{key}: cannot read secret file {path} "
                                  f"({exc.strerror or exc.__class__.__name__})") from exc
        else:
            raise SecretError(f"{key}: {cls._describe(reference)} is not a reference; expected "
                              f"env:NAME or file:/path (secrets are never written in clear)")
        if not value:
            raise SecretError(f"{key}: {reference} is empty")
        return cls(value, reference)

    @staticmethod
    def _describe(value: str) -> str:
        # Never echo what may be a secret pasted in clear.
        return f"value of {len(value)} characters"

    @property
    def source(self) -> str:
        """Where the value came from, e.g. 'env:SLACK_URL'; safe to log."""
        return self._source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self._source!r})"

    __str__ = __repr__

    def __reduce__(self):  # pickling would carry the value out of the process
        raise TypeError("Secret values are not picklable")


def reveal(value: str | Secret) -> str:
    """The plain value of a Secret, or the string itself for non-secret settings."""
    return value.reveal() if isinstance(value, Secret) else value
