"""``xds source ...``: run the Edge Server (Imaging Document Source) and manage its PACS nodes."""

from __future__ import annotations

from pathlib import Path

import click

from imaging_source.cli_share import register
from imaging_source.config import SourceSettings
from imaging_source.cli_options import STORE_OPTION, source_options, source_settings


_settings = source_settings
_common = source_options(STORE_OPTION)


def _directory(settings: SourceSettings):  # type: ignore[no-untyped-def]
    from imaging_source.db import make_engine, upgrade
    from imaging_source.pacs import PacsDirectory

    engine = make_engine(settings.database_url())
    upgrade(engine)
    return PacsDirectory(engine)


@click.group()
def source() -> None:
    """Edge Server (XDS-I.b Imaging Document Source): DICOM and report intake, jackets, shares
    (KOS + RAD-68), RAD-69 and WADO."""


@source.command()
@_common
@click.option("--host", help="HTTP address to listen on [default: 127.0.0.1]")
@click.option("--port", type=int, help="HTTP port [default: 8030]")
@click.option("--dicom-host", help="DICOM Storage SCP address [default: 127.0.0.1]")
@click.option("--dicom-port", type=int, help="DICOM Storage SCP port; 0 disables it [default: 11112]")
@click.option("--ae-title", help="Our AE title (SCP and SCU) [default: XDSEDGE]")
@click.option("--source-id", help="This source's repositoryUniqueId, an OID [default: a fixed 2.25 OID; set your own]")
@click.option("--schemas", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Directory of the ebRS/IHE XSDs served with the WSDL")
@click.option("--mllp-host", help="HL7 v2 report/order feed (ORU^R01, ORM^O01) address [default: 127.0.0.1]")
@click.option("--mllp-port", type=int, help="HL7 v2 report/order feed MLLP port; 0 disables it [default: 2576]")
@click.option("--repository-url", help="Document Repository that receives RAD-68 [default: http://127.0.0.1:8020/repository]")
@click.option("--codes", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Affinity-domain code set (codes.xml) the RAD-68 codes are checked against")
@click.option("--release-delay-hours", type=float, help="Routine release: hours after the final report [default: 72]")
@click.option("--access-policy", type=click.Choice(["open", "consent"]), help="open: any client; consent: RAD-69 and WADO need the registry's SAML assertion [default: open]")
@click.option("--trusted-token-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The registry's token-signing certificate, PEM (its /consent/certificate)")
@click.option("--token-audience", help="This source's audience in the assertions [default: the registry's default]")
def serve(config: Path | None, **flags: object) -> None:
    """Run the Edge Server: RAD-69 and WADO over HTTP, the DICOM Storage SCP, the HL7 report
    feed and the share-job runner (RAD-68 to the repository)."""
    from imaging_source.app import serve_source

    serve_source(_settings(config, **flags))


@source.group()
def pacs() -> None:
    """The PACS nodes the Edge Server queries (C-FIND) and retrieves from (C-MOVE)."""


@pacs.command("add")
@_common
@click.argument("name")
@click.option("--ae-title", "pacs_ae", required=True, help="The PACS's AE title")
@click.option("--host", "pacs_host", required=True, help="The PACS's host name or address")
@click.option("--port", "pacs_port", required=True, type=int, help="The PACS's DICOM port")
@click.option("--disabled", is_flag=True, help="Keep the node but do not query it")
def pacs_add(config: Path | None, name: str, pacs_ae: str, pacs_host: str, pacs_port: int, disabled: bool, **flags: object) -> None:
    """Add a PACS node (or replace the node called NAME)."""
    from imaging_source.pacs import PacsNode

    try:
        node = PacsNode(name, pacs_ae, pacs_host, pacs_port, enabled=not disabled)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    directory = _directory(_settings(config, **flags))
    directory.add(node)
    directory.engine.dispose()
    click.echo(f"PACS {name}: {pacs_ae}@{pacs_host}:{pacs_port}{' (disabled)' if disabled else ''}")


@pacs.command("remove")
@_common
@click.argument("name")
def pacs_remove(config: Path | None, name: str, **flags: object) -> None:
    """Remove the PACS node called NAME."""
    directory = _directory(_settings(config, **flags))
    removed = directory.remove(name)
    directory.engine.dispose()
    if not removed:
        raise click.ClickException(f"no PACS node called {name}")
    click.echo(f"removed {name}")


@pacs.command("list")
@_common
def pacs_list(config: Path | None, **flags: object) -> None:
    """List the PACS nodes."""
    from rich.console import Console
    from rich.table import Table

    directory = _directory(_settings(config, **flags))
    nodes = directory.list()
    directory.engine.dispose()
    table = Table("name", "AE title", "host", "port", "enabled")
    for node in nodes:
        table.add_row(node.name, node.ae_title, node.host, str(node.port), "yes" if node.enabled else "no")
    Console().print(table)


@pacs.command("echo")
@_common
@click.argument("names", nargs=-1)
@click.option("--ae-title", help="Our calling AE title [default: the configured one]")
@click.option("--pacs-timeout", type=float, help="Seconds to wait for the PACS [default: 30]")
def pacs_echo(config: Path | None, names: tuple[str, ...], **flags: object) -> None:
    """C-ECHO the named PACS nodes (every node without names); exit 1 if one does not answer."""
    from imaging_source.dicomstore import DicomStore
    from imaging_source.pacs import PacsClient

    settings = _settings(config, **flags)
    directory = _directory(settings)
    try:
        nodes = directory.list()
        if names:
            unknown = set(names) - {n.name for n in nodes}
            if unknown:
                raise click.ClickException(f"unknown PACS node(s): {', '.join(sorted(unknown))}")
            nodes = [n for n in nodes if n.name in names]
        if not nodes:
            raise click.ClickException("no PACS node configured (xds source pacs add ...)")
        client = PacsClient(
            ae_title=settings.ae_title,
            store=DicomStore(settings.store_dir(), directory.engine, fsync=settings.fsync),
            timeout=settings.pacs_timeout,
        )
        failed = 0
        for node in nodes:
            ok = client.echo(node)
            failed += not ok
            click.echo(f"{node.name} ({node.ae_title}@{node.host}:{node.port}): {'ok' if ok else 'FAILED'}")
    finally:
        directory.engine.dispose()
    if failed:
        raise SystemExit(1)


@source.command("jacket")
@_common
@click.argument("mrn")
@click.option("--issuer", "patient_issuer", help="Issuer of Patient ID (0010,0021) [default: any]")
def jacket_show(config: Path | None, mrn: str, patient_issuer: str | None, **flags: object) -> None:
    """Show the exams of patient MRN with their report status (canceled exams are hidden)."""
    from rich.console import Console
    from rich.table import Table

    from imaging_source.db import make_engine, upgrade
    from imaging_source.dicomstore import DicomStore
    from imaging_source.jacket import build_jacket
    from imaging_source.report_document import status_word
    from imaging_source.reports import ReportBook

    settings = _settings(config, **flags)
    engine = make_engine(settings.database_url())
    try:
        upgrade(engine)
        store = DicomStore(settings.store_dir(), engine, fsync=settings.fsync)
        jacket = build_jacket(store, ReportBook(engine), mrn, issuer=patient_issuer)
    finally:
        engine.dispose()
    if jacket is None:
        raise click.ClickException(f"no exams for patient {mrn}")
    patient = jacket.patient
    title = f"{patient.patient_id}" + (f" ({patient.issuer})" if patient.issuer else "")
    table = Table("study date", "accession", "modalities", "description", "series/instances", "report", title=title)
    for exam in jacket.exams:
        study = exam.study
        status = status_word(exam.report_status) if exam.report is not None else "no report"
        table.add_row(
            _dicom_date(study.study_date) if study is not None else "",
            exam.accession,
            ", ".join(study.modalities) if study is not None else "",
            exam.description,
            f"{exam.series_count}/{exam.instance_count}" if study is not None else "not received",
            status,
        )
    Console().print(table)


def _dicom_date(value: str) -> str:
    """DICOM DA ``YYYYMMDD`` (PS3.5 §6.2) as ``YYYY-MM-DD``; anything else as given."""
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value


# ``xds source share | jobs | retry``
register(source)

# ``xds source enrol | pin-reset | revoke``
from imaging_source.cli_enrol import register as register_enrol  # noqa: E402

register_enrol(source)

# ``xds source staff add | list | disable | enable | passwd``
from imaging_source.cli_staff import register as register_staff  # noqa: E402

register_staff(source)
