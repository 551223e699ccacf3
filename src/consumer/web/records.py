"""The patient's records as the pages show them, assembled from the affinity domain (blocking
calls; the views run these in worker threads):

* the jacket: the grant's exams from the self-service API (released or not, with release
  times), joined with what ITI-18 shows the token (the released manifests and their reports);
  report documents retrieved once per session with ITI-43 into the session's cache;
* a study's images: fetched once per session with the consumer flow (ITI-18, ITI-43, RAD-69)
  into the session's cache, then indexed for the viewer.

Only studies within the token's scope are fetched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from consumer import iti43
from consumer.fetch import DocumentRef, Exam, patient_directory
from consumer.self_service import SelfExam, SelfGrant, SelfServiceError, SessionEnded
from consumer.web.formatting import format_date
from consumer.web.state import Portal, SignedIn
from consumer.web.studies import INDEX_NAME, StudyIndex, is_uid, load_index

__all__ = ["JacketExam", "Report", "StudyUnavailable", "describe", "document_file", "ensure_study", "load_jacket", "study_dir"]

log = logging.getLogger(__name__)

TEXT: Final = "text/plain"
PDF: Final = "application/pdf"
#: The Edge Server titles its documents "Imaging manifest: <description>" and "Radiology report:
#: <description>"; the page shows the description.
_TITLE_PREFIXES: Final = ("Imaging manifest:", "Radiology report:")


class StudyUnavailable(Exception):
    """Not one image of the study could be fetched (the message says why, for the log)."""


@dataclass(frozen=True, slots=True)
class Report:
    unique_id: str
    title: str
    mime_type: str
    text: str | None  # the text of a text/plain report (None: offered as a download only)
    truncated: bool


@dataclass(frozen=True, slots=True)
class JacketExam:
    study_uid: str
    title: str
    date: str
    modalities: tuple[str, ...]
    body_part: str
    accession: str
    released: bool
    release_time: datetime | None
    reports: tuple[Report, ...]


def describe(title: str) -> str:
    for prefix in _TITLE_PREFIXES:
        if title.startswith(prefix):
            return title[len(prefix) :].strip()
    return title.strip()


def study_dir(portal: Portal, who: SignedIn, study_uid: str) -> Path:
    if not is_uid(study_uid):
        raise ValueError("not a UID")
    return portal.cache_dir(who) / "images" / patient_directory(who.patient_id) / study_uid


def _documents_dir(portal: Portal, who: SignedIn) -> Path:
    return portal.cache_dir(who) / "documents"


def document_file(portal: Portal, who: SignedIn, unique_id: str) -> tuple[Path, str] | None:
    """The cached file and mimeType of a report the jacket retrieved for this session."""
    known: dict[str, tuple[str, str]] = who.session.data.get("documents", {})
    entry = known.get(unique_id)
    if entry is None:
        return None
    path = _documents_dir(portal, who) / entry[0]
    return (path, entry[1]) if path.is_file() else None


def _read_text(path: Path, limit: int) -> tuple[str, bool]:
    with open(path, "rb") as f:
        data = f.read(limit * 4 + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return (text[:limit], len(text) > limit)


def _reports(portal: Portal, who: SignedIn, token: object, exams: list[Exam]) -> dict[str, tuple[Report, ...]]:
    """study UID -> its reports, retrieving those not yet in the session's cache (ITI-43)."""
    known: dict[str, tuple[str, str]] = who.session.data.setdefault("documents", {})
    directory = _documents_dir(portal, who)
    wanted: list[DocumentRef] = []
    for exam in exams:
        for ref in exam.reports:
            name = iti43.file_name(ref.unique_id, ref.mime_type)
            if ref.unique_id not in known or not (directory / name).is_file():
                wanted.append(ref)
    if wanted:
        try:
            files = portal.backend.documents(token, wanted, directory)  # type: ignore[arg-type]
        except SessionEnded:
            raise
        except Exception as exc:  # the reports are extra: the jacket still shows the exams
            log.warning("portal: reports not retrieved: %s", type(exc).__name__)
            files = {}
        for ref in wanted:
            if ref.unique_id in files:
                known[ref.unique_id] = (files[ref.unique_id].name, ref.mime_type.split(";")[0].strip().lower())
    result: dict[str, tuple[Report, ...]] = {}
    for exam in exams:
        reports = []
        for ref in exam.reports:
            entry = known.get(ref.unique_id)
            if entry is None:
                continue
            text, cut = (None, False)
            if entry[1] == TEXT:
                text, cut = _read_text(directory / entry[0], portal.settings.max_report_chars)
            reports.append(Report(ref.unique_id, describe(ref.title), entry[1], text, cut))
        result[exam.study_uid] = tuple(reports)
    return result


def _body_part(portal: Portal, who: SignedIn, study_uid: str) -> str:
    """Known once the study's images are in the cache (BodyPartExamined); blank before."""
    if not is_uid(study_uid):
        return ""
    directory = study_dir(portal, who, study_uid)
    if not (directory / INDEX_NAME).is_file():
        return ""
    return ", ".join(load_index(directory).body_parts)


def load_jacket(portal: Portal, who: SignedIn) -> tuple[SelfGrant | None, list[JacketExam]]:
    """Every exam of the grant, newest first: released ones with their reports, the others
    with the time they will be released."""
    token = portal.token(who)
    try:
        grant: SelfGrant | None = portal.backend.grant(token)
    except SessionEnded:
        raise
    except SelfServiceError as exc:
        log.warning("portal: the self-service API failed (%s): showing the released exams only", exc.status)
        grant = None
    found = portal.backend.exams(token, who.patient_id)
    by_study = {e.study_uid: e for e in found if e.study_uid}
    reports = _reports(portal, who, token, found)
    own: list[SelfExam] = list(grant.exams) if grant is not None else []
    listed = {e.study_uid for e in own}
    rows: list[JacketExam] = []
    for exam in own:
        seen = by_study.get(exam.study_uid)
        released = exam.released and portal.in_scope(who, exam.study_uid)
        rows.append(
            JacketExam(
                study_uid=exam.study_uid,
                title=describe(exam.title or (seen.title if seen else "")),
                date=format_date(exam.date or (seen.date if seen else "")),
                modalities=exam.modalities or (seen.modalities if seen else ()),
                body_part=_body_part(portal, who, exam.study_uid) if released else "",
                accession=seen.accession if seen else "",
                released=released,
                release_time=exam.release_time,
                reports=reports.get(exam.study_uid, ()) if released else (),
            )
        )
    for study_uid, seen in by_study.items():
        if study_uid not in listed and portal.in_scope(who, study_uid):
            rows.append(
                JacketExam(
                    study_uid=study_uid,
                    title=describe(seen.title),
                    date=format_date(seen.date),
                    modalities=seen.modalities,
                    body_part=_body_part(portal, who, study_uid),
                    accession=seen.accession,
                    released=True,
                    release_time=None,
                    reports=reports.get(study_uid, ()),
                )
            )
    rows.sort(key=lambda r: r.date, reverse=True)
    return grant, rows


def ensure_study(portal: Portal, who: SignedIn, study_uid: str) -> StudyIndex:
    """The study's images in the session's cache (fetched the first time), indexed.

    Raises :class:`StudyUnavailable` when nothing could be fetched, ``PermissionError`` for a
    study outside the token's scope.
    """
    if not is_uid(study_uid) or not portal.in_scope(who, study_uid):
        raise PermissionError("not a study of this token")
    directory = study_dir(portal, who, study_uid)
    with portal.cache.lock(who.cache_id, study_uid):
        if (directory / INDEX_NAME).is_file():
            return load_index(directory)
        token = portal.token(who)
        summary = portal.backend.fetch_study(token, who.patient_id, study_uid, portal.cache_dir(who) / "images")
        if summary.failures or summary.errors:
            log.warning(
                "portal: study fetched with %d failure(s) and %d error(s)", len(summary.failures), len(summary.errors)
            )
        if not directory.is_dir():
            raise StudyUnavailable("no image of the study was fetched")
        index = load_index(directory, rebuild=True)
        if not index.series:
            raise StudyUnavailable("the study has no images")
        return index
