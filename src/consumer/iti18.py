"""ITI-18 Registry Stored Query, the Document Consumer's side (ITI TF-2a §3.18).

::

    with SoapClient(registry_url) as client:
        result = stored_query(client, "FindDocuments",
                              {"$XDSDocumentEntryPatientId": pid,
                               "$XDSDocumentEntryStatus": [Status.APPROVED]})
        for entry in result.submission.document_entries: ...

Public API::

    QUERIES                      # CLI names -> stored query names
    QueryResult(status, errors, element, submission)   # .ok
    stored_query(client, query, params, *, return_type="LeafClass") -> QueryResult
    find_documents(client, patient_id, *, statuses=(Status.APPROVED,)) -> QueryResult
    document_locations(client, unique_ids) -> dict[str, str]     # uniqueId -> repositoryUniqueId
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from xds.errors import RegistryError
from xds.http.client import SoapClient
from xds.metadata.ebrim import decode_registry_object_list
from xds.metadata.model import Submission
from xds.metadata.responses import parse_adhoc_query_response
from xds.query import StoredQueryId, build_adhoc_query
from xds.vocabulary import Action, ResponseStatus, Status

__all__ = ["QUERIES", "QueryResult", "document_locations", "find_documents", "stored_query"]

#: The queries the CLI offers, by command-line name.
QUERIES: Final[Mapping[str, str]] = {
    "find-documents": "FindDocuments",
    "find-submission-sets": "FindSubmissionSets",
    "get-submission-set-and-contents": "GetSubmissionSetAndContents",
    "get-all": "GetAll",
    "get-documents": "GetDocuments",
}


@dataclass(frozen=True, slots=True, eq=False)
class QueryResult:
    """An AdhocQueryResponse: status, errors, the response element and the decoded objects."""

    status: str
    errors: tuple[RegistryError, ...]
    element: etree._Element
    submission: Submission = field(default_factory=Submission)

    @property
    def ok(self) -> bool:
        return self.status == ResponseStatus.SUCCESS


def stored_query(
    client: SoapClient, query: str, params: Mapping[str, object], *, return_type: str = "LeafClass"
) -> QueryResult:
    """Send one stored query (by name or id) and decode its answer.

    Raises :class:`~xds.errors.XdsError` (invalid request), and what
    :meth:`SoapClient.call` raises (connection, fault).
    """
    request = build_adhoc_query(query, params, return_type=return_type)
    with client.call(Action.ITI18, request) as reply:
        body = reply.body
    parsed = parse_adhoc_query_response(body)
    submission = Submission()
    if parsed.object_list is not None:
        submission = decode_registry_object_list(parsed.object_list).submission
    return QueryResult(parsed.status, tuple(parsed.errors), body, submission)


def find_documents(
    client: SoapClient, patient_id: str, *, statuses: Sequence[str] = (Status.APPROVED,)
) -> QueryResult:
    """FindDocuments for one patient (ITI TF-2a §3.18.4.1.2.3.7.1)."""
    return stored_query(
        client,
        StoredQueryId.FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": patient_id, "$XDSDocumentEntryStatus": list(statuses)},
    )


def document_locations(client: SoapClient, unique_ids: Iterable[str]) -> dict[str, str]:
    """GetDocuments by uniqueId: the repositoryUniqueId of each document the registry knows."""
    wanted = sorted(set(unique_ids))
    if not wanted:
        return {}
    result = stored_query(client, StoredQueryId.GET_DOCUMENTS, {"$XDSDocumentEntryUniqueId": wanted})
    return {
        entry.unique_id: entry.repository_unique_id
        for entry in result.submission.document_entries
        if entry.unique_id and entry.repository_unique_id
    }
