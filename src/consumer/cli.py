"""``xds consumer ...``: query a registry (ITI-18), retrieve documents (ITI-43), submit files
(ITI-41), list a patient's imaging exams and fetch their images (XDS-I.b: ITI-18, ITI-43, RAD-69),
from the command line.

A first round trip, against ``xds up`` or a registry and repository on their default ports::

    xds registry patient add 'P1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'
    xds consumer submit report.pdf --patient 'P1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'
    xds consumer query --patient 'P1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'
    xds consumer retrieve 2.25.1234... --out ./retrieved

Images shared by an Edge Server (its RAD-69 endpoint named by the manifests' Retrieve Location UID)::

    xds consumer list --patient 'P1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'
    xds consumer fetch --patient 'P1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO' --out ./images \
        --source 2.25.1372...=http://127.0.0.1:8030/imaging-source

Against services in the ``consent`` access policy, ``--code`` presents the patient's access code
and PIN (asked without echo, or read from standard input with ``--pin-stdin``) once to the
registry's token endpoint; the assertion it returns rides in the WS-Security header of every
ITI-18, ITI-43 and RAD-69 message, and names the patient, so ``--patient`` may be left out::

    xds consumer fetch --code 1234-5678 --out ./images --source 2.25.1372...=http://...

Exit status 2 for a usage error (a mistyped code is caught here, before anything is sent), 3 when
the registry does not accept the code and PIN or has locked the code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import click
from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from consumer import fetch as imaging
from consumer import iti18, iti41, iti43
from consumer.token import ConsentToken, TokenError, TokenLocked, TokenMistyped, TokenRefused, request_token, token_url_for
from xds.errors import RegistryError, XdsError
from xds.http.client import SoapConnectionError, SoapProtocolError
from xds.metadata.model import Code, Submission
from xds.security.accesscode import AccessCodeError, check_access_code
from xds.settings import SettingsError, load_settings
from xds.soap.fault import SoapFault
from xds.vocabulary import ResponseStatus, Status
from xds.xml import to_bytes

DEFAULT_REGISTRY: Final = "http://127.0.0.1:8010/registry"
DEFAULT_REPOSITORY: Final = "http://127.0.0.1:8020/repository"
_STATUSES: Final = {
    "approved": [Status.APPROVED],
    "deprecated": [Status.DEPRECATED],
    "all": [Status.APPROVED, Status.DEPRECATED],
}
#: Show a progress bar only for responses at least this large (or of unknown size).
_PROGRESS_ABOVE: Final = 1 << 20

_registry_option = click.option(
    "--registry", envvar="XDS_CONSUMER_REGISTRY", default=DEFAULT_REGISTRY, show_default=True, help="Document Registry endpoint"
)
_repository_option = click.option(
    "--repository", envvar="XDS_CONSUMER_REPOSITORY", default=DEFAULT_REPOSITORY, show_default=True, help="Document Repository endpoint"
)
_timeout_option = click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per network operation")
#: Exit status when the registry refuses the code and PIN, or has locked the code.
EXIT_NOT_ACCEPTED: Final = 3


def _consent_options(function):  # type: ignore[no-untyped-def]
    """--code, --pin-stdin and --token-url (the consent token, DESIGN §4)."""
    options = [
        click.option(
            "--code",
            envvar="XDS_CONSUMER_CODE",
            help="The patient's access code (8 digits, e.g. 1234-5678; or XDS_CONSUMER_CODE, which other users' "
            "process listings do not show); the PIN is asked for",
        ),
        click.option("--pin-stdin", is_flag=True, help="With --code: read the PIN from the first line of standard input"),
        click.option("--token-url", help="The registry's token endpoint [default: <registry base>/consent/token]"),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _read_pin(*, from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    # Never echoed (click reads it with getpass).
    return str(click.prompt("PIN", hide_input=True, err=True))


def _consent_token(registry: str, code: str | None, *, pin_stdin: bool, token_url: str | None, timeout: float) -> ConsentToken | None:
    """The assertion for ``code`` (None without --code); exits with a clear message otherwise."""
    if code is None:
        if pin_stdin:
            raise click.UsageError("--pin-stdin needs --code")
        return None
    try:
        # DESIGN §4: the check digit catches a typo before it is sent and counted as a failure.
        check_access_code(code)
    except AccessCodeError as exc:
        raise click.BadParameter(str(exc), param_hint="--code") from None
    pin = _read_pin(from_stdin=pin_stdin)
    if not pin:
        raise click.UsageError("the PIN is empty")
    url = token_url or token_url_for(registry)
    try:
        return request_token(url, code, pin, timeout=timeout)
    except TokenMistyped as exc:
        raise click.BadParameter(str(exc), param_hint="--code") from None
    except TokenLocked as exc:
        wait = f" (try again in {exc.retry_after} s)" if exc.retry_after else ""
        click.echo(f"error: {exc}{wait}", err=True)
        sys.exit(EXIT_NOT_ACCEPTED)
    except TokenRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_NOT_ACCEPTED)
    except TokenError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _security(token: ConsentToken | None) -> imaging.SecurityHeader | None:
    return token.security_header if token is not None else None


def _patient(patient: str | None, token: ConsentToken | None) -> str:
    """--patient, or the patient the consent token names."""
    if patient:
        return patient
    if token is not None and token.patient_id:
        return token.patient_id
    raise click.UsageError("--patient is required (or --code, whose token names the patient)")


def _short(value: str | None) -> str:
    return (value or "").rsplit(":", 1)[-1]


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _report_errors(console: Console, status: str, errors: Sequence[RegistryError]) -> None:
    colour = "green" if status == ResponseStatus.SUCCESS else ("yellow" if "Partial" in status else "red")
    console.print(f"status: [{colour}]{_short(status)}[/{colour}]")
    for error in errors:
        kind = "warning" if not error.is_error else "error"
        where = f" [{error.location}]" if error.location else ""
        console.print(f"  {kind}: {error.code_text}{where}: {error.context}", highlight=False)


def _parse_code(text: str | None) -> Code | None:
    """``CODE^^SCHEME`` (the stored-query form), optionally ``CODE^^SCHEME^Display``."""
    if text is None:
        return None
    code, sep, rest = text.partition("^^")
    scheme, _, display = rest.partition("^")
    if not sep or not code or not scheme:
        raise click.BadParameter(f"{text!r} is not CODE^^SCHEME")
    return Code(code, scheme, display)


@click.group()
def consumer() -> None:
    """Document Consumer (and a simple Document Source): ITI-18 query, ITI-43 retrieve, ITI-41 submit;
    Imaging Document Consumer: list and fetch shared images (ITI-18, ITI-43, RAD-69)."""


# -- query --------------------------------------------------------------------------------------
def _documents_table(sub: Submission) -> Table:
    table = Table(title=f"{len(sub.document_entries)} document(s)")
    # Identifiers and short values never wrap (they are copied into other commands).
    table.add_column("uniqueId", no_wrap=True)
    table.add_column("title", overflow="fold")
    table.add_column("mimeType", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("repositoryUniqueId", overflow="fold")
    for de in sub.document_entries:
        table.add_row(
            de.unique_id or "",
            de.title or "",
            de.mime_type,
            de.size or "",
            de.creation_time or "",
            _short(de.status),
            de.repository_unique_id or "",
        )
    return table


def _submission_sets_table(sub: Submission) -> Table:
    table = Table(title=f"{len(sub.submission_sets)} submission set(s)")
    table.add_column("uniqueId", no_wrap=True)
    table.add_column("title", overflow="fold")
    table.add_column("submitted", no_wrap=True)
    table.add_column("sourceId", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("entryUUID", overflow="fold")
    for ss in sub.submission_sets:
        table.add_row(ss.unique_id or "", ss.title or "", ss.submission_time or "", ss.source_id or "", _short(ss.status), ss.id)
    return table


def _folders_table(sub: Submission) -> Table:
    table = Table(title=f"{len(sub.folders)} folder(s)")
    for column in ("uniqueId", "title", "lastUpdate", "status"):
        table.add_column(column, overflow="fold")
    for fd in sub.folders:
        table.add_row(fd.unique_id or "", fd.title or "", fd.last_update_time or "", _short(fd.status))
    return table


def _query_params(query: str, patient: str | None, statuses: list[str], submission_set: str | None) -> dict[str, object]:
    if query == "GetSubmissionSetAndContents":
        if not submission_set:
            raise click.UsageError("get-submission-set-and-contents needs --submission-set (uniqueId or urn:uuid entryUUID)")
        key = "$XDSSubmissionSetEntryUUID" if submission_set.startswith("urn:uuid:") else "$XDSSubmissionSetUniqueId"
        return {key: submission_set}
    if not patient:
        raise click.UsageError(f"{query} needs --patient")
    if query == "FindDocuments":
        return {"$XDSDocumentEntryPatientId": patient, "$XDSDocumentEntryStatus": statuses}
    if query == "FindSubmissionSets":
        return {"$XDSSubmissionSetPatientId": patient, "$XDSSubmissionSetStatus": statuses}
    return {
        "$patientId": patient,
        "$XDSDocumentEntryStatus": statuses,
        "$XDSSubmissionSetStatus": statuses,
        "$XDSFolderStatus": statuses,
    }


@consumer.command()
@_registry_option
@click.option("--patient", help="Patient ID, e.g. 'P1^^^&1.2.3&ISO'")
@click.option(
    "--query", "query_name", type=click.Choice(["find-documents", "find-submission-sets", "get-submission-set-and-contents", "get-all"]),
    default="find-documents", show_default=True, help="Stored query",
)
@click.option("--status", type=click.Choice(sorted(_STATUSES)), default="approved", show_default=True, help="Which availability statuses")
@click.option("--submission-set", help="For get-submission-set-and-contents: its uniqueId or entryUUID")
@click.option("--xml", "as_xml", is_flag=True, help="Print the AdhocQueryResponse as XML instead of tables")
@_consent_options
@_timeout_option
def query(
    registry: str,
    patient: str | None,
    query_name: str,
    status: str,
    submission_set: str | None,
    as_xml: bool,
    code: str | None,
    pin_stdin: bool,
    token_url: str | None,
    timeout: float,
) -> None:
    """Run a stored query (ITI-18) and show what the registry returns."""
    name = iti18.QUERIES[query_name]
    token = _consent_token(registry, code, pin_stdin=pin_stdin, token_url=token_url, timeout=timeout)
    if patient is None and token is not None:
        patient = token.patient_id
    params = _query_params(name, patient, _STATUSES[status], submission_set)
    console = Console()
    try:
        with imaging.SecuredSoapClient(registry, security=_security(token), timeout=timeout) as client:
            result = iti18.stored_query(client, name, params)
    except XdsError as exc:
        _fail(str(exc))
    except (SoapConnectionError, SoapProtocolError, SoapFault) as exc:
        _fail(f"{registry}: {exc}")
    if as_xml:
        click.echo(to_bytes(result.element, xml_declaration=False).decode("utf-8"))
    else:
        sub = result.submission
        if sub.submission_sets or name in ("FindSubmissionSets", "GetSubmissionSetAndContents", "GetAll"):
            console.print(_submission_sets_table(sub))
        if sub.document_entries or name in ("FindDocuments", "GetSubmissionSetAndContents", "GetAll"):
            console.print(_documents_table(sub))
        if sub.folders:
            console.print(_folders_table(sub))
        _report_errors(console, result.status, result.errors)
    if not result.ok:
        sys.exit(1)


# -- retrieve -----------------------------------------------------------------------------------
class _Bar:
    """Adapts :class:`consumer.iti43.Progress` to a rich progress bar (shown for large bodies)."""

    def __init__(self, progress: Progress, label: str) -> None:
        self._progress = progress
        self._label = label
        self._task: int | None = None

    def start(self, total: int | None) -> None:
        if total is None or total >= _PROGRESS_ABOVE:
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=total)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, advance=n)


@consumer.command()
@click.argument("unique_ids", nargs=-1, required=True)
@_repository_option
@click.option("--repository-id", help="repositoryUniqueId of the documents [default: asked of the registry]")
@_registry_option
@click.option("--home", help="homeCommunityId to send with each request")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True, help="Directory for the files")
@click.option("--no-progress", is_flag=True, help="Never show a progress bar")
@_consent_options
@_timeout_option
def retrieve(
    unique_ids: tuple[str, ...],
    repository: str,
    repository_id: str | None,
    registry: str,
    home: str | None,
    out: Path,
    no_progress: bool,
    code: str | None,
    pin_stdin: bool,
    token_url: str | None,
    timeout: float,
) -> None:
    """Retrieve documents by uniqueId (ITI-43) into files named after them."""
    console = Console(stderr=True)
    token = _consent_token(registry, code, pin_stdin=pin_stdin, token_url=token_url, timeout=timeout)
    if repository_id is None:
        try:
            with imaging.SecuredSoapClient(registry, security=_security(token), timeout=timeout) as client:
                locations = iti18.document_locations(client, unique_ids)
        except (SoapConnectionError, SoapProtocolError, SoapFault, XdsError) as exc:
            _fail(f"--repository-id not given and the registry cannot tell it: {exc}")
        missing = [uid for uid in unique_ids if uid not in locations]
        if missing:
            _fail(f"the registry knows no document {', '.join(missing)}; give --repository-id to ask the repository anyway")
        requests = [iti43.DocumentRequest(uid, locations[uid], home) for uid in unique_ids]
    else:
        requests = [iti43.DocumentRequest(uid, repository_id, home) for uid in unique_ids]
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    progress = Progress(*columns, console=console, transient=True)  # started for large bodies only
    bar = None if no_progress else _Bar(progress, f"retrieving {len(requests)} document(s)")
    try:
        result = iti43.retrieve(repository, requests, out, progress=bar, timeout=timeout, security=_security(token))
    except (SoapConnectionError, SoapProtocolError, SoapFault) as exc:
        _fail(f"{repository}: {exc}")
    finally:
        progress.stop()
    for document in result.documents:
        click.echo(f"{document.document_id}\t{document.mime_type}\t{document.size} bytes\tsha1 {document.sha1}\t{document.path}")
    _report_errors(console, result.status, result.errors)
    if result.status == ResponseStatus.FAILURE:
        sys.exit(1)


# -- submit -------------------------------------------------------------------------------------
@consumer.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--patient", required=True, help="Affinity-domain patient ID, e.g. 'P1^^^&1.2.3&ISO' (known to the registry)")
@_repository_option
@click.option("--mime-type", help="mimeType of every file [default: guessed from the file name]")
@click.option("--title", help="Document title [default: the file name]")
@click.option("--class-code", help="CODE^^SCHEME [default: REPORTS, or IMAGES for DICOM]")
@click.option("--type-code", help="CODE^^SCHEME [default: 34133-9^^2.16.840.1.113883.6.1]")
@click.option("--format-code", help="CODE^^SCHEME [default: mimeType Sufficient, or KOS for DICOM]")
@click.option("--confidentiality-code", help="CODE^^SCHEME [default: N^^2.16.840.1.113883.5.25]")
@click.option("--facility-code", help="healthcareFacilityTypeCode, CODE^^SCHEME [default: 35971002 ambulatory care site]")
@click.option("--practice-code", help="practiceSettingCode, CODE^^SCHEME [default: 309964003 radiology department]")
@click.option("--content-type-code", help="SubmissionSet contentTypeCode, CODE^^SCHEME")
@click.option("--event-code", multiple=True, help="eventCodeList entry, CODE^^SCHEME (repeatable)")
@click.option("--author", help="authorPerson (XCN), e.g. '^Welby^Marcus^^^Dr^MD'")
@click.option("--institution", help="authorInstitution (XON)")
@click.option("--source-id", help="SubmissionSet sourceId (OID)")
@click.option("--unique-id", "unique_ids", multiple=True, help="uniqueId per file, in order [default: new 2.25 OIDs]")
@click.option("--no-hash", is_flag=True, help="Do not send hash and size (the repository computes them)")
@_timeout_option
def submit(
    files: tuple[Path, ...],
    patient: str,
    repository: str,
    mime_type: str | None,
    title: str | None,
    class_code: str | None,
    type_code: str | None,
    format_code: str | None,
    confidentiality_code: str | None,
    facility_code: str | None,
    practice_code: str | None,
    content_type_code: str | None,
    event_code: tuple[str, ...],
    author: str | None,
    institution: str | None,
    source_id: str | None,
    unique_ids: tuple[str, ...],
    no_hash: bool,
    timeout: float,
) -> None:
    """Submit FILES as documents of one submission set (ITI-41 Provide and Register)."""
    overrides: dict[str, object] = {
        "type_code": _parse_code(type_code),
        "confidentiality_code": _parse_code(confidentiality_code),
        "healthcare_facility_type_code": _parse_code(facility_code),
        "practice_setting_code": _parse_code(practice_code),
        "content_type_code": _parse_code(content_type_code),
        "source_id": source_id,
    }
    try:
        options = iti41.DocumentOptions(
            patient_id=patient,
            mime_type=mime_type,
            title=title,
            class_code=_parse_code(class_code),
            format_code=_parse_code(format_code),
            event_codes=tuple(c for c in (_parse_code(e) for e in event_code) if c is not None),
            author_person=author,
            author_institution=institution,
            include_hash=not no_hash,
            unique_ids=unique_ids,
            **{k: v for k, v in overrides.items() if v is not None},  # type: ignore[arg-type]
        )
        submission, documents = iti41.describe(list(files), options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    console = Console()
    try:
        result = iti41.provide_and_register(repository, submission, documents, timeout=timeout)
    except (SoapConnectionError, SoapProtocolError, SoapFault) as exc:
        _fail(f"{repository}: {exc}")
    if result.ok:
        table = Table(title="submitted")
        table.add_column("file", overflow="fold")
        table.add_column("uniqueId", no_wrap=True)
        table.add_column("mimeType", no_wrap=True)
        table.add_column("size", justify="right", no_wrap=True)
        for document in documents:
            table.add_row(str(document.path), document.entry.unique_id or "", document.entry.mime_type, str(document.path.stat().st_size))
        console.print(table)
        ids = " ".join(d.entry.unique_id or "" for d in documents)
        console.print(f"retrieve with: xds consumer retrieve {ids}", highlight=False, soft_wrap=True)
    _report_errors(console, result.status, result.errors)
    if not result.ok:
        sys.exit(1)


# -- imaging: list and fetch -------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ConsumerSettings:
    """Section ``[consumer]`` of a TOML file (env ``XDS_CONSUMER_SOURCES``, comma-separated)."""

    # Imaging Document Sources: "Retrieve Location UID=RAD-69 endpoint" items.
    sources: tuple[str, ...] = ()


def _sources(config: Path | None, given: tuple[str, ...]) -> dict[str, str]:
    """The configured sources, overridden item by item by ``--source``."""
    try:
        settings = load_settings(ConsumerSettings, section="consumer", config_file=config)
        sources = imaging.parse_sources(settings.sources)
        sources.update(imaging.parse_sources(given))
    except (SettingsError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--source / [consumer] sources") from None
    return sources


def _dtm(value: str) -> str:
    """An HL7 DTM (YYYYMMDD[HHMM[SS]]) as ``YYYY-MM-DD[ HH:MM]``; anything else unchanged."""
    if len(value) < 8 or not value[:8].isdigit():
        return value
    date = f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    return f"{date} {value[8:10]}:{value[10:12]}" if len(value) >= 12 and value[8:12].isdigit() else date


def _exams_table(exams: Sequence[imaging.Exam]) -> Table:
    table = Table(title=f"{len(exams)} imaging exam(s)")
    table.add_column("study", no_wrap=True)
    table.add_column("accession", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("modalities", no_wrap=True)
    table.add_column("title", overflow="fold")
    table.add_column("manifest uniqueId", no_wrap=True)
    table.add_column("report", no_wrap=True)
    for exam in exams:
        report = ", ".join(r.mime_type for r in exam.reports) or "no"
        table.add_row(
            exam.study_uid, exam.accession, _dtm(exam.date), " ".join(exam.modalities), exam.title, exam.manifest.unique_id, report
        )
    return table


@consumer.command("list")
@_registry_option
@click.option("--patient", help="Affinity-domain patient ID, e.g. 'P1^^^&1.2.3&ISO' [default: the one --code's token names]")
@_consent_options
@_timeout_option
def list_exams(registry: str, patient: str | None, code: str | None, pin_stdin: bool, token_url: str | None, timeout: float) -> None:
    """List the imaging exams (KOS manifests) of a patient that the registry shows (ITI-18)."""
    token = _consent_token(registry, code, pin_stdin=pin_stdin, token_url=token_url, timeout=timeout)
    who = _patient(patient, token)
    try:
        with imaging.SecuredSoapClient(registry, security=_security(token), timeout=timeout) as client:
            exams = imaging.find_exams(client, who)
    except (imaging.FetchError, XdsError) as exc:
        _fail(str(exc))
    except (SoapConnectionError, SoapProtocolError, SoapFault) as exc:
        _fail(f"{registry}: {exc}")
    Console().print(_exams_table(exams))


class _FetchBar:
    """Adapts :class:`consumer.fetch.FetchProgress` to a rich progress bar (instances and bytes)."""

    def __init__(self, console: Console) -> None:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("instances"),
            TextColumn("{task.fields[size]}"),
            TimeRemainingColumn(),
        )
        self.progress = Progress(*columns, console=console, transient=True)
        self._task: int | None = None
        self._bytes = 0

    def planned(self, total: int, present: int) -> None:
        self.progress.start()
        self._task = self.progress.add_task("fetching", total=total, completed=present, size=decimal(0))

    def received(self, n: int) -> None:
        self._bytes += n
        if self._task is not None:
            self.progress.update(self._task, size=decimal(self._bytes))

    def stored(self, size: int) -> None:
        if self._task is not None:
            self.progress.update(self._task, advance=1)

    def stop(self) -> None:
        self.progress.stop()


def _print_summary(console: Console, summary: imaging.FetchSummary, out: Path) -> None:
    if not summary.instances and not summary.errors:
        console.print("no imaging exam of this patient is visible", highlight=False)
    console.print(
        f"studies: {len(summary.studies)}  instances: {summary.instances} "
        f"(fetched {summary.fetched}, already present {summary.present})  bytes: {summary.bytes} "
        f"({decimal(summary.bytes)})  reports: {len(summary.reports)}  failures: {len(summary.failures)}",
        highlight=False,
    )
    console.print(f"in {out}", highlight=False, soft_wrap=True)
    for error in summary.errors:
        console.print(f"  error: {error}", highlight=False, soft_wrap=True)
    if summary.failures:
        console.print(f"missing {len(summary.failures)} instance(s) (study / series / SOP Instance UID: reason):", highlight=False)
        for failure in summary.failures:
            console.print(
                f"  {failure.study_uid} / {failure.series_uid} / {failure.sop_instance_uid}: {failure.reason}",
                highlight=False,
                soft_wrap=True,
            )


@consumer.command("fetch")
@_registry_option
@_repository_option
@click.option("--patient", help="Affinity-domain patient ID, e.g. 'P1^^^&1.2.3&ISO' [default: the one --code's token names]")
@click.option("--study", "studies", multiple=True, help="Only this Study Instance UID (repeatable) [default: every exam]")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Directory: <out>/<patient>/<study>/<series>/<sop>.dcm")
@click.option("--batch", type=click.IntRange(min=1), default=imaging.DEFAULT_BATCH, show_default=True, help="Instances per RAD-69 request")
@click.option("--transfer-syntax", "transfer_syntaxes", multiple=True, help="Accepted Transfer Syntax UID (repeatable) [default: uncompressed and the common compressed ones]")
@click.option("--source", "sources", multiple=True, help="OID=URL: the RAD-69 endpoint of the Imaging Document Source whose repositoryUniqueId (Retrieve Location UID) is OID (repeatable)")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TOML file with a [consumer] section (sources = [\"OID=URL\", ...])")
@click.option("--no-progress", is_flag=True, help="No progress bar")
@click.option("--no-fsync", is_flag=True, help="Do not flush each file to disk before renaming it into place")
@_consent_options
@_timeout_option
def fetch_images(
    registry: str,
    repository: str,
    patient: str | None,
    studies: tuple[str, ...],
    out: Path,
    batch: int,
    transfer_syntaxes: tuple[str, ...],
    sources: tuple[str, ...],
    config: Path | None,
    no_progress: bool,
    no_fsync: bool,
    code: str | None,
    pin_stdin: bool,
    token_url: str | None,
    timeout: float,
) -> None:
    """Fetch a patient's shared images: ITI-18 -> ITI-43 (manifests, reports) -> RAD-69, verified,
    resumable. Exit status 1 when an instance is missing (listed)."""
    token = _consent_token(registry, code, pin_stdin=pin_stdin, token_url=token_url, timeout=timeout)
    options = imaging.FetchOptions(
        registry=registry,
        repository=repository,
        patient_id=_patient(patient, token),
        security=_security(token),
        out=out,
        sources=_sources(config, sources),
        studies=studies,
        batch_size=batch,
        transfer_syntaxes=transfer_syntaxes or imaging.DEFAULT_TRANSFER_SYNTAXES,
        timeout=timeout,
        fsync=not no_fsync,
    )
    console = Console(stderr=True)
    bar = None if no_progress else _FetchBar(console)
    try:
        summary = imaging.fetch(options, progress=bar)
    except imaging.FetchError as exc:
        _fail(str(exc))
    except (SoapConnectionError, SoapProtocolError, SoapFault) as exc:
        _fail(str(exc))
    finally:
        if bar is not None:
            bar.stop()
    _print_summary(Console(), summary, out)
    if not summary.ok:
        sys.exit(1)
