"""One test plan per actor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from conformance_tests.model import TestPlan
from conformance_tests.plans.consumer import consumer_plan
from conformance_tests.plans.imaging_source import imaging_source_plan
from conformance_tests.plans.registry import registry_plan
from conformance_tests.plans.repository import repository_plan

__all__ = ["ACTORS", "PLANS", "plan_for"]

#: Every actor the runner knows, in CLI order.
ACTORS: Final = ("registry", "repository", "imaging-source", "consumer")

#: Actors whose plan exists.
PLANS: Final[dict[str, Callable[[], TestPlan]]] = {
    "registry": registry_plan,
    "repository": repository_plan,
    "imaging-source": imaging_source_plan,
    "consumer": consumer_plan,
}


def plan_for(actor: str) -> TestPlan:
    """The test plan of ``actor``; LookupError when it has none yet."""
    if actor not in ACTORS:
        raise LookupError(f"unknown actor {actor!r} (one of {', '.join(ACTORS)})")
    factory = PLANS.get(actor)
    if factory is None:
        raise LookupError(f"no test plan for the {actor} yet (available: {', '.join(PLANS)})")
    return factory()
