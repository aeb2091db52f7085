"""Who may send to the receivers: bearer tokens and TLS, the same on every port.

Tokens come from `collector.auth_tokens` (config file or `POLICYSCOPE_AUTH_TOKENS`,
comma-separated) and/or `collector.auth_token_file` (one token per line, `#` comments), which
is re-read when it changes -- rotate a token by editing the file, no restart. A token file
that does not exist yet is created (0600) with one random token. A request must
carry `Authorization: Bearer <token>` (gRPC: the `authorization` metadata, as OTLP exporters
send `headers`); without one, or with an unknown one, it is refused (401 / UNAUTHENTICATED)
before its body is read. Tokens are compared in constant time, kept only as digests, and never
logged.

TLS (`tls_cert_file` + `tls_key_file`) applies to OTLP/HTTP and OTLP/gRPC alike; with
`tls_client_ca_file`, clients must present a certificate that CA signed (mTLS).

A receiver bound beyond loopback with no token and no client certificates would take data from
anyone who can reach it: `check_exposure` refuses to start then, unless
`allow_unauthenticated` says this is deliberate (e.g. behind an authenticating proxy).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import ssl
import threading
import time
from pathlib import Path

from collector.config import CollectorConfig
from core.config import ConfigError
from collector.errors import PermanentError

log = logging.getLogger(__name__)

RELOAD_EVERY = 1.0  # seconds between checks of the token file's modification time


class Unauthenticated(PermanentError):
    """No valid bearer token (401 / UNAUTHENTICATED)."""

    http_status = 401


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def read_token_file(path: Path) -> list[str]:
    tokens = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            tokens.append(line)
    return tokens


class TokenAuth:
    """The receivers' bearer-token check; `enabled` is False when no token is configured."""

    def __init__(self, tokens: list[str], token_file: Path | None):
        self._static = [_digest(t) for t in tokens if t]
        self._file = token_file
        self._from_file: list[bytes] = []
        self._file_stamp: tuple[int, int] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        if token_file is not None:
            if not token_file.exists():
                self._create(token_file)
            self._reload(force=True)

    @staticmethod
    def _create(path: Path) -> None:
        """A first start: write one random token, readable by this user only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write("# bearer tokens OTLP emitters send (Authorization: Bearer <token>), "
                         "one per line; re-read when this file changes\n"
                         f"{secrets.token_urlsafe(32)}\n")
        log.warning("auth_token_file %s did not exist: created it with a new random token "
                    "(read it there and give it to emitters)", path)

    @property
    def enabled(self) -> bool:
        return bool(self._static) or self._file is not None

    def _reload(self, force: bool = False) -> None:
        assert self._file is not None
        try:
            stat = self._file.stat()
        except OSError as exc:
            if force:
                raise OSError(f"cannot read auth_token_file {self._file}: {exc}") from exc
            log.error("cannot read auth_token_file %s (%s); keeping the tokens read before",
                      self._file, exc)
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._file_stamp:
            return
        if stat.st_mode & 0o077:
            log.warning("auth_token_file %s is readable by other users (mode %o); "
                        "chmod 600 it", self._file, stat.st_mode & 0o777)
        tokens = read_token_file(self._file)
        self._from_file = [_digest(t) for t in tokens]
        self._file_stamp = stamp
        if not force:
            log.info("auth_token_file %s reloaded: %d tokens", self._file, len(tokens))
        elif not tokens:
            log.warning("auth_token_file %s holds no token: every request will be refused",
                        self._file)

    def _digests(self) -> list[bytes]:
        if self._file is not None:
            now = time.monotonic()
            if now - self._checked_at >= RELOAD_EVERY:
                with self._lock:
                    if now - self._checked_at >= RELOAD_EVERY:
                        self._checked_at = now
                        self._reload()
        return self._static + self._from_file

    def check(self, authorization: str | None) -> None:
        """Raise Unauthenticated unless `authorization` is `Bearer <a known token>`."""
        if not self.enabled:
            return
        if not authorization:
            raise Unauthenticated("this collector requires a bearer token: send "
                                  "'Authorization: Bearer <token>'")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        offered = _digest(token.strip())
        known = False
        for digest in self._digests():  # no early exit: the time does not tell which matched
            known |= hmac.compare_digest(offered, digest)
        if not known:
            raise Unauthenticated("the bearer token is not one this collector accepts")


def token_auth(config: CollectorConfig) -> TokenAuth:
    return TokenAuth([t.get_secret_value() for t in config.auth_tokens],
                     config.auth_token_file)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise OSError(f"cannot read {what} {path}: {exc}") from exc


def check_tls(config: CollectorConfig) -> None:
    """The TLS settings go together (checked when the collector starts: the config loader
    sets one setting at a time)."""
    if (config.tls_cert_file is None) != (config.tls_key_file is None):
        raise ConfigError("tls_cert_file and tls_key_file go together")
    if config.tls_client_ca_file is not None and config.tls_cert_file is None:
        raise ConfigError("tls_client_ca_file (mTLS) needs tls_cert_file and tls_key_file")


def http_ssl_context(config: CollectorConfig) -> ssl.SSLContext | None:
    """The OTLP/HTTP receiver's TLS context, or None for plain HTTP."""
    if config.tls_cert_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
        if config.tls_client_ca_file is not None:
            context.load_verify_locations(config.tls_client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise OSError(f"cannot load the TLS certificate/key/CA: {exc}") from exc
    return context


def grpc_credentials(config: CollectorConfig):
    """The OTLP/gRPC receiver's server credentials, or None for plaintext."""
    import grpc

    if config.tls_cert_file is None:
        return None
    assert config.tls_key_file is not None
    ca = None
    if config.tls_client_ca_file is not None:
        ca = _read(config.tls_client_ca_file, "tls_client_ca_file")
    return grpc.ssl_server_credentials(
        [(_read(config.tls_key_file, "tls_key_file"), _read(config.tls_cert_file,
                                                              "tls_cert_file"))],
        root_certificates=ca, require_client_auth=ca is not None)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_exposure(config: CollectorConfig) -> None:
    """Refuse to serve beyond loopback with nobody authenticated (see the module doc)."""
    exposed = [f"{host}:{port}" for host, port in ((config.http_host, config.http_port),
                                                   (config.grpc_host, config.grpc_port))
               if not is_loopback(host)]
    if not exposed or config.allow_unauthenticated:
        return
    if config.auth_tokens or config.auth_token_file is not None \
            or config.tls_client_ca_file is not None:
        return
    raise PermissionError(
        f"refusing to listen on {', '.join(exposed)} without authentication: anyone who "
        "can reach it could write events. Set auth_tokens or auth_token_file (or "
        "tls_client_ca_file for mTLS), bind to 127.0.0.1, or set allow_unauthenticated: true "
        "(POLICYSCOPE_ALLOW_UNAUTHENTICATED=true) if something in front authenticates.")
