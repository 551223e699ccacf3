"""RAD-69 retrieves that succeed: whole studies (NIST ids_2018-4803a/b/c), a subset, several
studies in one request, PartialSuccess, HomeCommunityId (ids_2018-4820) and the response
packaging (xds-notes §7.5, §8.5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from conformance_tests.model import Expectation, RequestPackaging, SoapStep, TestCase, Verifier, success
from conformance_tests.plans.imaging_source import checks as c
from conformance_tests.plans.imaging_source.common import (
    EXPLICIT,
    HOME,
    LOAD_CASE,
    Ask,
    ask,
    data,
    retrieve,
    source_id,
    study_keys,
)
from conformance_tests.state import CaseState
from xds.errors import ErrorCode
from xds.vocabulary import ResponseStatus

__all__ = ["cases", "fetch"]

TF69: Final = "RAD TF-3 §4.69.4.1.3 (Imaging Document Source expected actions), §4.69.4.2"


def fetch(
    keys: Sequence[str],
    *,
    name: str = "retrieve",
    purpose: str = "",
    home: str | None = None,
    syntaxes: Sequence[str] = (EXPLICIT,),
    packaging: RequestPackaging = RequestPackaging.MTOM,
) -> SoapStep:
    """RAD-69 for the instances ``keys``: Success, each returned as stored."""
    return retrieve(
        name,
        purpose or f"RAD-69 for {', '.join(keys)} in {', '.join(syntaxes)}" + (f" with HomeCommunityId {home}" if home else ""),
        ask(*keys, home=home),
        success(note=f"{len(keys)} instances, each the one stored"),
        syntaxes=syntaxes,
        verify=_judged(keys, syntaxes=syntaxes, home=home),
        packaging=packaging,
    )


def _judged(keys: Sequence[str], *, syntaxes: Sequence[str], home: str | None = None) -> tuple[Verifier, ...]:
    return (c.mtom_response(), c.document_count(len(keys)), c.returned(keys, syntaxes=syntaxes, home=home))


def _case(case_id: str, title: str, steps: tuple[SoapStep, ...], *, tf: str = TF69, reference: str = "",
          description: str = "", option: str | None = None, independent: bool = False) -> TestCase:
    return TestCase(id=case_id, title=title, tf=tf, reference=reference, description=description, steps=steps,
                    requires=(LOAD_CASE,), option=option, independent_steps=independent)  # fmt: skip


def _unknown(state: CaseState) -> str:
    return data(state).unknown_uids[0]


def _partial(state: CaseState) -> list[Ask]:
    known = ask("ct-1")(state)[0]
    return [known, Ask(known.study_uid, known.series_uid, source_id(state), _unknown(state))]


def partial_success() -> Expectation:
    # RAD69-003; ITI TF-2b §3.43.4.2.3: some documents returned, an error for each of the others.
    return Expectation(status=ResponseStatus.PARTIAL_SUCCESS, errors=(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value,))


def cases() -> tuple[TestCase, ...]:
    ct, mr, mm = study_keys("ct"), study_keys("mr"), study_keys("mm")
    return (
        _case("4803a", "One study, one series: every instance, byte for byte", (fetch(ct),),
              reference="NIST ids_2018-4803a"),
        _case("4803b", "One study, two series", (fetch(mr),), reference="NIST ids_2018-4803b"),
        _case("4803c", "A multi-modality study (CT and MR series)", (fetch(mm),), reference="NIST ids_2018-4803c"),
        _case("rad69-subset", "A subset of a study's instances", (fetch((ct[0], ct[2])),),
              reference="xds-notes §7.4 (a request names instances, not whole studies)"),
        _case("rad69-studies", "Several studies in one request", (fetch((ct[1], mr[0], mr[3], mm[1])),),
              reference="xds-notes §7.4 (StudyRequest 1..n)",
              description="Three StudyRequest elements, one with two SeriesRequest elements."),
        _case("rad69-partial", "One known and one unknown instance: PartialSuccess", (
            retrieve("retrieve", "ct-1 and an unknown SOP Instance UID in the same series", _partial, partial_success(),
                     verify=(c.mtom_response(), c.document_count(1), c.returned(["ct-1"], syntaxes=(EXPLICIT,)),
                             c.error_at(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value, _unknown))),
        ), tf=TF69 + "; ITI TF-2b §3.43.4.2.3 (PartialSuccess)", reference="RAD69-003; NIST 15816 (ITI-43 semantics)"),
        _case("4820", "HomeCommunityId is returned when it was sent, and only then", (
            fetch(["ct-1"], name="with_home", home=HOME),
            fetch(["ct-1"], name="without_home"),
        ), tf=TF69 + "; RAD TF-3 §4.69.4.2.2", reference="NIST ids_2018-4820; xds-notes §9 item 13", independent=True),
        _case("rad69-simple-request", "The response is MTOM even for a simple SOAP request", (
            fetch(["ct-1"], packaging=RequestPackaging.SIMPLE, purpose="RAD-69 for ct-1 as application/soap+xml"),
        ), reference="xds-notes §1.4 (RAD-69 responses are MTOM)", option="simple-soap"),
    )  # fmt: skip
