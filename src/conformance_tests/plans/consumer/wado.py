"""The Imaging Document Consumer flow with RAD-55 WADO-URI instead of RAD-69 (xds-notes §7.1,
§7.6 "alternatively use WADO"; NIST idc_2018-4832a/b).

The consumer's ``wado`` command runs ITI-18 FindDocuments, ITI-43 of the KOS manifests, and
then one WADO-URI GET per referenced instance to the WADO endpoint of the source whose
repositoryUniqueId is the series' Retrieve Location UID (``{wado}`` for ``{source_id}``,
``{wado2}`` for ``{source2_id}``). The test data has a single-series study and a study split
over both sources (4832a single, 4832b multi). Every GET is judged, and every instance must be
in ``{out}`` byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from conformance_tests.data.dicom import TestInstance
from conformance_tests.model import TestCase, Transaction
from conformance_tests.plans.consumer import checks as c
from conformance_tests.plans.consumer.common import Judge, consumer_step, exit_status
from conformance_tests.plans.consumer.imaging import manifests, referenced
from conformance_tests.state import CaseState
from xds.query.definitions import StoredQueryId

__all__ = ["OPTION", "cases"]

OPTION: Final = "wado"
TF55: Final = "RAD TF-3 §4.55 (WADO Retrieve); ITI TF-2a §3.18; ITI TF-2b §3.43"
#: The instance a source answers with 404 in the error case.
WITHHELD: Final = "mm-2"


def _kept(state: CaseState) -> Sequence[TestInstance]:
    return [i for i in referenced(state) if i.key != WITHHELD]


def _withheld(state: CaseState) -> Sequence[TestInstance]:
    return [i for i in referenced(state) if i.key == WITHHELD]


def _flow(*, once: bool = True) -> tuple[Judge, ...]:
    return (
        c.envelopes("registry", "repository"),
        c.queries(StoredQueryId.FIND_DOCUMENTS, return_type=None),
        c.retrieve_requests(lambda state: [d.unique_id for d in manifests(state)], exact=False),
        c.wado_requests(referenced, once=once),
        c.documents_in_out(manifests),
    )


def cases() -> tuple[TestCase, ...]:
    return (
        TestCase(
            id="idc-wado",
            title="Query, retrieve the manifests, WADO-URI per Retrieve Location UID",
            tf=TF55 + "; RAD TF-3 §4.68.4.1.2.1 (KOS Retrieve Location UID)",
            reference="NIST idc_2018-4832a (single study), idc_2018-4832b (multi-series over two sources)",
            option=OPTION,
            steps=(consumer_step(
                "wado", "the wado command for {patient}", "wado", transaction=Transaction.RAD55,
                judges=(*_flow(), c.instances_in_out(referenced), exit_status(zero=True)),
                outcome="FindDocuments, ITI-43 of both manifests, one WADO-URI GET (contentType application/dicom) "
                "per instance to its source's endpoint; exit 0; manifests and instances in {out} byte for byte",
            ),),
        ),
        TestCase(
            id="idc-wado-not-found",
            title="WADO answers 404 for one instance: the consumer keeps the others",
            tf=TF55 + "; DICOM PS3.18 (WADO-URI error responses)",
            reference="NIST ids_2018-4810 (404 for unknown UIDs, consumer side); xds-notes §1.1",
            description="Source 2 answers HTTP 404 for one MR instance. The exit status is not judged; a consumer "
            "may ask for the missing instance again.",
            option=OPTION,
            steps=(consumer_step(
                "wado", f"the wado command; source 2 answers 404 for {WITHHELD}", "wado", transaction=Transaction.RAD55,
                behaviour=lambda sim: sim.sources[1].withholding(sim.data.images.instance(WITHHELD).sop_uid),
                judges=(*_flow(once=False), c.instances_in_out(_kept), c.absent_instances(_withheld)),
                outcome=f"every other instance in {{out}} byte for byte; no file for {WITHHELD}",
            ),),
        ),
    )  # fmt: skip
