"""The Document Repository test plan: ITI-41 Provide and Register (xds-notes §8.2), ITI-43
Retrieve (§8.3), the SOAP 1.2 / WS-Addressing behaviour of the endpoint (§1.3) and, for a peer
that declares the option, ITI-86 Remove Documents (§8.2 rep_rd), run with a registry simulator
the repository sends ITI-42 to."""

from __future__ import annotations

from conformance_tests.model import Suite, TestPlan
from conformance_tests.plans.repository import acceptance, provide, remove, retrieve, soap
from conformance_tests.plans.repository.common import REP, TLS_OPTION

__all__ = ["repository_plan"]


def repository_plan() -> TestPlan:
    """Every repository suite, in the order a Connectathon runs them."""
    return TestPlan(
        actor="repository",
        title="Document Repository (ITI-41 Provide and Register Document Set-b, ITI-43 Retrieve Document Set)",
        suites=(
            Suite(
                name="provide",
                title="Provide and Register Document Set-b (ITI-41) and the ITI-42 it causes",
                cases=provide.cases() + acceptance.cases(),
                patient_roles=(REP,),
            ),
            Suite(name="retrieve", title="Retrieve Document Set (ITI-43)", cases=retrieve.cases(), patient_roles=(REP,)),
            Suite(name="soap", title="SOAP 1.2 and WS-Addressing", cases=soap.cases(), patient_roles=(REP,)),
            Suite(
                name="remove-documents",
                title="Remove Documents (ITI-86, option)",
                cases=remove.cases(),
                patient_roles=(REP,),
            ),
        ),
        patient_roles={REP: "the patient of every submission (the registry simulator accepts any patient)"},
        options={
            "simple-soap": "ITI-41 and ITI-43 requests as simple SOAP are accepted (interop advice, xds-notes §1.4)",
            TLS_OPTION: "the endpoint is https:// (test 12028; declared by an https:// --endpoint; "
            "--ca-cert, --client-cert/--client-key for the certificates)",
            remove.OPTION: "ITI-86 Remove Documents is implemented (RMD; NIST rep_rd 50000-50003)",
        },
        simulators=("registry",),
    )
