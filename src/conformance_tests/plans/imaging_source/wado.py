"""RAD-55 WADO-URI at the Imaging Document Source (RAD TF-3 §4.55; DICOM PS3.18 §9), run when
the operator gives the source's WADO-URI endpoint (``--wado URL``, option ``wado``).

NIST ids_2018-4802a/b/c retrieve every instance of the three test studies; ids_2018-4810 asks for
unknown, mismatched and empty UIDs and expects HTTP 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from conformance_tests.model import HttpGetStep, TestCase
from conformance_tests.plans.imaging_source import checks as c
from conformance_tests.plans.imaging_source.common import EXPLICIT, LOAD_CASE, data, instances, study_keys, wado_get
from conformance_tests.state import CaseState

__all__ = ["OPTION", "cases"]

OPTION: Final = "wado"
TF: Final = "RAD TF-3 §4.55.4.1 (WADO Retrieve); DICOM PS3.18 §9.1 (URI service, application/dicom)"
# PS3.18 §9.1.2.1.13 (transferSyntax): absent, the object is returned in Explicit VR Little Endian.
DEFAULT_SYNTAX: Final = (EXPLICIT,)


def _uids(key: str) -> Callable[[CaseState], tuple[str, str, str]]:
    def uids(state: CaseState) -> tuple[str, str, str]:
        item = instances(state, [key])[0]
        return item.study_uid, item.series_uid, item.sop_uid

    return uids


def _get(key: str) -> HttpGetStep:
    return wado_get(key, f"WADO-URI for {key}, contentType=application/dicom", _uids(key), 200,
                    verify=(c.wado_instance(key, syntaxes=DEFAULT_SYNTAX),),
                    note="application/dicom, the instance as stored (Explicit VR Little Endian)")  # fmt: skip


def _study(case_id: str, study: str, title: str) -> TestCase:
    return TestCase(id=case_id, title=title, tf=TF, reference=f"NIST ids_2018-{case_id}", requires=(LOAD_CASE,),
                    option=OPTION, steps=tuple(_get(k) for k in study_keys(study)))  # fmt: skip


def _missing(name: str, purpose: str, uids: Callable[[CaseState], tuple[str, str, str]]) -> HttpGetStep:
    return wado_get(name, purpose, uids, 404, verify=(), note="no object is returned")


def _mismatch(state: CaseState, *, series: bool = False, study: bool = False, empty: bool = False) -> tuple[str, str, str]:
    item, other = instances(state, ["ct-1", "mr-1"])
    unknown = data(state).unknown_uids[0]
    if empty:
        return item.study_uid, item.series_uid, ""
    if series:
        return item.study_uid, other.series_uid, item.sop_uid
    if study:
        return other.study_uid, item.series_uid, item.sop_uid
    return item.study_uid, item.series_uid, unknown


def cases() -> tuple[TestCase, ...]:
    return (
        _study("4802a", "ct", "WADO-URI: every instance of the single-series study"),
        _study("4802b", "mr", "WADO-URI: every instance of the two-series study"),
        _study("4802c", "mm", "WADO-URI: every instance of the multi-modality study"),
        TestCase(
            id="4810", title="WADO-URI exceptions: unknown, mismatched and empty UIDs give 404", tf=TF,
            reference="NIST ids_2018-4810; xds-notes §1.1 (unknown UIDs must give HTTP 404)",
            requires=(LOAD_CASE,), option=OPTION, independent_steps=True,
            steps=(
                _missing("unknown_object", "an objectUID the source never received", _mismatch),
                _missing("other_series", "ct-1 under the series of mr-1", lambda s: _mismatch(s, series=True)),
                _missing("other_study", "ct-1 under the study of mr-1", lambda s: _mismatch(s, study=True)),
                _missing("empty_object", "an empty objectUID", lambda s: _mismatch(s, empty=True)),
            ),
        ),
    )  # fmt: skip
