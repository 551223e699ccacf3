"""Building blocks of the repository test plan: test data, ITI-41 and ITI-43 steps.

Test documents live in the case state under ``doc:<key>`` (a
:class:`~conformance_tests.data.metadata.DocumentSpec`, made once per case). Every ITI-41 step
runs inside :meth:`RegistrySimulator.observe`, so its checks see the ITI-42 the repository sent
(``state["observed"]``) next to the ITI-41 it sent (``state["sent"]``). The repository's
repositoryUniqueId is learned from the first ITI-42 it sends (``state["repository-id"]``) and
used for every retrieve: a repository whose configured id differs from the one it registers
cannot pass (xds-notes §9 item 10).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Final, cast

from lxml import etree

from conformance_tests.data.metadata import DocumentSpec, Submission, SubmissionSetSpec, document_spec
from conformance_tests.evidence import Exchange
from conformance_tests.model import (
    Around,
    Expectation,
    Keeper,
    RequestPackaging,
    SoapStep,
    Transaction,
    Verifier,
    success,
)
from conformance_tests.plans.repository import checks as c
from conformance_tests.response import ResponseView
from conformance_tests.simulators.registry import CONTEXT_KEY, Observation, RegistrySimulator
from conformance_tests.state import CaseState
from xds.vocabulary import NS_LCM, NS_XDS, ResponseStatus, SlotName

__all__ = [
    "OBSERVED",
    "REP",
    "REPOSITORY_ID",
    "SENT",
    "TLS_OPTION",
    "doc",
    "new_submission",
    "pnr",
    "provide",
    "repository_id",
    "retrieve",
    "retrieve_request",
    "simulator",
    "uid",
]

#: The option of the cases run over TLS (declared by an https:// endpoint).
TLS_OPTION: Final = "tls"
#: The patient of the repository tests (the simulated registry knows every patient).
REP: Final = "rep"
OBSERVED: Final = "observed"
SENT: Final = "sent"
REPOSITORY_ID: Final = "repository-id"
#: What the source leaves to the repository (ITI TF-2b §3.41.4.1.3; ITI TF-3 Table 4.3.1-3).
LEFT_TO_REPOSITORY: Final = frozenset({"hash", "size", "repositoryUniqueId"})


# -- test data -----------------------------------------------------------------------------------
def doc(state: CaseState, key: str, **changes: object) -> DocumentSpec:
    """The DocumentEntry ``key`` of this case, made on first use. By default it has no hash,
    size or repositoryUniqueId: the repository adds them."""
    changes.setdefault("omit", LEFT_TO_REPOSITORY)

    def make() -> DocumentSpec:
        return document_spec(state.ids, state.patient(REP), symbol=f"Document_{key}", **changes)

    return cast(DocumentSpec, state.once(f"doc:{key}", make))


def uid(state: CaseState, key: str) -> str:
    return str(state[f"doc:{key}"].unique_id)


def new_submission(state: CaseState, key: str) -> Submission:
    """An empty submission whose SubmissionSet is ``key`` (fresh uniqueId, run-wide sourceId)."""

    def make() -> SubmissionSetSpec:
        return SubmissionSetSpec(
            symbol=f"SubmissionSet_{key}",
            unique_id=state.ids.oid(),
            source_id=str(state.shared_once("source-id", state.ids.oid)),
            patient_id=state.patient(REP),
        )

    spec = cast(SubmissionSetSpec, state.once(f"ss:{key}", make))
    return Submission(state.ids, spec.patient_id, submission_set=spec)


def pnr(sub: Submission, documents: Sequence[tuple[str, bytes]] | None = None) -> etree._Element:
    """An ``xds:ProvideAndRegisterDocumentSetRequest`` (ITI TF-2b §3.41.4.1.2): the submission and
    one ``xds:Document`` per (id, bytes), by default one per DocumentEntry with its content.

    The bytes go in as base64 text (the XOP infoset); the transport makes them MIME parts."""
    root = etree.Element(f"{{{NS_XDS}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xds": NS_XDS})
    root.append(sub.element())
    pairs = documents if documents is not None else [(d.id, d.content) for d in sub.documents]
    for document_id, data in pairs:
        element = etree.SubElement(root, f"{{{NS_XDS}}}Document", id=document_id)
        element.text = base64.b64encode(data).decode("ascii")
    return root


def retrieve_request(items: Sequence[tuple[str, str, str | None]]) -> etree._Element:
    """An ``xds:RetrieveDocumentSetRequest`` (ITI TF-2b §3.43.4.1.2) for (repositoryUniqueId,
    documentUniqueId, homeCommunityId or None) items."""
    root = etree.Element(f"{{{NS_XDS}}}RetrieveDocumentSetRequest", nsmap={"xds": NS_XDS})
    for repository, document, home in items:
        request = etree.SubElement(root, f"{{{NS_XDS}}}DocumentRequest")
        if home is not None:
            etree.SubElement(request, f"{{{NS_XDS}}}HomeCommunityId").text = home
        etree.SubElement(request, f"{{{NS_XDS}}}RepositoryUniqueId").text = repository
        etree.SubElement(request, f"{{{NS_XDS}}}DocumentUniqueId").text = document
    return root


# -- the simulator -------------------------------------------------------------------------------
def simulator(state: CaseState) -> RegistrySimulator:
    found = state.get(CONTEXT_KEY)
    if not isinstance(found, RegistrySimulator):
        raise LookupError(
            "this run has no registry simulator: the repository plan needs one (see `xds conformance run`)"
        )
    return found


def repository_id(state: CaseState) -> str:
    """The repositoryUniqueId the repository put in its ITI-42 (learned by an earlier step)."""
    found = state.get(REPOSITORY_ID)
    if not found:
        raise LookupError("the repository's repositoryUniqueId is not known: no ITI-42 carried one yet")
    return str(found)


def _observing(*, refuse: Sequence[tuple[str, str]] = (), down: bool = False) -> Around:
    @contextmanager
    def around(state: CaseState) -> Iterator[list[Exchange]]:
        sim = simulator(state)
        seen: list[Exchange] = []
        behaviour: AbstractContextManager[None] = (
            sim.stopped() if down else sim.refusing(*refuse) if refuse else nullcontext()
        )
        observation: Observation
        with sim.observe() as observation, behaviour:
            yield seen
        state.set(OBSERVED, observation)
        seen.extend(observation.exchanges)

    return around


def _learn_repository_id(state: CaseState, view: ResponseView) -> None:
    """Remember the repositoryUniqueId of the first ITI-42 that carries one."""
    if state.get(REPOSITORY_ID):
        return
    observation: Observation | None = state.get(OBSERVED)
    for registration in observation.registrations if observation else []:
        for entry in registration.document_entries():
            values = c.slot_values(entry, SlotName.REPOSITORY_UNIQUE_ID)
            if len(values) == 1 and values[0].strip():
                state.share(REPOSITORY_ID, values[0].strip())
                return


# -- steps ---------------------------------------------------------------------------------------
def provide(
    name: str,
    purpose: str,
    build: Callable[[CaseState], etree._Element],
    expect: Expectation | None = None,
    *,
    forwarded: Sequence[str] | None = None,
    verify: Sequence[Verifier] = (),
    keep: Keeper | None = None,
    packaging: RequestPackaging = RequestPackaging.MTOM,
    refuse: Sequence[tuple[str, str]] = (),
    registry_down: bool = False,
) -> SoapStep:
    """An ITI-41 Provide and Register Document Set-b step (ITI TF-2b §3.41).

    With ``forwarded`` (DocumentEntry keys) the ITI-42 the repository sent is checked: one
    request, schema-valid, those entries with hash, size and repositoryUniqueId, everything else
    as sent. A Failure the repository finds itself must reach no registry (nothing sent); one
    the registry answers (``refuse``) must be relayed unchanged."""
    expected = expect or success()

    def request(state: CaseState) -> etree._Element:
        element = build(state)
        submit = element.find(f"{{{NS_LCM}}}SubmitObjectsRequest")
        state.set(SENT, copy.deepcopy(submit) if submit is not None else None)
        return element

    checks: list[Verifier] = [c.packaging_as_request(packaging)]
    if refuse:
        checks += [c.one_registration(), c.relayed(refuse)]
    elif forwarded is not None:
        checks += [c.one_registration(), c.augmented(forwarded), c.unchanged()]
    elif registry_down or expected.status == ResponseStatus.FAILURE:
        checks.append(c.nothing_registered())
    checks += verify

    def keep_all(state: CaseState, view: ResponseView) -> None:
        _learn_repository_id(state, view)
        if keep is not None:
            keep(state, view)

    return SoapStep(
        name=name,
        purpose=purpose,
        transaction=Transaction.ITI41,
        request=request,
        expect=expected,
        verify=tuple(checks),
        keep=keep_all,
        packaging=packaging,
        around=_observing(refuse=refuse, down=registry_down),
    )


Items = Callable[[CaseState], Sequence[tuple[str, str, str | None]]]


def retrieve(
    name: str,
    purpose: str,
    items: Items,
    expect: Expectation,
    *,
    verify: Sequence[Verifier] = (),
    packaging: RequestPackaging = RequestPackaging.MTOM,
) -> SoapStep:
    """An ITI-43 Retrieve Document Set step (ITI TF-2b §3.43); the response must be MTOM with
    each document an XOP part (ITI TF-2b §3.43.5; xds-notes §1.4)."""
    return SoapStep(
        name=name,
        purpose=purpose,
        transaction=Transaction.ITI43,
        request=lambda state: retrieve_request(items(state)),
        expect=expect,
        verify=(c.mtom_response(), *verify),
        packaging=packaging,
    )


def ours(*keys: str, home: str | None = None) -> Items:
    """DocumentRequests for the documents ``keys`` at the repository under test."""
    return lambda state: [(repository_id(state), uid(state, key), home) for key in keys]
