"""``xds source staff ...``: the staff users of the console.

::

    xds source staff add USERNAME [--role user|admin] [--password-stdin]
    xds source staff list
    xds source staff disable USERNAME
    xds source staff enable USERNAME
    xds source staff passwd USERNAME [--password-stdin]

The password is asked twice, hidden, or read as one line from standard input
(``--password-stdin``, for scripts); it is never a flag, so it stays out of the process list and
the shell history. ``passwd`` also clears failed sign-ins and a lock.

Public API::

    register(source: click.Group) -> None
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from imaging_source.config import SourceSettings
from imaging_source.cli_options import source_options, source_settings

__all__ = ["register"]


_settings = source_settings
_common = source_options()


@contextmanager
def _directory(settings: SourceSettings) -> Iterator[Any]:
    from imaging_source.db import make_engine, upgrade
    from imaging_source.web.staff import StaffDirectory

    engine = make_engine(settings.database_url())
    try:
        upgrade(engine)
        yield StaffDirectory(engine)
    finally:
        engine.dispose()


def _password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice hidden; checked against the policy."""
    from imaging_source.web.staff import StaffPolicyError, check_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_password(password)
    except StaffPolicyError as exc:
        raise click.ClickException(str(exc)) from None
    return password


def register(source: click.Group) -> None:
    """Add the ``staff`` group to the ``xds source`` group."""

    @source.group("staff")
    def staff() -> None:
        """Staff users of the console (user names, roles, passwords)."""

    @staff.command("add")
    @_common
    @click.argument("username")
    @click.option("--role", type=click.Choice(["user", "admin"]), default="user", show_default=True, help="user: search, enrol, share, retry; admin: also staff and revocation")
    @click.option("--password-stdin", is_flag=True, help="Read the password as one line from standard input")
    def add(config: Path | None, username: str, role: str, password_stdin: bool, **flags: object) -> None:
        """Add staff user USERNAME."""
        from imaging_source.web.staff import StaffExists, StaffPolicyError, StaffRole, check_username

        try:
            check_username(username)
        except StaffPolicyError as exc:
            raise click.BadParameter(str(exc), param_hint="USERNAME") from None
        settings = _settings(config, **flags)
        password = _password(password_stdin)
        with _directory(settings) as directory:
            try:
                user = directory.add(username, password, role=StaffRole(role))
            except StaffExists as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(f"added staff user {user.username} ({user.role})")

    @staff.command("list")
    @_common
    def list_users(config: Path | None, **flags: object) -> None:
        """List the staff users."""
        import time

        from rich.console import Console
        from rich.table import Table

        from imaging_source.cli_share import _when

        with _directory(_settings(config, **flags)) as directory:
            users = directory.list()
        now = time.time()
        table = Table("user", "role", "created", "last sign-in", "status", "failed sign-ins")
        for u in users:
            status = "disabled" if u.disabled else (f"locked until {_when(u.locked_until)}" if u.locked(now) else "active")
            table.add_row(u.username, u.role.value, _when(u.created), _when(u.last_login), status, str(u.failed_logins))
        Console(width=160).print(table)

    def _switch(config: Path | None, username: str, *, disabled: bool, flags: dict[str, object]) -> None:
        from imaging_source.web.staff import UnknownStaff

        with _directory(_settings(config, **flags)) as directory:
            try:
                directory.set_disabled(username, disabled=disabled)
            except UnknownStaff as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(f"{username} is {'disabled' if disabled else 'enabled'}")

    @staff.command("disable")
    @_common
    @click.argument("username")
    def disable(config: Path | None, username: str, **flags: object) -> None:
        """Disable staff user USERNAME (they can no longer sign in; signed-in sessions end)."""
        _switch(config, username, disabled=True, flags=flags)

    @staff.command("enable")
    @_common
    @click.argument("username")
    def enable(config: Path | None, username: str, **flags: object) -> None:
        """Enable staff user USERNAME again."""
        _switch(config, username, disabled=False, flags=flags)

    @staff.command("passwd")
    @_common
    @click.argument("username")
    @click.option("--password-stdin", is_flag=True, help="Read the password as one line from standard input")
    def passwd(config: Path | None, username: str, password_stdin: bool, **flags: object) -> None:
        """Set a new password for USERNAME (also clears failed sign-ins and a lock)."""
        from imaging_source.web.staff import UnknownStaff

        settings = _settings(config, **flags)
        with _directory(settings) as directory:
            if directory.get(username) is None:
                raise click.ClickException(f"no staff user {username}")
            password = _password(password_stdin)
            try:
                directory.set_password(username, password)
            except UnknownStaff as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(f"new password set for {username}")
