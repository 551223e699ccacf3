"""Building blocks of the Imaging Document Source plan: the test data, the run settings it reads
from the context, the RAD-69 request builder and the RAD-69 / RAD-55 steps.

The source's repositoryUniqueId (the KOS Retrieve Location UID, RAD TF-3 §4.68.4.1.2.1) cannot be
learned over RAD-69, so the operator gives it (``--source-id``): it is :data:`SOURCE_ID_KEY` in
the run context, next to the WADO-URI base URL (:data:`WADO_KEY`, ``--wado``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlencode

from lxml import etree
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from conformance_tests.data.dicom import ImagingTestData, TestInstance, imaging_test_data, instance_keys
from conformance_tests.model import (
    EnvelopeVariant,
    Expectation,
    HttpGetStep,
    HttpVerifier,
    RequestPackaging,
    SoapStep,
    Transaction,
    Verifier,
)
from conformance_tests.state import CaseState
from xds.vocabulary import MIME_DICOM, NS_XDS, NS_XDSI

__all__ = [
    "Ask",
    "Asks",
    "DATA_KEY",
    "EXPLICIT",
    "HOME",
    "IMPLICIT",
    "LOAD_CASE",
    "SOURCE_ID_KEY",
    "UNSUPPORTED_TS",
    "WADO_KEY",
    "ask",
    "data",
    "instances",
    "rad69_request",
    "retrieve",
    "source_id",
    "study_keys",
    "wado_get",
    "wado_url",
]

SOURCE_ID_KEY: Final = "imaging-source-id"
WADO_KEY: Final = "wado-url"
DATA_KEY: Final = "imaging-test-data"
#: The case every other case of the plan requires: the test data is loaded and retrievable.
LOAD_CASE: Final = "ids-load"
EXPLICIT: Final = str(ExplicitVRLittleEndian)
IMPLICIT: Final = str(ImplicitVRLittleEndian)
#: NIST ids_2018-4811 case 09: a syntax no source can produce (not a registered UID).
UNSUPPORTED_TS: Final = "1.2.840.10008.1.2.1.999"
HOME: Final = "urn:oid:1.3.6.1.4.1.21367.13.70.202"


def data(state: CaseState) -> ImagingTestData:
    """The test studies (made once per run)."""
    return cast(ImagingTestData, state.shared_once(DATA_KEY, imaging_test_data))


def instances(state: CaseState, keys: Sequence[str]) -> list[TestInstance]:
    found = data(state)
    return [found.instance(key) for key in keys]


def source_id(state: CaseState) -> str:
    value = state.get(SOURCE_ID_KEY)
    if not value:
        raise LookupError("the source's repositoryUniqueId is not known: give --source-id OID")
    return str(value)


def wado_url(state: CaseState) -> str:
    value = state.get(WADO_KEY)
    if not value:
        raise LookupError("no WADO-URI endpoint: give --wado URL")
    return str(value)


@dataclass(frozen=True, slots=True)
class Ask:
    """One DocumentRequest with the study and series it is asked under (xds-notes §7.4)."""

    study_uid: str
    series_uid: str
    repository_id: str
    document_id: str
    home: str | None = None


Asks = Callable[[CaseState], Sequence[Ask]]


def ask(*keys: str, home: str | None = None) -> Asks:
    """DocumentRequests for the test instances ``keys``, each under its own study and series."""

    def asks(state: CaseState) -> list[Ask]:
        repository = source_id(state)
        return [Ask(i.study_uid, i.series_uid, repository, i.sop_uid, home) for i in instances(state, keys)]

    return asks


def study_keys(study: str) -> tuple[str, ...]:
    """The instance keys of a test study (fixed by :mod:`conformance_tests.data.dicom`)."""
    return instance_keys(study)


def rad69_request(asks: Sequence[Ask], transfer_syntaxes: Sequence[str]) -> etree._Element:
    """An ``xdsi:RetrieveImagingDocumentSetRequest`` (RAD TF-3 §4.69.4.1.2): StudyRequest ->
    SeriesRequest -> xds:DocumentRequest, grouped in the order first asked, then the
    TransferSyntaxUIDList."""
    root = etree.Element(f"{{{NS_XDSI}}}RetrieveImagingDocumentSetRequest", nsmap={"xdsi": NS_XDSI, "xds": NS_XDS})
    studies: dict[str, dict[str, list[Ask]]] = {}
    for item in asks:
        studies.setdefault(item.study_uid, {}).setdefault(item.series_uid, []).append(item)
    for study_uid, series in studies.items():
        study = etree.SubElement(root, f"{{{NS_XDSI}}}StudyRequest", studyInstanceUID=study_uid)
        for series_uid, items in series.items():
            series_element = etree.SubElement(study, f"{{{NS_XDSI}}}SeriesRequest", seriesInstanceUID=series_uid)
            for item in items:
                request = etree.SubElement(series_element, f"{{{NS_XDS}}}DocumentRequest")
                if item.home is not None:
                    etree.SubElement(request, f"{{{NS_XDS}}}HomeCommunityId").text = item.home
                etree.SubElement(request, f"{{{NS_XDS}}}RepositoryUniqueId").text = item.repository_id
                etree.SubElement(request, f"{{{NS_XDS}}}DocumentUniqueId").text = item.document_id
    syntaxes = etree.SubElement(root, f"{{{NS_XDSI}}}TransferSyntaxUIDList")
    for uid in transfer_syntaxes:
        etree.SubElement(syntaxes, f"{{{NS_XDSI}}}TransferSyntaxUID").text = uid
    return root


def retrieve(
    name: str,
    purpose: str,
    asks: Asks,
    expect: Expectation,
    *,
    syntaxes: Sequence[str] = (EXPLICIT,),
    verify: Sequence[Verifier] = (),
    packaging: RequestPackaging = RequestPackaging.MTOM,
    envelope: EnvelopeVariant | None = None,
    settle: float = 0.0,
) -> SoapStep:
    """A RAD-69 Retrieve Imaging Document Set step (RAD TF-3 §4.69). Requests are MTOM, as the
    NIST tools send them (xds-notes §1.4)."""
    wanted = tuple(syntaxes)
    return SoapStep(
        name=name,
        purpose=purpose,
        transaction=Transaction.RAD69,
        request=lambda state: rad69_request(asks(state), wanted),
        expect=expect,
        verify=tuple(verify),
        packaging=packaging,
        envelope=envelope or EnvelopeVariant(),
        settle=settle,
    )


UrlParts = Callable[[CaseState], tuple[str, str, str]]


def wado_get(
    name: str,
    purpose: str,
    uids: UrlParts,
    status: int,
    *,
    verify: Sequence[HttpVerifier] = (),
    note: str = "",
) -> HttpGetStep:
    """A RAD-55 WADO-URI GET (RAD TF-3 §4.55.4.1; DICOM PS3.18 §9 URI service) for
    (studyUID, seriesUID, objectUID), asking for ``application/dicom``."""

    def url(state: CaseState) -> str:
        base = wado_url(state)
        study, series, sop = uids(state)
        query = urlencode(
            {"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop, "contentType": MIME_DICOM}
        )
        return f"{base}{'&' if '?' in base else '?'}{query}"

    return HttpGetStep(
        name=name, purpose=purpose, transaction=Transaction.RAD55, url=url, status=status, verify=tuple(verify), note=note
    )
