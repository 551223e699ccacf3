"""The RAD-68 sender: one ProvideAndRegisterDocumentSetRequest as MTOM, documents streamed from
their files, and the repository's answer sorted into what the job does next.

RAD-68 is ITI-41 on the wire (RAD TF-3 §4.68.4.1.2; xds-notes §1.1: the same body root and
``wsa:Action`` ``urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b``, MTOM required). The answer
is one of:

* ``ACCEPTED``: status Success (warnings allowed, ITI TF-3 §4.2.4.1);
* ``ALREADY_REGISTERED``: Failure whose only errors are ``XDSDuplicateUniqueIdInRegistry`` for
  *our* SubmissionSet uniqueId. A repeat of a submission whose first outcome was lost (the
  uniqueIds are kept, ITI TF-2b §3.42.4.1.3.5) finds the registry already has it: done;
* ``TRANSIENT``: worth trying again later: no connection, a timeout, an HTTP 5xx or a Receiver
  SOAP fault, or errors that say so (XDSRegistryNotAvailable, ...Busy, ...OutOfResources, and
  the internal XDSRegistryError / XDSRepositoryError);
* ``PERMANENT``: anything else (metadata errors, unknown patient, non-identical hash...).

:func:`classify` is pure; :class:`Rad68Sender` does the HTTP.

Public API::

    SubmitOutcome.ACCEPTED / .ALREADY_REGISTERED / .TRANSIENT / .PERMANENT
    SubmitResult(outcome, status, errors, detail)        # .done
    DocumentFile(entry_id, path, mime_type, content_id=new)
    build_request(submission, documents) -> etree._Element
    classify(status, errors, *, submission_uid) -> SubmitResult
    Rad68Sender(endpoint, *, timeout=120.0, verify=True, cert=None, transport=None, spool_dir=None)
        .send(submission, documents) -> SubmitResult
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
from lxml import etree

from xds.errors import ErrorCode, RegistryError
from xds.http.client import CertTypes, SoapClient, SoapConnectionError, SoapProtocolError, VerifyTypes
from xds.metadata.ebrim import encode_submit_objects_request
from xds.metadata.model import Submission
from xds.metadata.responses import ResponseFormatError, parse_registry_response
from xds.soap.fault import SoapFault
from xds.soap.mtom import xop_include
from xds.soap.mtom_encode import OutgoingPart, new_content_id
from xds.vocabulary import NS_XDS, Action, ResponseStatus
from xds.xml import qname

__all__ = [
    "DocumentFile",
    "Rad68Sender",
    "SubmitOutcome",
    "SubmitResult",
    "build_request",
    "classify",
]

_REQUEST: Final = qname(NS_XDS, "ProvideAndRegisterDocumentSetRequest")
_DOCUMENT: Final = qname(NS_XDS, "Document")

#: Error codes that say "not now" rather than "not this" (ITI TF-3 Table 4.2.4.1-2).
TRANSIENT_CODES: Final = frozenset(
    {
        ErrorCode.REGISTRY_NOT_AVAILABLE.value,
        ErrorCode.REGISTRY_BUSY.value,
        ErrorCode.REPOSITORY_BUSY.value,
        ErrorCode.REGISTRY_OUT_OF_RESOURCES.value,
        ErrorCode.REPOSITORY_OUT_OF_RESOURCES.value,
        ErrorCode.REGISTRY_ERROR.value,
        ErrorCode.REPOSITORY_ERROR.value,
    }
)


class SubmitOutcome(enum.Enum):
    ACCEPTED = "accepted"
    ALREADY_REGISTERED = "already registered"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What became of one submission, with the repository's errors and a one-line summary."""

    outcome: SubmitOutcome
    status: str | None
    errors: tuple[RegistryError, ...]
    detail: str

    @property
    def done(self) -> bool:
        return self.outcome in (SubmitOutcome.ACCEPTED, SubmitOutcome.ALREADY_REGISTERED)


@dataclass(frozen=True, slots=True)
class DocumentFile:
    """A document of the submission: its DocumentEntry id, its file and its mimeType."""

    entry_id: str
    path: Path
    mime_type: str
    content_id: str = field(default_factory=new_content_id)


def build_request(submission: Submission, documents: Sequence[DocumentFile]) -> etree._Element:
    """ITI TF-2b §3.41.4.1.2: metadata (``lcm:SubmitObjectsRequest``), then one ``xds:Document``
    per DocumentEntry, whose content is an ``xop:Include`` of its MIME part."""
    root = etree.Element(_REQUEST, nsmap={"xds": NS_XDS})
    root.append(encode_submit_objects_request(submission))
    for document in documents:
        element = etree.SubElement(root, _DOCUMENT, id=document.entry_id)
        element.append(xop_include(document.content_id))
    return root


def _summary(errors: Sequence[RegistryError]) -> str:
    return "; ".join(f"{e.code_text}: {e.context}" for e in errors if e.is_error) or "no error given"


def classify(status: str, errors: Sequence[RegistryError], *, submission_uid: str) -> SubmitResult:
    """Sort a RegistryResponse (status and errors) into an outcome (see the module notes)."""
    found = tuple(errors)
    if status == ResponseStatus.SUCCESS:
        return SubmitResult(SubmitOutcome.ACCEPTED, status, found, "registered")
    failures = [e for e in found if e.is_error]
    if failures and all(
        e.code_text == ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY.value
        and (e.location == submission_uid or submission_uid in e.context)
        for e in failures
    ):
        # ITI TF-2b §3.42.4.1.3.5: our own SubmissionSet uniqueId is registered already.
        return SubmitResult(SubmitOutcome.ALREADY_REGISTERED, status, found, "registered by an earlier attempt")
    if failures and all(e.code_text in TRANSIENT_CODES for e in failures):
        return SubmitResult(SubmitOutcome.TRANSIENT, status, found, _summary(failures))
    return SubmitResult(SubmitOutcome.PERMANENT, status, found, _summary(failures))


class Rad68Sender:
    """Sends RAD-68 to one Document Repository endpoint."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 120.0,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        transport: httpx.BaseTransport | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.verify = verify
        self.cert = cert
        self.transport = transport
        self.spool_dir = spool_dir

    def send(self, submission: Submission, documents: Sequence[DocumentFile]) -> SubmitResult:
        """One Provide and Register, files streamed 1 MiB at a time (xds-notes §1.4)."""
        if len(submission.submission_sets) != 1 or not submission.submission_sets[0].unique_id:
            raise ValueError("a submission has exactly one SubmissionSet with a uniqueId")
        submission_uid = submission.submission_sets[0].unique_id
        body = build_request(submission, documents)
        parts = [OutgoingPart(d.content_id, d.mime_type, d.path) for d in documents]
        try:
            with SoapClient(
                self.endpoint,
                timeout=self.timeout,
                verify=self.verify,
                cert=self.cert,
                transport=self.transport,
                spool_dir=self.spool_dir,
            ) as client:
                # xds-notes §1.1: RAD-68 uses the ITI-41 action, as MTOM.
                with client.call(Action.ITI41, body, attachments=parts, mtom=True) as reply:
                    parsed = parse_registry_response(reply.body)
        except SoapConnectionError as exc:
            return SubmitResult(SubmitOutcome.TRANSIENT, None, (), f"repository not reachable: {exc}")
        except SoapFault as exc:
            status_code = getattr(exc, "http_status", None) or 500
            transient = status_code >= 500
            return SubmitResult(
                SubmitOutcome.TRANSIENT if transient else SubmitOutcome.PERMANENT,
                None,
                (),
                f"SOAP fault (HTTP {status_code}): {getattr(exc, 'reason', exc)}",
            )
        except SoapProtocolError as exc:
            transient = exc.http_status is None or exc.http_status >= 500 or exc.http_status in (408, 429)
            return SubmitResult(
                SubmitOutcome.TRANSIENT if transient else SubmitOutcome.PERMANENT,
                None,
                (),
                f"unusable reply (HTTP {exc.http_status}): {exc}",
            )
        except ResponseFormatError as exc:
            return SubmitResult(SubmitOutcome.PERMANENT, None, (), f"the reply is not a RegistryResponse: {exc}")
        return classify(parsed.status, parsed.errors, submission_uid=submission_uid)
