"""Loading the test data into the source (the documented pre-load step) and waiting until every
instance is retrievable; every other case of the plan requires this one."""

from __future__ import annotations

from typing import Final, cast

from conformance_tests.data.dicom import instance_keys
from conformance_tests.evidence import Exchange
from conformance_tests.instances import CONTEXT_KEY, InstanceSource
from conformance_tests.model import ActionStep, Check, TestCase, Transaction, success
from conformance_tests.plans.imaging_source import checks as c
from conformance_tests.plans.imaging_source.common import LOAD_CASE, Ask, data, retrieve, source_id
from conformance_tests.state import CaseState

__all__ = ["SETTLE_SECONDS", "case_load"]

#: How long the source may take to make stored instances retrievable (it may index them
#: asynchronously after answering C-STORE).
SETTLE_SECONDS: Final = 30.0


def _load(state: CaseState) -> tuple[list[Exchange], list[Check]]:
    loader = state.get(CONTEXT_KEY)
    if loader is None:
        raise LookupError("no way to load the test instances: give --dicom HOST:PORT, --preload-command or --preloaded")
    return cast(InstanceSource, loader).load(data(state).instances)


def _everything(state: CaseState) -> list[Ask]:
    repository = source_id(state)
    return [Ask(i.study_uid, i.series_uid, repository, i.sop_uid) for i in data(state).instances]


def case_load(*, settle: float = SETTLE_SECONDS) -> TestCase:
    keys = instance_keys()
    return TestCase(
        id=LOAD_CASE,
        title="Load the test studies into the source; every instance becomes retrievable",
        tf="RAD TF-3 §4.69 (RAD-69); DICOM PS3.4 Annex B (Storage Service Class)",
        reference="setup (NIST ids_2018-4800: the test images are loaded at the source first)",
        description="C-STORE to the source's Storage SCP (--dicom), a pre-load command per file "
        "(--preload-command) or nothing (--preloaded). Then one RAD-69 for all instances is repeated "
        f"for up to {settle:g} s until it succeeds; what each instance must be is judged by the other cases.",
        steps=(
            ActionStep(
                name="load",
                purpose="make the test instances known to the source",
                transaction=Transaction.DICOM_STORE,
                perform=_load,
                outcome="every instance stored (C-STORE status Success or Warning; command exit 0)",
            ),
            retrieve(
                "available",
                "RAD-69 for every test instance, Explicit VR Little Endian",
                _everything,
                success(note=f"all {len(keys)} instances returned"),
                verify=(c.document_count(len(keys)),),
                settle=settle,
            ),
        ),
    )

