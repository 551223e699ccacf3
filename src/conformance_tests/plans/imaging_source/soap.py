"""SOAP 1.2 and WS-Addressing behaviour of the RAD-69 endpoint (ITI TF-2x Appendix V, which RAD
TF-3 §4.69 uses; xds-notes §1.3): an unknown action, a header it cannot understand, a SOAP 1.1
request. The response action and RelatesTo of every successful RAD-69 are checked by the runner
on every step."""

from __future__ import annotations

from typing import Final

from conformance_tests.model import EnvelopeVariant, RequestPackaging, SoapStep, TestCase, soap_fault
from conformance_tests.plans.imaging_source.common import LOAD_CASE, ask, retrieve
from xds.vocabulary import WsaFault

__all__ = ["cases"]

UNKNOWN_ACTION: Final = "urn:imageshare:conformance:NoSuchAction"


def cases() -> tuple[TestCase, ...]:
    def faulted(purpose: str, code: str, *, subcode: str | None = None, envelope: EnvelopeVariant,
                packaging: RequestPackaging = RequestPackaging.MTOM) -> SoapStep:
        return retrieve("request", purpose, ask("ct-1"), soap_fault(code, subcode=subcode), envelope=envelope,
                        packaging=packaging)

    return (
        TestCase(id="soap-action", title="Unknown wsa:Action", requires=(LOAD_CASE,),
                 tf="ITI TF-2x V.3.2; WS-Addressing 1.0 SOAP Binding §6.4.4 (ActionNotSupported)",
                 reference="xds-notes §1.3",
                 steps=(faulted(f"a RAD-69 sent with wsa:Action {UNKNOWN_ACTION}", "Sender",
                                subcode=WsaFault.ACTION_NOT_SUPPORTED, envelope=EnvelopeVariant(action=UNKNOWN_ACTION)),)),
        TestCase(id="soap-mustunderstand", title="A mandatory header the source does not understand",
                 requires=(LOAD_CASE,), tf="SOAP 1.2 Part 1 §5.2.3, §5.4.8 (MustUnderstand fault)",
                 reference="xds-notes §1.3",
                 steps=(faulted("RAD-69 with a mustUnderstand header block from an unknown namespace", "MustUnderstand",
                                envelope=EnvelopeVariant(unknown_must_understand=True)),)),
        TestCase(id="soap-version", title="A SOAP 1.1 request is refused", requires=(LOAD_CASE,),
                 tf="ITI TF-2x V.3.1 (SOAP 1.2 only); SOAP 1.2 Part 1 §5.4.7 (VersionMismatch)",
                 reference="xds-notes §1.3",
                 steps=(faulted("RAD-69 in a SOAP 1.1 envelope sent as text/xml", "VersionMismatch",
                                envelope=EnvelopeVariant(soap11=True), packaging=RequestPackaging.SIMPLE),)),
    )  # fmt: skip
