"""The Imaging Document Consumer flow (xds-notes §7.6; NIST idc_2018-4831a / 4833a/b):
ITI-18 FindDocuments -> ITI-43 of the KOS manifests -> RAD-69 to the Imaging Document Source
named by each series' Retrieve Location UID, in batches when configured.

The consumer's ``fetch`` command runs the whole flow for ``{patient}`` into ``{out}``; the test
data has two manifests, one of whose studies is split over two sources, so a consumer must send
RAD-69 to both. Every request is judged, and every referenced instance must be in ``{out}`` with
the data set the source served, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from conformance_tests.data.consumer import HOME_COMMUNITY_ID, StoredDocument
from conformance_tests.data.dicom import TestInstance
from conformance_tests.model import TestCase, Transaction
from conformance_tests.plans.consumer import checks as c
from conformance_tests.plans.consumer.common import Judge, consumer_step, exit_status, peers
from conformance_tests.state import CaseState
from xds.errors import ErrorCode
from xds.query.definitions import StoredQueryId

__all__ = ["cases"]

TF69: Final = "RAD TF-3 §4.69.4.1 (Retrieve Imaging Document Set request); ITI TF-2a §3.18; ITI TF-2b §3.43"
#: The instance a source withholds in the error case.
WITHHELD: Final = "ct-2"
PEERS: Final = ("registry", "repository", "source", "source2")


def manifests(state: CaseState) -> Sequence[StoredDocument]:
    data = peers(state).data
    return [data.document(key) for key in data.manifests]


def referenced(state: CaseState) -> Sequence[TestInstance]:
    return peers(state).data.referenced_instances


def _kept(state: CaseState) -> Sequence[TestInstance]:
    return [i for i in referenced(state) if i.key != WITHHELD]


def _withheld(state: CaseState) -> Sequence[TestInstance]:
    return [i for i in referenced(state) if i.key == WITHHELD]


def _flow(
    *, batch: int | None = None, once: bool = True, zero: bool | None = True, home: str | None = None
) -> tuple[Judge, ...]:
    judges: list[Judge] = [
        c.envelopes(*PEERS),
        c.queries(StoredQueryId.FIND_DOCUMENTS, return_type=None),
        c.retrieve_requests(lambda state: [d.unique_id for d in manifests(state)], exact=False, home=home),
        c.rad69_requests(referenced, batch=batch, once=once, home=home),
        c.documents_in_out(manifests),
    ]
    if zero is not None:
        judges.append(exit_status(zero=zero))
    return tuple(judges)


def cases() -> tuple[TestCase, ...]:
    return (
        TestCase(
            id="idc-flow",
            title="Query, retrieve the manifests, RAD-69 per Retrieve Location UID",
            tf=TF69 + "; RAD TF-3 §4.68.4.1.2.1 (KOS Retrieve Location UID)",
            reference="NIST idc_2018-4831a, idc_2018-4833a/b; xds-notes §7.6",
            option="fetch",
            steps=(consumer_step(
                "fetch", "the fetch command for {patient}", "fetch", transaction=Transaction.RAD69,
                judges=(*_flow(), c.instances_in_out(referenced)),
                outcome="FindDocuments, ITI-43 of both manifests, RAD-69 to both sources; exit 0; "
                "manifests and every instance in {out} byte for byte",
            ),),
        ),
        TestCase(
            id="idc-batches",
            title="RAD-69 in batches of at most {batch} instances",
            tf=TF69,
            reference="xds-notes §7.6 (a consumer may split a study over several requests)",
            option="fetch",
            steps=(consumer_step(
                "fetch", "the fetch command with {batch} = 2", "fetch", transaction=Transaction.RAD69,
                values=lambda state, sim: {"batch": "2"},
                judges=(*_flow(batch=2), c.instances_in_out(referenced)),
                outcome="every RAD-69 request asks at most 2 instances; every instance in {out}",
            ),),
        ),
        TestCase(
            id="idc-source-error",
            title="XDSDocumentUniqueIdError for one instance: the consumer keeps the others",
            tf=TF69 + "; RAD TF-3 §4.69.4.2.3; ITI TF-2b §3.43.4.2.3 (PartialSuccess)",
            reference="RAD69-003; NIST ids_2018-4811 case 02 (consumer side)",
            description="Source 1 answers XDSDocumentUniqueIdError for one CT instance. The exit status is not "
            "judged; a consumer may ask for the missing instance again.",
            option="fetch",
            steps=(consumer_step(
                "fetch", f"the fetch command; source 1 withholds {WITHHELD}", "fetch", transaction=Transaction.RAD69,
                behaviour=lambda sim: sim.sources[0].withholding(sim.data.images.instance(WITHHELD).sop_uid),
                judges=(*_flow(once=False, zero=None), c.instances_in_out(_kept), c.absent_instances(_withheld)),
                outcome=f"every other instance in {{out}} byte for byte; no file for {WITHHELD}",
            ),),
        ),
        TestCase(
            id="idc-home-community",
            title="The metadata carries a homeCommunityId: ITI-43 and RAD-69 send it back",
            tf="ITI TF-2a §3.18.4.1.2.3.8 (use of homeCommunityId); ITI TF-2b §3.43.4.1.2; " + TF69,
            reference="xds-notes §3.3 (homeCommunityId, XCA), §5 (ITI-43 request), §7.4 (RAD-69, XCA-I)",
            description="The registry returns every object with home=\"" + HOME_COMMUNITY_ID + "\", as an XCA "
            "Initiating Gateway does. Each ITI-43 DocumentRequest for a manifest and each RAD-69 DocumentRequest "
            "for its instances must carry that HomeCommunityId.",
            option="fetch",
            steps=(consumer_step(
                "fetch", "the fetch command; the registry's objects carry a homeCommunityId", "fetch",
                transaction=Transaction.RAD69,
                behaviour=lambda sim: sim.registry.homed(HOME_COMMUNITY_ID),
                judges=(*_flow(home=HOME_COMMUNITY_ID), c.instances_in_out(referenced)),
                outcome=f"every ITI-43 and RAD-69 DocumentRequest with HomeCommunityId {HOME_COMMUNITY_ID}; "
                "exit 0; everything in {out}",
            ),),
        ),
        TestCase(
            id="idc-fetch-registry-error",
            title="A registry Failure stops the imaging flow and reaches the user",
            tf="ITI TF-2a §3.18.4.1.3; ITI TF-3 §4.2.4 (RegistryErrorList)",
            reference="xds-notes §2, §7.6",
            option="fetch",
            steps=(consumer_step(
                "fetch", "the fetch command; the registry answers Failure XDSRegistryError", "fetch",
                behaviour=lambda sim: sim.registry.refusing(ErrorCode.REGISTRY_ERROR.value, "refused (conformance test)"),
                judges=(c.envelopes("registry"), exit_status(zero=False)),
                outcome="the command exits non-zero",
            ),),
        ),
    )
