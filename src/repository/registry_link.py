"""The repository's side of its conversation with the Document Registry: ITI-42 Register
Document Set-b out, and ITI-18 GetDocuments to learn what the registry holds when the outcome of
an ITI-42 call is not known (after a timeout or a crash).

An ITI-42 call ends in one of three :class:`Outcome` values, which decide what happens to the
staged documents (see :mod:`repository.store`):

* ``ACCEPTED``: the registry answered ``Success``;
* ``REJECTED``: it answered ``Failure``, answered with a Sender fault, or the request never
  reached it (no connection): nothing was registered;
* ``UNKNOWN``: the request may have been processed (timeout, broken or unreadable reply,
  Receiver fault, a status that is neither).

Public API::

    Outcome
    RegisterResult(outcome, response, errors, detail)
    RegistryUnavailable(Exception)
    RegistryClient = AsyncSoapClient | LeanAsyncSoapClient
    RegisteredEntry(unique_id, hash, size, repository_id)
    async register(client, submit_objects_request, *, deadline) -> RegisterResult
    async registered_entries(client, unique_ids, *, deadline) -> dict[str, list[RegisteredEntry]]
    is_ours(entries, *, sha1, size, repository_id) -> bool
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import anyio
import httpx
from lxml import etree

from xds.errors import ErrorCode, RegistryError
from xds.http.client import AsyncSoapClient, LeanAsyncSoapClient, SoapConnectionError, SoapProtocolError
from xds.http.http11 import RequestNotSent
from xds.query import StoredQueryId, build_adhoc_query
from xds.soap.fault import FaultCode, SoapFault
from xds.vocabulary import NS_QUERY, NS_RS, Action, ResponseStatus
from xds.xml import qname

__all__ = [
    "Outcome",
    "RegisterResult",
    "RegistryClient",
    "RegisteredEntry",
    "RegistryUnavailable",
    "is_ours",
    "register",
    "registered_entries",
]

log = logging.getLogger(__name__)

_REGISTRY_RESPONSE: Final = qname(NS_RS, "RegistryResponse")
_ADHOC_RESPONSE: Final = qname(NS_QUERY, "AdhocQueryResponse")
#: uniqueIds per GetDocuments query (well under any registry's XDSTooManyResults limit).
_LOOKUP_BATCH: Final = 100
#: Transport failures that happen before a request is sent: the registry saw nothing.
_NOT_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
    RequestNotSent,
)
#: The registry link runs on either client: the lean one in service, httpx-based ones in tests.
RegistryClient = AsyncSoapClient | LeanAsyncSoapClient


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, eq=False)
class RegisterResult:
    """How an ITI-42 call ended.

    ``response`` is the registry's ``rs:RegistryResponse``, relayed to the source unchanged
    when there is one; otherwise ``errors`` say what went wrong.
    """

    outcome: Outcome
    response: etree._Element | None
    errors: tuple[RegistryError, ...]
    detail: str


class RegistryUnavailable(Exception):
    """The registry could not tell us what it holds (unreachable, or its query failed)."""


@dataclass(frozen=True, slots=True)
class RegisteredEntry:
    """What the registry says about one DocumentEntry with a given uniqueId."""

    unique_id: str
    hash: str | None
    size: str | None
    repository_id: str | None


def _not_available(context: str) -> tuple[RegistryError, ...]:
    # ITI TF-2b §3.41.4.1.3: the repository could not reach the registry.
    return (RegistryError(ErrorCode.REGISTRY_NOT_AVAILABLE, context),)


def _was_sent(exc: SoapConnectionError) -> bool:
    return not isinstance(exc.__cause__, _NOT_SENT)


async def register(client: RegistryClient, submit_objects_request: etree._Element, *, deadline: float) -> RegisterResult:
    """Send ITI-42 with ``submit_objects_request`` and classify the outcome; never raises for
    registry trouble. ``deadline`` bounds the whole call (seconds)."""
    try:
        with anyio.fail_after(deadline):
            reply = await client.call(Action.ITI42, submit_objects_request)
    except TimeoutError:
        detail = f"the registry at {client.endpoint} did not answer ITI-42 within {deadline:.0f} s"
        return RegisterResult(Outcome.UNKNOWN, None, _not_available(detail), detail)
    except SoapConnectionError as exc:
        detail = f"the registry at {client.endpoint} is not available: {exc}"
        outcome = Outcome.UNKNOWN if _was_sent(exc) else Outcome.REJECTED
        return RegisterResult(outcome, None, _not_available(detail), detail)
    except SoapFault as fault:
        detail = f"the registry answered ITI-42 with a SOAP fault ({fault.code.value}): {fault.reason}"
        outcome = Outcome.REJECTED if fault.code is not FaultCode.RECEIVER else Outcome.UNKNOWN
        return RegisterResult(outcome, None, (RegistryError(ErrorCode.REGISTRY_ERROR, detail),), detail)
    except SoapProtocolError as exc:
        detail = f"the registry's ITI-42 reply is unusable: {exc}"
        return RegisterResult(Outcome.UNKNOWN, None, (RegistryError(ErrorCode.REGISTRY_ERROR, detail),), detail)
    with reply:
        body = reply.body
    if body.tag != _REGISTRY_RESPONSE:
        detail = f"the registry answered ITI-42 with {etree.QName(body).localname}, not rs:RegistryResponse"
        return RegisterResult(Outcome.UNKNOWN, None, (RegistryError(ErrorCode.REGISTRY_ERROR, detail),), detail)
    status = (body.get("status") or "").strip()
    if status == ResponseStatus.SUCCESS:
        return RegisterResult(Outcome.ACCEPTED, body, (), "registered")
    if status == ResponseStatus.FAILURE:
        return RegisterResult(Outcome.REJECTED, body, (), "the registry refused the submission")
    detail = f"the registry answered ITI-42 with status {status!r}"
    return RegisterResult(Outcome.UNKNOWN, None, (RegistryError(ErrorCode.REGISTRY_ERROR, detail),), detail)


async def registered_entries(
    client: RegistryClient, unique_ids: Iterable[str], *, deadline: float
) -> dict[str, list[RegisteredEntry]]:
    """ITI-18 GetDocuments by uniqueId: every DocumentEntry the registry holds for these ids.

    Raises :class:`RegistryUnavailable` when the registry cannot be asked or its query fails.
    """
    from xds.metadata.ebrim import decode_registry_object_list
    from xds.metadata.responses import parse_adhoc_query_response

    wanted = sorted(set(unique_ids))
    found: dict[str, list[RegisteredEntry]] = {uid: [] for uid in wanted}
    for start in range(0, len(wanted), _LOOKUP_BATCH):
        batch = wanted[start : start + _LOOKUP_BATCH]
        request = build_adhoc_query(StoredQueryId.GET_DOCUMENTS, {"$XDSDocumentEntryUniqueId": batch})
        try:
            with anyio.fail_after(deadline):
                reply = await client.call(Action.ITI18, request)
        except (TimeoutError, SoapConnectionError, SoapFault, SoapProtocolError) as exc:
            raise RegistryUnavailable(f"ITI-18 GetDocuments at {client.endpoint} failed: {exc}") from exc
        with reply:
            body = reply.body
        if body.tag != _ADHOC_RESPONSE:
            raise RegistryUnavailable(f"ITI-18 answered with {etree.QName(body).localname}")
        parsed = parse_adhoc_query_response(body)
        if parsed.status != ResponseStatus.SUCCESS:
            codes = ", ".join(e.code_text for e in parsed.errors)
            raise RegistryUnavailable(f"ITI-18 GetDocuments answered {parsed.status} ({codes})")
        if parsed.object_list is None:
            continue
        for entry in decode_registry_object_list(parsed.object_list).submission.document_entries:
            if entry.unique_id in found:
                found[entry.unique_id].append(
                    RegisteredEntry(entry.unique_id, entry.hash, entry.size, entry.repository_unique_id)
                )
    return found


def is_ours(entries: Sequence[RegisteredEntry], *, sha1: str, size: int, repository_id: str) -> bool:
    """True when one of the registered entries names this repository and this exact content."""
    return any(
        (e.repository_id or "").strip() == repository_id
        and (e.hash or "").strip().lower() == sha1
        and (e.size or "").strip() == str(size)
        for e in entries
    )
