"""The Imaging Document Source test plan: RAD-69 Retrieve Imaging Document Set (xds-notes §7.4,
§7.5, §8.5: NIST ids_2018-4803, 4811, 4820), transfer syntax negotiation, RAD-55 WADO-URI
(ids_2018-4802, 4810), the SOAP 1.2 rules of the endpoint and, with the ``submit`` option, RAD-68
Provide and Register Imaging Document Set (ids_2018-4801) judged by a repository simulator, with our
own DICOM test studies (:mod:`conformance_tests.data.dicom`) loaded into the source first."""

from __future__ import annotations

from conformance_tests.model import Suite, TestPlan
from conformance_tests.plans.imaging_source import exceptions, load, retrieve, soap, submit, transfer, wado

__all__ = ["imaging_source_plan"]


def imaging_source_plan(*, settle: float = load.SETTLE_SECONDS) -> TestPlan:
    """Every imaging-source suite; the load case runs first and every other case requires it.

    ``settle``: seconds the source may take to make the loaded instances retrievable."""
    return TestPlan(
        actor="imaging-source",
        title="Imaging Document Source (RAD-69 Retrieve Imaging Document Set, RAD-55 WADO-URI, RAD-68 Provide and Register)",
        suites=(
            Suite(name="load", title="Test data loaded into the source (C-STORE or a command)", cases=(load.case_load(settle=settle),)),
            Suite(name="retrieve", title="Retrieve Imaging Document Set (RAD-69)", cases=retrieve.cases()),
            Suite(name="transfer-syntax", title="Transfer syntax negotiation (RAD-69)", cases=transfer.cases()),
            Suite(name="errors", title="RAD-69 exceptions (NIST ids_2018-4811)", cases=exceptions.cases()),
            Suite(name="wado", title="WADO-URI (RAD-55)", cases=wado.cases()),
            Suite(name="soap", title="SOAP 1.2 and WS-Addressing", cases=soap.cases()),
            Suite(name="submit", title="Provide and Register Imaging Document Set (RAD-68)", cases=submit.cases()),
        ),
        options={
            "simple-soap": "RAD-69 requests as simple SOAP are accepted (interop advice, xds-notes §1.4)",
            wado.OPTION: "the source serves RAD-55 WADO-URI (enabled by --wado URL)",
            submit.OPTION: "--command submit=TEMPLATE (or --option submit for a manual step): the source is made to "
            "share each test study by RAD-68 with the repository simulator (--registry-sim-port)",
        },
        simulators=("repository",),
    )
