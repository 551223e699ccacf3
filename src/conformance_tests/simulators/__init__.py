"""Simulated peers the actor under test talks to during a run.

A Document Repository under test sends ITI-42 to a Document Registry: the runner gives it
:class:`~conformance_tests.simulators.registry.RegistrySimulator`, which records every request
and answers as each test case tells it to.

An Imaging Document Source under test sends RAD-68 to a Document Repository:
:class:`~conformance_tests.simulators.repository.RepositorySimulator` records every request, keeps
the documents and answers Success; the imaging-source plan judges what was recorded.

A Document Consumer / Imaging Document Consumer under test talks to
:class:`~conformance_tests.simulators.consumer_peers.ConsumerPeers`: a registry loaded with test
data (ITI-18), a repository (ITI-43) and two imaging document sources (RAD-69), all recorded.
"""

from conformance_tests.simulators.consumer_peers import ConsumerPeers
from conformance_tests.simulators.repository import RepositorySimulator
from conformance_tests.simulators.registry import (
    CONTEXT_KEY,
    Observation,
    Registration,
    RegistrySimulator,
)

__all__ = ["CONTEXT_KEY", "ConsumerPeers", "Observation", "Registration", "RegistrySimulator", "RepositorySimulator"]
