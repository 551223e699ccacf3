"""The Document Registry test plan: ITI-42 Register (xds-notes §8.1), ITI-18 Stored Query (§8.4),
the SOAP 1.2 / WS-Addressing behaviour of the endpoint (§1.3) and, for a peer that declares them,
the options of §8.1: Metadata Update (ITI-57), Delete Document Set (ITI-62), Restricted Update
(ITI-92) and On-Demand Documents (ITI-61); and patient merges over the ITI-8 feed (ADT^A40)."""

from __future__ import annotations

from conformance_tests.model import Suite, TestPlan
from conformance_tests.plans.registry import folders, lifecycle, register, soap, sq_data, sq_find, sq_get
from conformance_tests.plans.registry import delete, merge, metadata_update, on_demand, restricted_update
from conformance_tests.plans.registry.common import FED_ROLES, REG, REG_OTHER, ROLES, SQ, SQ2, UNKNOWN

__all__ = ["registry_plan"]


def registry_plan() -> TestPlan:
    """Every registry suite, in the order a Connectathon runs them."""
    return TestPlan(
        actor="registry",
        title="Document Registry (ITI-42 Register Document Set-b, ITI-18 Registry Stored Query)",
        suites=(
            Suite(
                name="register",
                title="Register Document Set-b (ITI-42)",
                cases=register.cases() + lifecycle.cases() + folders.cases(),
                patient_roles=(REG, REG_OTHER, UNKNOWN),
            ),
            Suite(
                name="query",
                title="Registry Stored Query (ITI-18)",
                cases=(sq_data.load_case(), sq_data.load_case_2(), *sq_find.cases(), *sq_get.cases()),
                patient_roles=(SQ, SQ2),
            ),
            Suite(
                name="soap",
                title="SOAP 1.2 and WS-Addressing",
                cases=soap.cases(),
                patient_roles=(REG,),
            ),
            *option_suites(),
        ),
        patient_roles={**ROLES, **merge.ROLES},
        options={"mpq": "Multi-Patient Query (ITI-51, test 12364)", **OPTIONS, merge.OPTION: merge.OPTION_TEXT},
        fed_roles=FED_ROLES,
    )


#: The options of xds-notes §8.1 that have suites, and what declaring each means.
OPTIONS = {
    metadata_update.OPTION: "XDS Metadata Update: ITI-57 Update Document Set (NIST reg_mu 15800-15802b, 20000-21004)",
    delete.OPTION: "Remove Metadata and Documents: ITI-62 Delete Document Set (NIST 30000-30008)",
    restricted_update.OPTION: "Restricted Metadata Update: ITI-92 as Update Responder (NIST 40000-40007)",
    on_demand.OPTION: "On-Demand Documents: ITI-61 Register On-Demand Document Entry (NIST 15805)",
}


def option_suites() -> tuple[Suite, ...]:
    """One suite per option of xds-notes §8.1; each case is n/a unless the peer declares it."""
    return (
        Suite(name="metadata-update", title="Update Document Set (ITI-57, option mu)",
              cases=metadata_update.cases(), patient_roles=(REG,)),
        Suite(name="delete", title="Delete Document Set (ITI-62, option rmd)", cases=delete.cases(),
              patient_roles=(REG,)),
        Suite(name="restricted-update", title="Restricted Update Document Set (ITI-92, option rmu)",
              cases=restricted_update.cases(), patient_roles=(REG,)),
        Suite(name="on-demand", title="Register On-Demand Document Entry (ITI-61, option on-demand)",
              cases=on_demand.cases(), patient_roles=(REG,)),
        Suite(name="merge", title="Patient merge over the ITI-8 feed (ADT^A40, option merge)", cases=merge.cases()),
    )  # fmt: skip
