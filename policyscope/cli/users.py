"""Dashboard users: `users add | list | remove | set-role | set-password` over the local users
file (`dashboard_users_file`, dashboards/users.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from policyscope.cli import output
from policyscope.cli.options import ConfigOpt, check_format, fail, setup

ROLES_HELP = ("viewer (executive, SLOs, live), exec (executive, SLOs), oncall (on-call, SLOs, "
              "live, debug; may silence), analyst (triage, debug, executive; may label), sre "
              "(tuning, debug, SLOs, on-call, live; may label and silence), admin (every page "
              "and action)")

users_app = typer.Typer(
    help="Who may log in to the dashboards, and with which role, in the local users file "
         "(dashboard_users_file; the dashboard asks for a login once it is set). Passwords "
         "are read from a prompt or stdin, never from a flag, and stored only as salted "
         "argon2id hashes; the file is written 0600, atomically. Roles: " + ROLES_HELP + ".",
    no_args_is_help=True)

UsersFileOpt = typer.Option(
    None, "--users-file", "--dashboard-users-file", dir_okay=False,
    help="the users file, YAML (JSON if it ends in .json) (also dashboard_users_file in the "
         "config, POLICYSCOPE_DASHBOARD_USERS_FILE)")
PasswordStdinOpt = typer.Option(
    False, "--password-stdin", help="read the password from the first line of stdin (for "
    "scripts: printf '%s\\n' \"$PW\" | policyscope users add ...) instead of a prompt")
LogLevelOpt = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR")


def _users_file(config_file: Optional[Path], users_file: Optional[Path], log_level: str):
    from dashboards.users import UsersFile

    config = setup(config_file, log_level, dashboard_users_file=users_file)
    path = config.dashboard.dashboard_users_file
    if path is None:
        fail("no users file: give --users-file FILE, or set dashboard_users_file in the config "
             "(or POLICYSCOPE_DASHBOARD_USERS_FILE)")
    return UsersFile(path)


def _interactive() -> bool:
    """Whether a person can answer the password prompt (stdin is a terminal)."""
    return sys.stdin.isatty()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("--password-stdin: stdin gave no password")
        return password
    if not _interactive():
        fail("stdin is not a terminal to ask the password on: pipe it in with "
             "--password-stdin")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _check_role(role: str) -> str:
    from dashboards.roles import ROLES

    if role not in ROLES:
        fail(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def _run(change):
    """Run a change of the file; a refused one ends the command naming why (exit 1)."""
    from dashboards.users import UsersFileError

    try:
        return change()
    except (UsersFileError, OSError) as exc:
        fail(str(exc), 1)


@users_app.command("add")
def users_add(name: str = typer.Argument(..., help="the user's login name (an email for OIDC)"),
              role: str = typer.Option(..., "--role", "-r", help="one of viewer, exec, "
                                       "oncall, analyst, sre, admin"),
              password_stdin: bool = PasswordStdinOpt,
              oidc: bool = typer.Option(False, "--oidc", help="no password: NAME is an OIDC "
                                        "identity's email (dashboard_oidc) and this entry "
                                        "gives its role"),
              config_file: Optional[Path] = ConfigOpt,
              users_file: Optional[Path] = UsersFileOpt,
              log_level: str = LogLevelOpt) -> None:
    """Add a user with a role; asks for the password twice (or reads --password-stdin).

    Creates the users file (0600) if it does not exist. Refuses a name already there: change
    it with `users set-role` or `users set-password`.
    """
    from dashboards.users import check_name

    file = _users_file(config_file, users_file, log_level)
    _check_role(role)
    if oidc and password_stdin:
        fail("--oidc users have no password: drop --password-stdin")
    _run(lambda: check_name(name))
    if _run(lambda: file.get(name)) is not None:  # before asking for a password in vain
        fail(f"user {name!r} already exists in {file.path}: use `users set-role` or "
             "`users set-password`", 1)
    password = None if oidc else _password(password_stdin)
    account = _run(lambda: file.add(name, role, password))
    typer.echo(f"added {account.name} ({account.role}, login by {account.login}) to "
               f"{file.path}")


@users_app.command("list")
def users_list(config_file: Optional[Path] = ConfigOpt,
               users_file: Optional[Path] = UsersFileOpt,
               output_format: str = typer.Option("table", "--format", "-f",
                                                 help="table, json or csv"),
               log_level: str = LogLevelOpt) -> None:
    """List the users: name, role, and how they log in (password or oidc); never a hash."""
    file = _users_file(config_file, users_file, log_level)
    check_format(output_format, output.FORMATS)
    accounts = sorted(_run(file.load).values(), key=lambda a: a.name)
    if output_format == "json":
        output.emit_json([{"name": a.name, "role": a.role, "login": a.login}
                          for a in accounts])
        return
    if not accounts and output_format == "table":
        typer.echo(f"no users in {file.path}")
        return
    output.emit(["name", "role", "login"], [(a.name, a.role, a.login) for a in accounts],
                output_format)


@users_app.command("remove")
def users_remove(name: str = typer.Argument(..., help="the user to remove"),
                 config_file: Optional[Path] = ConfigOpt,
                 users_file: Optional[Path] = UsersFileOpt,
                 log_level: str = LogLevelOpt) -> None:
    """Remove a user. A running dashboard logs them out at their next click."""
    file = _users_file(config_file, users_file, log_level)
    _run(lambda: file.remove(name))
    typer.echo(f"removed {name} from {file.path}")


@users_app.command("set-role")
def users_set_role(name: str = typer.Argument(..., help="the user"),
                   role: str = typer.Argument(..., help="the new role: viewer, exec, oncall, "
                                              "analyst, sre or admin"),
                   config_file: Optional[Path] = ConfigOpt,
                   users_file: Optional[Path] = UsersFileOpt,
                   log_level: str = LogLevelOpt) -> None:
    """Give a user another role; a running dashboard applies it at their next click."""
    file = _users_file(config_file, users_file, log_level)
    _check_role(role)
    account = _run(lambda: file.set_role(name, role))
    typer.echo(f"{account.name} is now {account.role}")


@users_app.command("set-password")
def users_set_password(name: str = typer.Argument(..., help="the user"),
                       password_stdin: bool = PasswordStdinOpt,
                       config_file: Optional[Path] = ConfigOpt,
                       users_file: Optional[Path] = UsersFileOpt,
                       log_level: str = LogLevelOpt) -> None:
    """Set a user's password; asks for it twice (or reads --password-stdin)."""
    file = _users_file(config_file, users_file, log_level)
    password = _password(password_stdin)
    _run(lambda: file.set_password(name, password))
    typer.echo(f"new password set for {name}")
