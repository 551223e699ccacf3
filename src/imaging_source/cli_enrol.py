"""``xds source enrol / pin-reset / revoke``: a patient's consent grant (DESIGN §4).

::

    xds source enrol MRN [--issuer I] [--expires-days 365] [--sheet FILE.pdf] [--replace]
    xds source pin-reset MRN [--issuer I]
    xds source revoke MRN [--issuer I] [--yes]

The PIN is asked twice, hidden, and checked against the PIN policy before the registry is asked.
The access code is shown once and written on the code sheet (a PDF to print and hand over); the
Edge Server keeps only which grant is whose. The grant API is ``grant_api_url`` with the bearer
key ``grant_api_key`` (set in the TOML file or ``XDS_SOURCE_GRANT_API_KEY``, never a flag, so
it stays out of the process list).

Public API::

    register(source: click.Group) -> None
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from imaging_source.config import SourceSettings
from imaging_source.cli_options import source_options, source_settings

__all__ = ["register"]


_settings = source_settings
_common = source_options(
    click.option("--issuer", default="", help="Issuer of Patient ID (0010,0021) of the MRN [default: none]"),
    click.option("--grant-api-url", help="The registry's grant API [default: http://127.0.0.1:8010/consent]"),
)


@contextmanager
def _enrolment(settings: SourceSettings) -> Iterator[Any]:
    from imaging_source.db import make_engine, upgrade
    from imaging_source.enrol import Enrolment, GrantBook
    from imaging_source.grant_client import GrantClient
    from imaging_source.jobs import JobStore
    from imaging_source.rad68 import PatientMapping

    if not settings.grant_api_key:
        raise click.UsageError("no grant_api_key is configured (the registry's grant API key; XDS_SOURCE_GRANT_API_KEY)")
    try:
        mapping = PatientMapping(settings.affinity_domain_oid, settings.patient_id_rule, settings.local_patient_id_oid)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    engine = make_engine(settings.database_url())
    client = GrantClient(settings.grant_api_url, settings.grant_api_key)
    try:
        upgrade(engine)
        yield Enrolment(client, GrantBook(engine), JobStore(engine), mapping)
    finally:
        client.close()
        engine.dispose()


def _ask_pin(prompt: str) -> str:
    """The PIN, typed twice and hidden; the policy is checked before anything is sent."""
    from xds.security.pin import PinPolicyError, check_pin

    pin: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    try:
        check_pin(pin)
    except PinPolicyError as exc:
        raise click.ClickException(str(exc)) from None
    return pin


def _write_private(path: Path, data: bytes) -> None:
    """The sheet holds the code: readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@contextmanager
def _grant_errors() -> Iterator[None]:
    from imaging_source.enrol import AlreadyEnrolled, NotEnrolled
    from imaging_source.grant_client import GrantApiError

    try:
        yield
    except (AlreadyEnrolled, NotEnrolled, GrantApiError) as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:  # an unmappable patient ID, a bad PIN
        raise click.ClickException(str(exc)) from None


def register(source: click.Group) -> None:
    """Add ``enrol``, ``pin-reset`` and ``revoke`` to the ``xds source`` group."""

    @source.command("enrol")
    @_common
    @click.argument("mrn")
    @click.option("--expires-days", type=click.IntRange(min=1), default=365, show_default=True, help="Days the grant is valid")
    @click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), help="Code sheet PDF [default: ./code-sheet-<grant>.pdf]")
    @click.option("--replace", is_flag=True, help="Revoke the patient's grant and issue a new one (new code, new PIN)")
    @click.option("--portal-url", help="Where patients use their code, printed on the sheet")
    def enrol(
        config: Path | None,
        mrn: str,
        issuer: str,
        expires_days: int,
        sheet: Path | None,
        replace: bool,
        **flags: object,
    ) -> None:
        """Enrol patient MRN: a grant in the registry, its access code shown once and a code sheet."""
        from imaging_source.enrol import code_sheet_pdf

        settings = _settings(config, **flags)
        pin = _ask_pin("PIN (4-12 digits or a passphrase of 8+ characters)")
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_days)
        with _enrolment(settings) as enrolment, _grant_errors():
            issued = enrolment.enrol(mrn, issuer=issuer, pin=pin, expires=expires, replace=replace)
        del pin
        data = code_sheet_pdf(
            access_code_display=issued.access_code_display,
            patient_label=mrn + (f" ({issuer})" if issuer else ""),
            expires=issued.expires or expires,
            release_delay_hours=settings.release_delay_hours,
            portal_url=settings.portal_url,
        )
        path = sheet if sheet is not None else Path(f"code-sheet-{issued.grant_id}.pdf")
        _write_private(path, data)
        click.echo(f"grant {issued.grant_id} for patient {mrn}, valid until {expires:%Y-%m-%d}")
        click.echo(f"access code: {issued.access_code_display}")
        click.echo(f"code sheet: {path} (print it for the patient, then delete the file)")

    @source.command("pin-reset")
    @_common
    @click.argument("mrn")
    def pin_reset(config: Path | None, mrn: str, issuer: str, **flags: object) -> None:
        """Set a new PIN on patient MRN's grant (the code stays; failures are cleared)."""
        settings = _settings(config, **flags)
        pin = _ask_pin("New PIN")
        with _enrolment(settings) as enrolment, _grant_errors():
            found = enrolment.reset_pin(mrn, issuer=issuer, pin=pin)
        click.echo(f"PIN reset on grant {found.grant_id}")

    @source.command("revoke")
    @_common
    @click.argument("mrn")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation")
    def revoke(config: Path | None, mrn: str, issuer: str, yes: bool, **flags: object) -> None:
        """Revoke patient MRN's grant and every share made from it (the code stops working)."""
        settings = _settings(config, **flags)
        if not yes:
            click.confirm(f"Revoke the grant of patient {mrn}? Its code stops working", abort=True)
        with _enrolment(settings) as enrolment, _grant_errors():
            count = enrolment.revoke(mrn, issuer=issuer)
        click.echo(f"revoked {count} grant(s) of patient {mrn}")
