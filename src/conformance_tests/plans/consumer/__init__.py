"""The Document Consumer / Imaging Document Consumer test plan: the consumer under test is run
through operator-given command templates against simulated peers (a registry with test data,
a repository and two imaging document sources, with RAD-69 and WADO-URI endpoints), and judged on
what the peers received and on what it produced (xds-notes §6, §5, §7.4-7.6, §9)."""

from __future__ import annotations

from conformance_tests.model import Suite, TestPlan
from conformance_tests.plans.consumer import imaging, query, retrieve, wado
from conformance_tests.plans.consumer.common import KINDS

__all__ = ["consumer_plan"]


def consumer_plan() -> TestPlan:
    """Every consumer suite. Each case needs the command template of its kind (its option)."""
    return TestPlan(
        actor="consumer",
        title="Document Consumer / Imaging Document Consumer (ITI-18, ITI-43, RAD-69, RAD-55)",
        suites=(
            Suite(name="query", title="Registry Stored Query (ITI-18)", cases=query.cases()),
            Suite(name="retrieve", title="Retrieve Document Set (ITI-43)", cases=retrieve.cases()),
            Suite(name="imaging", title="Imaging Document Consumer flow (ITI-18, ITI-43, RAD-69)", cases=imaging.cases()),
            Suite(name="wado", title="Imaging Document Consumer flow with WADO-URI (ITI-18, ITI-43, RAD-55)",
                  cases=wado.cases()),
        ),
        options={kind: f"--command {kind}=TEMPLATE: {text}" for kind, text in KINDS.items()},
        simulators=("consumer-peers",),
    )
