"""``xds registry ...``: serve the Document Registry, manage its patients."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from registry.config import RegistrySettings
from xds.settings import SettingsError, load_settings


def _settings(config: Path | None, **flags: object) -> RegistrySettings:
    try:
        return load_settings(RegistrySettings, section="registry", config_file=config, overrides=flags)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


@click.group()
def registry() -> None:
    """Document Registry: ITI-42 Register, ITI-18 Stored Query, ITI-8 Patient Identity Feed."""


@registry.command()
@click.option("--host", help="Address to listen on [default: 127.0.0.1]")
@click.option("--port", type=int, help="HTTP port [default: 8010]")
@click.option("--db", help="SQLAlchemy database URL [default: SQLite in the data directory]")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory [default: ./data]")
@click.option("--codes", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Affinity-domain code set (codes.xml)")
@click.option("--schemas", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Directory of the ebRS/IHE XSDs served with the WSDL")
@click.option("--mllp-port", type=int, help="ITI-8 MLLP port; 0 disables the feed [default: 2575]")
@click.option("--max-results", type=int, help="XDSTooManyResults above this many objects [default: 5000]")
@click.option("--workers", type=int, help="Worker processes [default: 1]")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TOML file with a [registry] section")
def serve(config: Path | None, **flags: object) -> None:
    """Run the Document Registry (HTTP SOAP endpoint and ITI-8 MLLP listener)."""
    from registry.app import serve_registry

    serve_registry(_settings(config, **flags))


@registry.group()
def patient() -> None:
    """Patients known to the registry (what the ITI-8 feed maintains)."""


@patient.command("add")
@click.argument("patient_id")
@click.option("--family", help="Family name")
@click.option("--given", help="Given name")
@click.option("--birth-date", help="Birth date, YYYYMMDD")
@click.option("--sex", type=click.Choice(["M", "F", "O", "U"]), help="Administrative sex")
@click.option("--db", help="SQLAlchemy database URL [default: SQLite in the data directory]")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory [default: ./data]")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def patient_add(
    patient_id: str,
    family: str | None,
    given: str | None,
    birth_date: str | None,
    sex: str | None,
    config: Path | None,
    **flags: object,
) -> None:
    """Register PATIENT_ID (a CX such as 'P123^^^&1.2.3&ISO') as known, like an ITI-8 A01 would."""
    from registry.patients import Patient
    from registry.store.db import make_engine, upgrade
    from registry.store.patients import PatientStore
    from xds.metadata.hl7types import check_patient_id

    problem = check_patient_id(patient_id)
    if problem:
        click.echo(f"error: {problem}", err=True)
        sys.exit(2)
    settings = _settings(config, **flags)
    engine = make_engine(settings.database_url())
    upgrade(engine)
    created = PatientStore(engine).add_or_update(
        Patient(patient_id=patient_id, family_name=family, given_name=given, birth_date=birth_date, sex=sex)
    )
    click.echo(f"{'added' if created else 'updated'} {patient_id}")
