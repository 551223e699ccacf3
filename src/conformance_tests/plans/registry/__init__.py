"""The Document Registry test plan: ITI-42 Register (xds-notes §8.1), ITI-18 Stored Query (§8.4)
and the SOAP 1.2 / WS-Addressing behaviour of the endpoint (§1.3)."""

from __future__ import annotations

from conformance_tests.model import Suite, TestPlan
from conformance_tests.plans.registry import folders, lifecycle, register, soap, sq_data, sq_find, sq_get
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
        ),
        patient_roles=ROLES,
        options={"mpq": "Multi-Patient Query (ITI-51, test 12364)"},
        fed_roles=FED_ROLES,
    )
