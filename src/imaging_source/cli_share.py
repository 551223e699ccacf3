"""``xds source share / jobs / retry``: share a patient's exams, watch the share jobs, retry one.

::

    xds source share MRN --study UID [--study UID ...] [--release routine|when-final|immediately]
    xds source share MRN --all [--autosend] [--release ...]
    xds source share MRN --autosend                  # every future exam of the patient
    xds source jobs [--state STATE] [--patient MRN] [--limit N]
    xds source retry JOB

The commands write the job table; the running Edge Server (``xds source serve``) does the work.
The release policies are RSNA's send options (rsna-image-share §2.6), the default is the
``default_release`` setting.

Public API::

    register(source: click.Group) -> None
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from imaging_source.config import SourceSettings
from imaging_source.release import ReleasePolicy
from imaging_source.cli_options import STORE_OPTION, source_options, source_settings

__all__ = ["register"]

_POLICIES = [p.value for p in ReleasePolicy]


_settings = source_settings
_common = source_options(STORE_OPTION)


@contextmanager
def _opened(settings: SourceSettings) -> Iterator[Any]:
    from imaging_source.db import make_engine, upgrade
    from imaging_source.dicomstore import DicomStore

    engine = make_engine(settings.database_url())
    try:
        upgrade(engine)
        yield DicomStore(settings.store_dir(), engine, fsync=settings.fsync)
    finally:
        engine.dispose()


def _when(moment: float | None) -> str:
    if moment is None:
        return ""
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _pacs_studies(settings: SourceSettings, store: Any, *, patient_id: str, study_uid: str | None = None) -> list[Any]:
    """C-FIND on the configured PACS (best effort: an unreachable PACS gives nothing)."""
    from imaging_source.pacs import PacsClient, PacsDirectory, PacsError

    nodes = PacsDirectory(store.engine).list(enabled_only=True)
    if not nodes:
        return []
    client = PacsClient(ae_title=settings.ae_title, store=store, timeout=settings.pacs_timeout)
    try:
        return client.find_studies(nodes, patient_id=patient_id, study_uid=study_uid)
    except PacsError as exc:
        click.echo(f"warning: PACS not queried ({exc})", err=True)
        return []


def register(source: click.Group) -> None:
    """Add ``share``, ``jobs`` and ``retry`` to the ``xds source`` group."""

    @source.command("share")
    @_common
    @click.argument("mrn")
    @click.option("--issuer", default="", help="Issuer of Patient ID (0010,0021) of the MRN [default: none]")
    @click.option("--study", "studies", multiple=True, help="Study Instance UID of an exam to share (repeatable)")
    @click.option("--all", "share_all", is_flag=True, help="Share every exam of the patient")
    @click.option("--autosend", is_flag=True, help="Also share every future exam of the patient as it arrives")
    @click.option("--release", "policy", type=click.Choice(_POLICIES), help="Release policy [default: the default_release setting]")
    def share(
        config: Path | None,
        mrn: str,
        issuer: str,
        studies: tuple[str, ...],
        share_all: bool,
        autosend: bool,
        policy: str | None,
        **flags: object,
    ) -> None:
        """Share exams of patient MRN with the clearinghouse (RAD-68 jobs)."""
        from imaging_source.jobs import JobStore

        if not (studies or share_all or autosend):
            raise click.UsageError("give --study UID, --all or --autosend")
        if studies and share_all:
            raise click.UsageError("--study and --all exclude each other")
        settings = _settings(config, **flags)
        try:
            chosen = ReleasePolicy(policy or settings.default_release)
        except ValueError:
            raise click.UsageError(f"default_release {settings.default_release!r} is not one of {', '.join(_POLICIES)}") from None
        with _opened(settings) as store:
            jobs = JobStore(store.engine)
            wanted: dict[str, str] = {}  # study UID -> accession
            if share_all:
                jacket = store.jacket(mrn, issuer=issuer or None)
                for study in jacket.studies if jacket is not None else ():
                    wanted[study.study_uid] = study.accession
                for match in _pacs_studies(settings, store, patient_id=mrn):
                    wanted.setdefault(match.study_uid, match.accession)
                if not wanted:
                    click.echo(f"no exam of patient {mrn} is stored here or on a PACS")
            for uid in studies:
                record = store.study(uid)
                if record is not None:
                    if record.patient.patient_id != mrn:
                        raise click.ClickException(f"study {uid} belongs to patient {record.patient.patient_id}, not {mrn}")
                    wanted[uid] = record.accession
                    continue
                found = [m for m in _pacs_studies(settings, store, patient_id=mrn, study_uid=uid) if m.study_uid == uid]
                wanted[uid] = found[0].accession if found else ""
            for uid, accession in wanted.items():
                job = jobs.create(patient_id=mrn, issuer=issuer, study_uid=uid, accession=accession, policy=chosen)
                click.echo(f"job {job.id}: {accession or '-'} {uid} {job.policy} ({job.state})")
            if autosend:
                jobs.enable_autosend(mrn, issuer=issuer, policy=chosen)
                click.echo(f"autosend on for patient {mrn} ({chosen})")

    @source.command("jobs")
    @_common
    @click.option("--state", "states", multiple=True, help="Only jobs in this state (repeatable)")
    @click.option("--patient", help="Only this patient's jobs")
    @click.option("--limit", type=int, default=200, show_default=True, help="Newest jobs shown")
    def jobs_command(config: Path | None, states: tuple[str, ...], patient: str | None, limit: int, **flags: object) -> None:
        """List the share jobs, newest first (times in UTC)."""
        from rich.console import Console
        from rich.table import Table

        from imaging_source.jobs import JobState, JobStore

        try:
            wanted = [JobState(s) for s in states] or None
        except ValueError:
            raise click.UsageError(f"states are {', '.join(s.value for s in JobState)}") from None
        with _opened(_settings(config, **flags)) as store:
            found = JobStore(store.engine).list(states=wanted, patient_id=patient, limit=limit)
        table = Table("id", "patient", "accession / study", "policy", "state", "since", "attempts", "next try", "release time", "last error")
        for job in found:
            table.add_row(
                str(job.id),
                job.patient_id,
                job.accession or job.study_uid,
                job.policy.value,
                job.state.value,
                _when(job.state_since),
                str(job.attempts),
                _when(job.next_attempt) if job.active else "",
                _when(job.release_time),
                job.last_error,
            )
        Console(width=200).print(table)

    @source.command("retry")
    @_common
    @click.argument("job_id", metavar="JOB", type=int)
    def retry(config: Path | None, job_id: int, **flags: object) -> None:
        """Try job JOB again now (a failed job starts again from queued)."""
        from imaging_source.jobs import InvalidTransition, JobStore

        with _opened(_settings(config, **flags)) as store:
            try:
                job = JobStore(store.engine).retry(job_id)
            except LookupError:
                raise click.ClickException(f"no job {job_id}") from None
            except InvalidTransition as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(f"job {job.id}: {job.state}, next try now")
