"""ITI-43 Retrieve Document Set from the Document Consumer (ITI TF-2b §3.43; xds-notes §5, §8.3).

The consumer's ``retrieve`` command asks the repository simulator for ``{unique_ids}``; the plan
judges the request (SOAP 1.2, MTOM, RepositoryUniqueId from the metadata, no HomeCommunityId
since the metadata has none) and compares the files in ``{out}`` byte for byte with what the
MTOM reply carried. A PartialSuccess reply must leave the returned document; a Failure must
make the command exit non-zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from conformance_tests.data.consumer import CONSUMER_ROOT, StoredDocument
from conformance_tests.model import ActionStep, TestCase, Transaction
from conformance_tests.plans.consumer import checks as c
from conformance_tests.plans.consumer.common import Behaviour, Judge, consumer_step, exit_status, peers
from conformance_tests.simulators.consumer_peers import ConsumerPeers
from conformance_tests.state import CaseState

__all__ = ["cases", "documents"]

TF43: Final = "ITI TF-2b §3.43.4.1 (Retrieve Document Set request), §3.43.4.2 (response)"
#: A uniqueId under the data root that names no document.
UNKNOWN_UID: Final = f"{CONSUMER_ROOT}.9.1"


def documents(*keys: str) -> Callable[[CaseState], Sequence[StoredDocument]]:
    return lambda state: [peers(state).data.document(key) for key in keys]


def _uids(*keys: str) -> Callable[[CaseState, ConsumerPeers], dict[str, list[str]]]:
    return lambda state, sim: {"unique_ids": [sim.data.document(k).unique_id for k in keys]}


def _judges(*keys: str, kept: Sequence[str] | None = None, zero: bool | None = True) -> tuple[Judge, ...]:
    wanted = documents(*keys)
    found: list[Judge] = [
        c.envelopes("repository"),
        c.envelopes("registry", require=False),
        c.retrieve_requests(lambda state: [d.unique_id for d in wanted(state)]),
        c.documents_in_out(documents(*(kept if kept is not None else keys))),
    ]
    if zero is not None:
        found.append(exit_status(zero=zero))
    return tuple(found)


def _case(
    case_id: str, title: str, *, reference: str, steps: tuple[ActionStep, ...], tf: str = TF43, description: str = ""
) -> TestCase:
    return TestCase(id=case_id, title=title, tf=tf, reference=reference, option="retrieve", steps=steps,
                    description=description)  # fmt: skip


def cases() -> tuple[TestCase, ...]:
    def step(name: str, purpose: str, keys: tuple[str, ...], *, judges: tuple[Judge, ...], outcome: str,
             behaviour: Behaviour | None = None) -> ActionStep:
        return consumer_step(name, purpose, "retrieve", transaction=Transaction.ITI43, values=_uids(*keys),
                             judges=judges, outcome=outcome, behaviour=behaviour)  # fmt: skip

    return (
        _case("idc-retrieve-one", "Retrieve one document", reference="NIST 12029 (consumer side); xds-notes §8.3",
              steps=(step("retrieve", "the retrieve command for the text report", ("report",),
                          judges=_judges("report"), outcome="one DocumentRequest; exit 0; the file byte for byte"),)),
        _case("idc-retrieve-two", "Retrieve two documents", reference="NIST 12021 (consumer side)",
              steps=(step("retrieve", "the retrieve command for the report and the XML letter", ("report", "letter"),
                          judges=_judges("report", "letter"), outcome="both asked; exit 0; both files byte for byte"),)),
        _case("idc-retrieve-partial", "PartialSuccess: the consumer keeps what came",
              tf=TF43 + "; §3.43.4.2.3 (PartialSuccess)", reference="NIST 15816 retrieve_partial_uid (consumer side)",
              description="The repository returns the report and XDSDocumentUniqueIdError for the letter; the "
              "exit status is not judged (the TF leaves it to the consumer).",
              steps=(step("retrieve", "the retrieve command for two documents; the letter is withheld",
                          ("report", "letter"),
                          behaviour=lambda sim: sim.repository.withholding(sim.data.document("letter").unique_id),
                          judges=_judges("report", "letter", kept=("report",), zero=None),
                          outcome="both asked; the report's file byte for byte"),)),
        _case("idc-retrieve-failure", "A retrieve Failure reaches the user",
              tf=TF43 + "; §3.43.4.2.3 (Failure)", reference="NIST 15816 (unknown uniqueId, consumer side)",
              steps=(consumer_step("retrieve", "the retrieve command for a uniqueId nobody holds", "retrieve",
                                   transaction=Transaction.ITI43,
                                   values=lambda state, sim: {"unique_ids": [UNKNOWN_UID]},
                                   judges=(c.envelopes("repository", "registry", require=False), exit_status(zero=False)),
                                   outcome="the command exits non-zero"),)),
    )  # fmt: skip
