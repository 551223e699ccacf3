"""RAD-68 Provide and Register Imaging Document Set - MTOM/XOP: the source under test shares a
study the runner loaded, and the repository simulator judges what arrives (NIST ids_2018-4801a/b/c,
xds-notes §7.2, §7.3, §8.5).

The three cases follow NIST's single-image / multi-series / multi-modality studies with the
runner's own test data (:mod:`conformance_tests.data.dicom`): ``4801a`` the single-series CT
study, ``4801b`` the two-series MR study, ``4801c`` the CT + MR study (two modality codes).

How the source is made to submit is the operator's choice (the ``submit`` option):

* a command template (``--command submit='...'``), run once per case with the placeholders of
  :data:`PLACEHOLDERS` filled in (no shell), which must exit 0; the runner then waits up to
  ``--submit-timeout`` seconds for a RAD-68 that concerns the study (the source may submit
  asynchronously, e.g. from a job queue);
* no template: the runner shows what to do ("make the source send study ... to ...") and waits
  the same time; a submission of the study that already arrived (an autosending source) counts.

Each case then judges, in independent steps, the packaging and envelope (MTOM/XOP, SOAP 1.2,
WS-Addressing, XSD), the KOS manifest (pydicom) and the manifest's DocumentEntry (XPath).

Public API::

    OPTION, SUBMIT_KEY, PLACEHOLDERS
    SubmitSettings(template=None, timeout=120.0, command_timeout=120.0, dicom="", dicom_ae="",
                   schemas=None, prompt=None)
    cases() -> tuple[TestCase, ...]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

from conformance_tests.data.dicom import TestStudy
from conformance_tests.evidence import Exchange
from conformance_tests.model import ActionStep, Check, TestCase, Transaction
from conformance_tests.plans.imaging_source.common import LOAD_CASE, SOURCE_ID_KEY, data, source_id
from conformance_tests.plans.imaging_source.kos_checks import judge_kos
from conformance_tests.plans.imaging_source.provided import ProvidedRequest
from conformance_tests.plans.imaging_source.submit_checks import judge_envelope, judge_metadata
from conformance_tests.schemas import SchemaSet
from conformance_tests.simulators.repository import CONTEXT_KEY as REPOSITORY_KEY
from conformance_tests.simulators.repository import RepositorySimulator
from conformance_tests.state import CaseState
from conformance_tests.transport import run_command

__all__ = ["OPTION", "PLACEHOLDERS", "SUBMIT_KEY", "SubmitSettings", "cases"]

OPTION: Final = "submit"
SUBMIT_KEY: Final = "imaging-submit"
_PROVIDED: Final = "provided"
#: Seconds to wait, once a request has arrived, for the simulator's answer (evidence only).
_ANSWER_WAIT: Final = 10.0
#: Every placeholder a submit template (and the manual instruction) may use.
PLACEHOLDERS: Final = {
    "repository": "RAD-68 endpoint of the repository simulator",
    "repository_id": "repositoryUniqueId of the repository simulator",
    "patient": "the study's Patient ID (0010,0020), the MRN the source knows",
    "issuer": "the study's Issuer of Patient ID (0010,0021)",
    "study_uid": "the Study Instance UID to share",
    "accession": "the study's Accession Number (0008,0050)",
    "dicom": "the source's Storage SCP as HOST:PORT (--dicom; empty otherwise)",
    "dicom_ae": "the AE title of that Storage SCP (--dicom-ae)",
    "source_id": "the source's repositoryUniqueId (--source-id)",
}
_MANUAL: Final = (
    "Make the Imaging Document Source share study {study_uid} (patient {patient}, accession {accession}) "
    "with the Document Repository at {repository} (RAD-68)"
)
_TF: Final = "RAD TF-3 §4.68 (Provide and Register Imaging Document Set - MTOM/XOP); ITI TF-2b §3.41"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSettings:
    """How the source is made to submit, and what the judges need (the run context's
    :data:`SUBMIT_KEY`)."""

    template: str | None = None
    #: Seconds to wait for the RAD-68 of a study after the command (or the instruction).
    timeout: float = 120.0
    command_timeout: float = 120.0
    dicom: str = ""
    dicom_ae: str = ""
    schemas: SchemaSet | None = None
    #: Shows the manual instruction to the operator (the console); None: not shown.
    prompt: Callable[[str], None] | None = None


def _settings(state: CaseState) -> SubmitSettings:
    found = state.get(SUBMIT_KEY)
    return found if isinstance(found, SubmitSettings) else SubmitSettings()


def _simulator(state: CaseState) -> RepositorySimulator:
    found = state.get(REPOSITORY_KEY)
    if not isinstance(found, RepositorySimulator):
        raise LookupError("this run has no repository simulator (the submit option starts it)")
    return found


def _values(state: CaseState, study: TestStudy, sim: RepositorySimulator, settings: SubmitSettings) -> dict[str, str]:
    images = study.instances[0].dataset()
    return {
        "repository": sim.url,
        "repository_id": sim.repository_id,
        "patient": str(images.get("PatientID", "")),
        "issuer": str(images.get("IssuerOfPatientID", "")),
        "study_uid": study.study_uid,
        "accession": str(images.get("AccessionNumber", "")),
        "dicom": settings.dicom,
        "dicom_ae": settings.dicom_ae,
        "source_id": str(state.get(SOURCE_ID_KEY) or ""),
    }


def _first_concerning(study_uid: str, since: int) -> Callable[[list[Exchange]], ProvidedRequest | None]:
    def find(exchanges: list[Exchange]) -> ProvidedRequest | None:
        for exchange in exchanges[since:]:
            if exchange.request_body:
                provided = ProvidedRequest.read(exchange)
                if provided.concerns(study_uid):
                    return provided
        return None

    return find


def _submit(study_key: str) -> Callable[[CaseState], tuple[list[Exchange], list[Check]]]:
    def perform(state: CaseState) -> tuple[list[Exchange], list[Check]]:
        sim, settings = _simulator(state), _settings(state)
        study = data(state).study(study_key)
        values = _values(state, study, sim, settings)
        mark = len(sim.exchanges)
        exchanges: list[Exchange] = []
        checks: list[Check] = []
        if settings.template:
            outcome = run_command(settings.template, values=values, label="submit command", timeout=settings.command_timeout)
            exchanges.append(outcome.exchange)
            ran = outcome.returncode == 0
            checks.append(Check("submit command", ran, outcome.exchange.error or f"exit {outcome.returncode}",
                                "the operator's command makes the source share the study"))  # fmt: skip
            if not ran:
                return exchanges, checks
        else:
            if settings.prompt is not None:
                settings.prompt(_MANUAL.format(**values) + f"; waiting up to {settings.timeout:g} s")
            mark = 0  # a source that shared on its own (autosend) already did
        provided = sim.wait_for(_first_concerning(study.study_uid, mark), timeout=settings.timeout)
        arrived = sim.exchanges[mark:]
        if provided is None:
            checks.append(Check("RAD-68 received", False, f"no request about study {study.study_uid} within "
                                f"{settings.timeout:g} s ({len(arrived)} other request(s) arrived)", _TF))  # fmt: skip
            return exchanges + arrived, checks
        deadline = time.monotonic() + _ANSWER_WAIT
        while not provided.exchange.response_status and time.monotonic() < deadline:
            time.sleep(0.05)  # the answer completes the evidence
        state.set(_PROVIDED, provided)
        order = next((n for n, e in enumerate(sim.exchanges, start=1) if e is provided.exchange), 0)
        checks.append(Check("RAD-68 received", True, f"request {order} of the simulator, {len(provided.exchange.request_body)} "
                            f"bytes, {len(provided.entries)} DocumentEntr{'y' if len(provided.entries) == 1 else 'ies'}",
                            _TF))  # fmt: skip
        return exchanges + [provided.exchange], checks

    return perform


Judge = Callable[[CaseState, ProvidedRequest, TestStudy], list[Check]]


def _judging(name: str, purpose: str, study_key: str, judge: Judge, outcome: str) -> ActionStep:
    def perform(state: CaseState) -> tuple[list[Exchange], list[Check]]:
        provided = state.get(_PROVIDED)
        if provided is None:
            return [], [Check("RAD-68 received", False, "nothing to judge: no RAD-68 for the study (step submit)", _TF)]
        return [], judge(state, cast(ProvidedRequest, provided), data(state).study(study_key))

    return ActionStep(name=name, purpose=purpose, transaction=Transaction.RAD68, perform=perform, outcome=outcome)


def _envelope(state: CaseState, provided: ProvidedRequest, study: TestStudy) -> list[Check]:
    return judge_envelope(provided, schemas=_settings(state).schemas)


def _kos(state: CaseState, provided: ProvidedRequest, study: TestStudy) -> list[Check]:
    return judge_kos(provided, study, source_id=source_id(state))


def _metadata(state: CaseState, provided: ProvidedRequest, study: TestStudy) -> list[Check]:
    return judge_metadata(provided, study, affinity_domain=state.ids.assigning_authority)


def _case(case_id: str, study_key: str, title: str, reading: str) -> TestCase:
    return TestCase(
        id=case_id,
        title=title,
        tf=f"{_TF}; RAD TF-3 §4.68.4.1.2.1 (KOS), §4.68.4.1.2.3.2 (metadata)",
        reference=f"NIST ids_2018-{case_id}",
        description=f"{reading} The source is made to share the study (--command submit=... or the manual "
        "step); the first RAD-68 about the study that reaches the repository simulator is judged. The "
        "simulator answers Success. Other documents in the submission (e.g. a report) must pair with their "
        "xds:Document and carry the same patient.",
        steps=(
            ActionStep(name="submit", purpose="make the source share the study; wait for its RAD-68",
                       transaction=Transaction.RAD68, perform=_submit(study_key),
                       outcome="a RAD-68 about the study reaches the repository simulator"),
            _judging("envelope", "packaging, SOAP 1.2, WS-Addressing and schema of the request", study_key,
                     _envelope, "MTOM/XOP with an application/xop+xml root part; wsa:Action "
                     "ProvideAndRegisterDocumentSet-b; XSD-valid"),
            _judging("kos", "the KOS manifest from its MTOM part", study_key, _kos,
                     "a Key Object Selection Document titled Manifest, referencing exactly the loaded instances"),
            _judging("metadata", "the manifest's DocumentEntry", study_key, _metadata,
                     "formatCode, mimeType, uniqueId, referenceIdList, eventCodeList, hash/size and patient ids "
                     "as RAD-68 requires"),
        ),  # fmt: skip
        requires=(LOAD_CASE,),
        option=OPTION,
        independent_steps=True,
    )


def cases() -> tuple[TestCase, ...]:
    return (
        _case("4801a", "ct", "RAD-68 of a single-series study (CT, three images)",
              "NIST's single-image study; here the CT study of one series."),
        _case("4801b", "mr", "RAD-68 of a multi-series study (MR, two series)",
              "NIST's multi-series study; here the MR study, two series, patient name in Latin-1."),
        _case("4801c", "mm", "RAD-68 of a multi-modality study (CT and MR)",
              "NIST's multi-modality study; eventCodeList must carry both CT and MR."),
    )  # fmt: skip
