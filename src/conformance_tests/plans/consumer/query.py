"""ITI-18 Registry Stored Query from the Document Consumer (ITI TF-2a §3.18; xds-notes §6, §8).

The consumer's ``query`` command runs FindDocuments for the test patient; the registry
simulator records the request and the plan judges its SOAP envelope, stored query id and
parameters (quoted strings, the patient id as a CX, full status URNs), and that the consumer
shows the documents found. ``objectref`` runs FindDocuments with returnType ObjectRef and then
GetDocuments for the references. A registry that answers Failure, or a SOAP Fault, must reach
the user as a failed command (non-zero exit status).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from conformance_tests.data.consumer import StoredDocument
from conformance_tests.model import TestCase
from conformance_tests.plans.consumer import checks as c
from conformance_tests.plans.consumer.common import consumer_step, exit_status, peers
from conformance_tests.state import CaseState
from xds.errors import ErrorCode
from xds.query.definitions import StoredQueryId

__all__ = ["cases", "patient_documents"]

TF18: Final = "ITI TF-2a §3.18.4.1.2 (Registry Stored Query request), §3.18.4.1.3 (expected actions)"
REFUSAL: Final = "the registry simulator refuses this query (conformance test)"


def patient_documents(state: CaseState) -> Sequence[StoredDocument]:
    """Every (Approved) document of the test patient."""
    data = peers(state).data
    return data.of_patient(data.patient_id)


def cases() -> tuple[TestCase, ...]:
    find = StoredQueryId.FIND_DOCUMENTS
    return (
        TestCase(
            id="idc-find-documents",
            title="FindDocuments for the test patient",
            tf=TF18 + "; §3.18.4.1.2.3.7.1 (FindDocuments)",
            reference="NIST idc_2018-4831a step 1; xds-notes §6.1, §9",
            option="query",
            description="SOAP 1.2 with wsa:Action, MessageID, To and mustUnderstand; the query id; every parameter "
            "value quoted; the patient as 'id^^^&oid&ISO'; the found documents shown.",
            steps=(consumer_step(
                "find", "the query command for {patient}", "query",
                judges=(c.envelopes("registry"), c.queries(find), exit_status(zero=True), c.mentions(patient_documents)),
                outcome="a valid FindDocuments request; exit 0; every uniqueId of the patient's documents in the output",
            ),),
        ),
        TestCase(
            id="idc-objectref",
            title="FindDocuments as ObjectRef, then GetDocuments for the references",
            tf=TF18 + "; §3.18.4.1.2.1 (returnType), §3.18.4.1.2.3.7.5 (GetDocuments)",
            reference="xds-notes §6.1 (ObjectRef results)",
            option="objectref",
            steps=(consumer_step(
                "objectref", "the objectref command for {patient}", "objectref",
                judges=(c.envelopes("registry"), c.queries(find, return_type=None), c.objectref_then_get_documents(),
                        exit_status(zero=True), c.mentions(patient_documents)),
                outcome="FindDocuments ObjectRef, then GetDocuments LeafClass for every returned entryUUID; exit 0",
            ),),
        ),  # fmt: skip
        TestCase(
            id="idc-query-failure",
            title="A registry Failure reaches the user",
            tf=TF18 + "; ITI TF-3 §4.2.4 (RegistryErrorList)",
            reference="xds-notes §2 (errors in the AdhocQueryResponse)",
            option="query",
            steps=(consumer_step(
                "refused", "the query command; the registry answers Failure XDSRegistryError", "query",
                behaviour=lambda sim: sim.registry.refusing(ErrorCode.REGISTRY_ERROR.value, REFUSAL),
                judges=(c.envelopes("registry"), exit_status(zero=False)),
                outcome="the command exits non-zero",
            ),),
        ),
        TestCase(
            id="idc-query-fault",
            title="A SOAP Fault from the registry reaches the user",
            tf="ITI TF-2x Appendix V.3.3 (SOAP faults); " + TF18,
            reference="xds-notes §1.3",
            option="query",
            steps=(consumer_step(
                "fault", "the query command; the registry answers a SOAP 1.2 Receiver fault", "query",
                behaviour=lambda sim: sim.registry.faulting(),
                judges=(c.envelopes("registry"), exit_status(zero=False)),
                outcome="the command exits non-zero",
            ),),
        ),
    )
