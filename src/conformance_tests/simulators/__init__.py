"""Simulated peers the actor under test talks to during a run.

A Document Repository under test sends ITI-42 to a Document Registry: the runner gives it
:class:`~conformance_tests.simulators.registry.RegistrySimulator`, which records every request
and answers as each test case tells it to.
"""

from conformance_tests.simulators.registry import (
    CONTEXT_KEY,
    Observation,
    Registration,
    RegistrySimulator,
)

__all__ = ["CONTEXT_KEY", "Observation", "Registration", "RegistrySimulator"]
