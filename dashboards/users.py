"""The local users file of the dashboards (`dashboard_users_file`): who may log in, their role
and a salted argon2id hash of their password. `policyscope users ...` writes it; the login
form reads it.

    alice:
      role: analyst
      password_hash: $argon2id$v=19$m=65536,t=3,p=4$...
    carol@example.com:          # an OIDC identity: no password, the entry gives the role
      role: oncall

YAML, or JSON when the file's name ends in `.json`. Every write replaces the file atomically
(a 0600 temporary file in the same directory, fsync'd, renamed over it) under an exclusive
lock on the directory, so a reader never sees half a file and two writers never lose an
update. Passwords are never stored, logged or echoed; hashes come from argon2-cffi (RFC 9106
parameters) and are checked with its constant-time verify.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from dashboards.roles import ROLES, User, check_role

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")  # user names and emails
MIN_PASSWORD = 8
_warned: set[tuple[Path, int]] = set()  # (file, mode) already warned about


class UsersFileError(ValueError):
    """The users file is unreadable or invalid, or a change to it is refused; the message
    names the file and the offending user or value (never a password or hash)."""


@dataclass(frozen=True)
class Account:
    """One entry: `password_hash` None = no local login (an OIDC identity's role)."""

    name: str
    role: str
    password_hash: str | None = None

    @property
    def login(self) -> str:
        return "password" if self.password_hash else "oidc"


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise UsersFileError(f"user name {name!r} is not valid: 1-128 letters, digits and "
                             "._@+- starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UsersFileError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if "\n" in password or "\r" in password:
        raise UsersFileError("the password holds a line break")
    return password


@lru_cache(maxsize=8)
def _dummy_hash_for(params: tuple[int, ...]) -> str:
    time_cost, memory_cost, parallelism, hash_len, salt_len = params
    return PasswordHasher(time_cost, memory_cost, parallelism, hash_len,
                          salt_len).hash(os.urandom(16).hex())


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash with `hasher`'s parameters, made once per process: verifying against it costs
    what verifying a real one does."""
    return _dummy_hash_for((hasher.time_cost, hasher.memory_cost, hasher.parallelism,
                            hasher.hash_len, hasher.salt_len))


class UsersFile:
    """The users file at `path`. `hasher` is argon2-cffi's (its defaults unless a test
    passes cheaper parameters); it sets the parameters of new hashes only, since a hash
    carries its own."""

    def __init__(self, path: str | Path, hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self.hasher = hasher or PasswordHasher()

    # -- reading ---------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> dict[str, Account]:
        """Every account, by name; a missing file has none."""
        try:
            text = self.path.read_text()
            mode = self.path.stat().st_mode & 0o777
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise UsersFileError(f"cannot read the users file {self.path}: {exc}") from exc
        if mode & 0o077 and (self.path, mode) not in _warned:  # once, not on every read
            _warned.add((self.path, mode))
            log.warning("the users file %s is readable by others (mode %o); `policyscope "
                        "users` writes it 0600: chmod 600 it", self.path, mode)
        try:
            data = json.loads(text) if self._is_json else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            kind = "JSON" if self._is_json else "YAML"
            raise UsersFileError(f"the users file {self.path} is not valid {kind}: "
                                 f"{str(exc).splitlines()[0]}") from exc
        return self._parse(data or {})

    def get(self, name: str) -> Account | None:
        return self.load().get(name)

    def _parse(self, data: object) -> dict[str, Account]:
        where = f"the users file {self.path}"
        if not isinstance(data, dict):
            raise UsersFileError(f"{where} must map user names to {{role, password_hash}}, "
                                 f"got {type(data).__name__}")
        accounts = {}
        for name, entry in data.items():
            if not isinstance(entry, dict) or set(entry) - {"role", "password_hash"}:
                raise UsersFileError(f"{where}: user {name!r} must be a mapping of role and "
                                     "password_hash (nothing else)")
            role, password_hash = entry.get("role"), entry.get("password_hash")
            if role not in ROLES:
                raise UsersFileError(f"{where}: user {name!r} has role {role!r}; expected "
                                     f"one of {', '.join(ROLES)}")
            if password_hash is not None and not (isinstance(password_hash, str)
                                                  and password_hash.startswith("$argon2")):
                raise UsersFileError(f"{where}: user {name!r} has a password_hash that is not "
                                     "an argon2 hash (write it with `policyscope users`)")
            accounts[str(name)] = Account(str(name), role, password_hash)
        return accounts

    # -- logging in ------------------------------------------------------------------------

    def verify(self, name: str, password: str) -> User | None:
        """The user when `password` is theirs, else None. As slow for an unknown name or an
        account without a password as for a wrong password (a dummy hash is verified), so
        timing does not tell which names exist."""
        account = self.get(name)
        known = account is not None and account.password_hash is not None
        try:
            self.hasher.verify(account.password_hash if known else _dummy_hash(self.hasher),
                               password)
        except VerifyMismatchError:  # the password does not match
            return None
        except (InvalidHashError, VerificationError):  # the hash cannot be decoded
            log.error("the users file %s holds a damaged password hash for %r: set a new "
                      "password with `policyscope users set-password`", self.path, name)
            return None
        return User(account.name, account.role) if known else None

    # -- changing --------------------------------------------------------------------------

    def add(self, name: str, role: str, password: str | None) -> Account:
        """Add a user; `password` None = an OIDC identity (no local login). Refuses a name
        already there (`set_role` / `set_password` change one)."""
        check_name(name)
        self._role(role)
        password_hash = self.hasher.hash(check_password(password)) if password is not None \
            else None
        with self._changing() as accounts:
            if name in accounts:
                raise UsersFileError(f"user {name!r} already exists in {self.path}: use "
                                     "`users set-role` or `users set-password`")
            accounts[name] = Account(name, role, password_hash)
        log.info("users file %s: added %r (role %s, login by %s)", self.path, name, role,
                 accounts[name].login)
        return accounts[name]

    def remove(self, name: str) -> None:
        with self._changing() as accounts:
            self._existing(accounts, name)
            del accounts[name]
        log.info("users file %s: removed %r", self.path, name)

    def set_role(self, name: str, role: str) -> Account:
        self._role(role)
        with self._changing() as accounts:
            old = self._existing(accounts, name)
            accounts[name] = Account(name, role, old.password_hash)
        log.info("users file %s: %r is now %s (was %s)", self.path, name, role, old.role)
        return accounts[name]

    def set_password(self, name: str, password: str) -> None:
        password_hash = self.hasher.hash(check_password(password))
        with self._changing() as accounts:
            old = self._existing(accounts, name)
            accounts[name] = Account(name, old.role, password_hash)
        log.info("users file %s: new password for %r", self.path, name)

    def _role(self, role: str) -> None:
        try:
            check_role(role)
        except ValueError as exc:
            raise UsersFileError(str(exc)) from None

    def _existing(self, accounts: dict[str, Account], name: str) -> Account:
        if name not in accounts:
            raise UsersFileError(f"no user {name!r} in {self.path}"
                                 + (f"; users: {', '.join(sorted(accounts))}" if accounts
                                    else " (it has no users)"))
        return accounts[name]

    @contextmanager
    def _changing(self) -> Iterator[dict[str, Account]]:
        """Load under the directory's lock, let the caller change the accounts, write them
        back atomically; nothing is written when the caller raises."""
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            accounts = self.load()
            yield accounts
            self._write(accounts, fd)
        finally:
            os.close(fd)  # releases the lock

    def _write(self, accounts: dict[str, Account], folder_fd: int) -> None:
        data = {a.name: {"role": a.role, **({"password_hash": a.password_hash}
                                             if a.password_hash else {})}
                for a in sorted(accounts.values(), key=lambda a: a.name)}
        if self._is_json:
            text = json.dumps(data, indent=2) + "\n"
        else:
            text = ("# PolicyScope dashboard users: written by `policyscope users`; passwords "
                    "are argon2id hashes.\n" + (yaml.safe_dump(data, sort_keys=False)
                                                if data else "{}\n"))
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.",
                                   suffix=".tmp")  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        os.fsync(folder_fd)  # the rename itself is durable

    @property
    def _is_json(self) -> bool:
        return self.path.suffix.lower() == ".json"
