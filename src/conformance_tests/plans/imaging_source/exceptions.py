"""RAD-69 exceptions (NIST ids_2018-4811 cases 01-09; xds-notes §7.5, §8.5).

NIST grades these by status Failure and a non-empty RegistryErrorList, and compares the code in
case 01 only (XDSUnknownRepositoryId). This plan also requires the codes the notes give where
the Technical Framework names one: XDSDocumentUniqueIdError with the SOP Instance UID as
location for an instance that is unknown or not in the study or series it was asked under
(ITI TF-3 Table 4.2.4.1-2, RAD69-019), and XDSRepositoryError when no requested transfer syntax
can be produced (RAD69-005). Empty UIDs only need Failure with an error (Gazelle rad69 OCL rules).
Each request names a single instance, so nothing may be returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from conformance_tests.model import Expectation, SoapStep, TestCase, failure
from conformance_tests.plans.imaging_source import checks as c
from conformance_tests.plans.imaging_source.common import (
    EXPLICIT,
    LOAD_CASE,
    UNSUPPORTED_TS,
    Ask,
    data,
    instances,
    retrieve,
    source_id,
)
from conformance_tests.state import CaseState
from xds.errors import ErrorCode

__all__ = ["cases"]

TF: Final = "RAD TF-3 §4.69.4.1.3, §4.69.4.2.3; ITI TF-3 Table 4.2.4.1-2"
UNKNOWN_ID: Final = ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value


def _one(key: str, *, study: str | None = None, series: str | None = None,
         other_repository: bool = False) -> Callable[[CaseState], list[Ask]]:
    """A request for instance ``key``, with its study or series UID replaced, or under a
    RepositoryUniqueId drawn fresh for the case (``other_repository``)."""

    def asks(state: CaseState) -> list[Ask]:
        item = instances(state, [key])[0]
        repository = str(state.once("other-repository", state.ids.oid)) if other_repository else source_id(state)
        return [Ask(item.study_uid if study is None else study, item.series_uid if series is None else series,
                    repository, item.sop_uid)]

    return asks  # fmt: skip


def _refused(name: str, purpose: str, asks: Callable[[CaseState], Sequence[Ask]], expect: Expectation, *,
             location: Callable[[CaseState], str] | None = None, syntaxes: Sequence[str] = (EXPLICIT,)) -> SoapStep:
    verify = [c.mtom_response(), c.document_count(0)]
    if location is not None:
        verify.append(c.error_at(expect.errors[0], location))
    # A Failure carries no image; the packaging rule is the same for every response.
    return retrieve(name, purpose, asks, expect, syntaxes=syntaxes, verify=verify)  # fmt: skip


def _uid_of(key: str) -> Callable[[CaseState], str]:
    return lambda state: instances(state, [key])[0].sop_uid


def _unknown(state: CaseState) -> str:
    return data(state).unknown_uids[0]


def _case(number: str, title: str, step: SoapStep, *, reference: str = "") -> TestCase:
    return TestCase(id=f"4811-{number}", title=title, tf=TF, reference=f"NIST ids_2018-4811 case {number}" + reference,
                    requires=(LOAD_CASE,), steps=(step,))  # fmt: skip


def _series_swap(key: str, series_of: str) -> Callable[[CaseState], list[Ask]]:
    def asks(state: CaseState) -> list[Ask]:
        item, other = instances(state, [key, series_of])
        return [Ask(item.study_uid, other.series_uid, source_id(state), item.sop_uid)]

    return asks


def _study_swap(key: str, study_of: str) -> Callable[[CaseState], list[Ask]]:
    def asks(state: CaseState) -> list[Ask]:
        item, other = instances(state, [key, study_of])
        return [Ask(other.study_uid, item.series_uid, source_id(state), item.sop_uid)]

    return asks


def _unknown_sop(state: CaseState) -> list[Ask]:
    item = instances(state, ["ct-1"])[0]
    return [Ask(item.study_uid, item.series_uid, source_id(state), _unknown(state))]


def cases() -> tuple[TestCase, ...]:
    return (
        _case("01", "A RepositoryUniqueId that is not the source's", _refused(
            "retrieve", "ct-1 under another RepositoryUniqueId", _one("ct-1", other_repository=True),
            failure(ErrorCode.UNKNOWN_REPOSITORY_ID.value)), reference="; xds-notes §2.1 (the RAD-69 gold standard code)"),
        _case("02", "An unknown SOP Instance UID", _refused(
            "retrieve", "a SOP Instance UID the source never received", _unknown_sop, failure(UNKNOWN_ID),
            location=_unknown)),
        _case("03", "A SOP Instance asked under another series of its study", _refused(
            "retrieve", "mr-1 under the series of mr-3", _series_swap("mr-1", "mr-3"), failure(UNKNOWN_ID),
            location=_uid_of("mr-1"))),
        _case("04", "A SOP Instance asked under another study", _refused(
            "retrieve", "ct-1 under the study of mr-1", _study_swap("ct-1", "mr-1"), failure(UNKNOWN_ID),
            location=_uid_of("ct-1"))),
        _case("05", "Empty studyInstanceUID", _refused(
            "retrieve", "ct-1 with studyInstanceUID=\"\"", _one("ct-1", study=""), failure(note="a request error"))),
        _case("06", "Empty seriesInstanceUID", _refused(
            "retrieve", "ct-1 with seriesInstanceUID=\"\"", _one("ct-1", series=""), failure(note="a request error"))),
        _case("07", "Empty study and series UIDs", _refused(
            "retrieve", "ct-1 with both UIDs empty", _one("ct-1", study="", series=""), failure(note="a request error"))),
        _case("08", "An empty TransferSyntaxUID", _refused(
            "retrieve", "ct-1 with <TransferSyntaxUID/>", _one("ct-1"), failure(note="a request error"), syntaxes=("",))),
        _case("09", "Only a transfer syntax the source cannot produce", _refused(
            "retrieve", f"ct-1 in {UNSUPPORTED_TS} only", _one("ct-1"),
            failure(ErrorCode.REPOSITORY_ERROR.value, note="cannot encode in the requested transfer syntaxes"),
            syntaxes=(UNSUPPORTED_TS,)), reference="; RAD69-005"),
    )  # fmt: skip
