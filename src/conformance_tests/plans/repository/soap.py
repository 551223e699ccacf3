"""SOAP 1.2 and WS-Addressing behaviour of the repository endpoint (ITI TF-2x Appendix V;
xds-notes §1.3): an unknown action, a header it cannot understand, a SOAP 1.1 request. A request
the repository faults must not reach the registry."""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from lxml import etree

from conformance_tests.model import EnvelopeVariant, RequestPackaging, SoapStep, TestCase, soap_fault
from conformance_tests.plans.repository import checks as c
from conformance_tests.plans.repository.common import doc, new_submission, pnr, provide
from conformance_tests.state import CaseState
from xds.vocabulary import WsaFault

UNKNOWN_ACTION: Final = "urn:imageshare:conformance:NoSuchAction"


def _submission(state: CaseState) -> etree._Element:
    sub = new_submission(state, "s1")
    sub.add_document(doc(state, "d1"))
    return pnr(sub)


def _faulted(name: str, purpose: str, expect_code: str, *, subcode: str | None = None,
             envelope: EnvelopeVariant, packaging: RequestPackaging = RequestPackaging.MTOM) -> SoapStep:
    step = provide(name, purpose, _submission, soap_fault(expect_code, subcode=subcode), packaging=packaging)
    # A faulted request is not processed: nothing reaches the registry (SOAP 1.2 Part 1 §5.4).
    return replace(step, verify=(c.nothing_registered(),), envelope=envelope, keep=None)


def cases() -> tuple[TestCase, ...]:
    return (
        TestCase(
            id="soap-action",
            title="Unknown wsa:Action",
            tf="ITI TF-2x V.3.2; WS-Addressing 1.0 SOAP Binding §6.4.4 (ActionNotSupported)",
            reference="xds-notes §1.3",
            steps=(_faulted("unknown_action", f"a Provide and Register sent with wsa:Action {UNKNOWN_ACTION}", "Sender",
                            subcode=WsaFault.ACTION_NOT_SUPPORTED, envelope=EnvelopeVariant(action=UNKNOWN_ACTION)),),
        ),
        TestCase(
            id="soap-mustunderstand",
            title="A mandatory header the repository does not understand",
            tf="SOAP 1.2 Part 1 §5.2.3, §5.4.8 (MustUnderstand fault)",
            reference="xds-notes §1.3",
            steps=(_faulted("unknown_header", "ITI-41 with a mustUnderstand header block from an unknown namespace",
                            "MustUnderstand", envelope=EnvelopeVariant(unknown_must_understand=True)),),
        ),
        TestCase(
            id="soap-version",
            title="A SOAP 1.1 request is refused",
            tf="ITI TF-2x V.3.1 (XDS.b is SOAP 1.2); SOAP 1.2 Part 1 §5.4.7 (VersionMismatch)",
            reference="xds-notes §1.3",
            steps=(_faulted("soap11", "ITI-41 in a SOAP 1.1 envelope sent as text/xml", "VersionMismatch",
                            envelope=EnvelopeVariant(soap11=True), packaging=RequestPackaging.SIMPLE),),
        ),
    )  # fmt: skip
