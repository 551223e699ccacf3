"""SOAP 1.2 and WS-Addressing behaviour of the registry endpoint (ITI TF-2x Appendix V;
xds-notes §1.3): unknown actions, headers it cannot understand, and SOAP 1.1 requests."""

from __future__ import annotations

from typing import Final

from lxml import etree

from conformance_tests.model import EnvelopeVariant, SoapStep, TestCase, Transaction, soap_fault
from conformance_tests.plans.registry.common import REG, doc, new_submission
from conformance_tests.state import CaseState
from xds.query import build_adhoc_query
from xds.vocabulary import WsaFault

UNKNOWN_ACTION: Final = "urn:imageshare:conformance:NoSuchAction"


def _find_documents(state: CaseState) -> etree._Element:
    return build_adhoc_query(
        "FindDocuments",
        {
            "$XDSDocumentEntryPatientId": state.patient(REG),
            "$XDSDocumentEntryStatus": ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"],
        },
        validate=False,
    )


def _register(state: CaseState) -> etree._Element:
    sub = new_submission(state, "s1")
    sub.add_document(doc(state, "d1"))
    return sub.element()


def case_action() -> TestCase:
    return TestCase(
        id="soap-action",
        title="Unknown wsa:Action",
        tf="ITI TF-2x V.3.2; WS-Addressing 1.0 SOAP Binding §6.4.4 (ActionNotSupported)",
        reference="xds-notes §1.3",
        steps=(
            SoapStep(
                name="unknown_action",
                purpose=f"a query sent with wsa:Action {UNKNOWN_ACTION}",
                transaction=Transaction.ITI18,
                request=_find_documents,
                expect=soap_fault("Sender", subcode=WsaFault.ACTION_NOT_SUPPORTED),
                envelope=EnvelopeVariant(action=UNKNOWN_ACTION),
            ),
        ),
    )


def case_must_understand() -> TestCase:
    return TestCase(
        id="soap-mustunderstand",
        title="A mandatory header the registry does not understand",
        tf="SOAP 1.2 Part 1 §5.2.3, §5.4.8 (MustUnderstand fault)",
        reference="xds-notes §1.3",
        description="A mandatory header block that is not understood must be faulted, not ignored; "
        "nothing of the request may be processed.",
        steps=(
            SoapStep(
                name="unknown_header",
                purpose="a registration carrying a header block with mustUnderstand=true from an unknown namespace",
                transaction=Transaction.ITI42,
                request=_register,
                expect=soap_fault("MustUnderstand"),
                envelope=EnvelopeVariant(unknown_must_understand=True),
            ),
        ),
    )


def case_version() -> TestCase:
    return TestCase(
        id="soap-version",
        title="A SOAP 1.1 request is refused",
        tf="ITI TF-2x V.3.1 (XDS.b is SOAP 1.2); SOAP 1.2 Part 1 §5.4.7, Appendix A (VersionMismatch)",
        reference="xds-notes §1.3",
        steps=(
            SoapStep(
                name="soap11",
                purpose="a query in a SOAP 1.1 envelope sent as text/xml",
                transaction=Transaction.ITI18,
                request=_find_documents,
                expect=soap_fault("VersionMismatch"),
                envelope=EnvelopeVariant(soap11=True),
            ),
        ),
    )


def cases() -> tuple[TestCase, ...]:
    return (case_action(), case_must_understand(), case_version())
