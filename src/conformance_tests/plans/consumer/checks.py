"""Judges of the consumer plan: what the simulated peers received, and what the consumer produced.

Request judges read the recorded bytes with the runner's own code
(:func:`~conformance_tests.simulators.recording.read_message`); file judges compare the files
under ``{out}`` byte for byte with what the peers served (DICOM instances after the File Meta
group, which a consumer may rewrite; PS3.10 §7.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs

from lxml import etree

from conformance_tests.data.consumer import REPOSITORY_ID, SOURCE_IDS, StoredDocument
from conformance_tests.data.dicom import TestInstance, dataset_offset
from conformance_tests.model import Check
from conformance_tests.plans.consumer.common import EXPLICIT_VR_LE, Invocation, Judge, peers
from conformance_tests.simulators.consumer_peers import PATHS
from conformance_tests.simulators.recording import ReceivedMessage
from conformance_tests.simulators.registry_data import parse_query, parse_values
from conformance_tests.state import CaseState
from xds.query.definitions import StoredQueryId
from xds.vocabulary import MIME_DICOM, NS_QUERY, NS_SOAP12, NS_WSA, NS_XDS, NS_XDSI, Action, Status

__all__ = [
    "absent_instances",
    "documents_in_out",
    "envelopes",
    "instances_in_out",
    "mentions",
    "objectref_then_get_documents",
    "queries",
    "rad69_requests",
    "retrieve_requests",
    "wado_requests",
]

WSA_RULE: Final = "ITI TF-2x Appendix V.3.2 (WS-Addressing headers); xds-notes §1.3"
SOAP_RULE: Final = "ITI TF-2x Appendix V.3.1 (SOAP 1.2 only); xds-notes §1.3"
MTOM_RULE: Final = "ITI TF-2b §3.43.5 (ITI-43 uses MTOM/XOP); RAD TF-3 §4.69.5; xds-notes §1.4"
SQ_RULE: Final = "ITI TF-2a §3.18.4.1.2.3.5 (parameter value syntax)"
_UID_CHARS: Final = frozenset("0123456789.")
#: Peer -> (transaction label, wsa:Action, Body root) of what it must receive.
_EXPECTED: Final = {
    "registry": ("ITI-18", Action.ITI18, f"{{{NS_QUERY}}}AdhocQueryRequest"),
    "repository": ("ITI-43", Action.ITI43, f"{{{NS_XDS}}}RetrieveDocumentSetRequest"),
    "source": ("RAD-69", Action.RAD69, f"{{{NS_XDSI}}}RetrieveImagingDocumentSetRequest"),
    "source2": ("RAD-69", Action.RAD69, f"{{{NS_XDSI}}}RetrieveImagingDocumentSetRequest"),
}


def _check(name: str, problems: Sequence[str], rule: str, *, ok: str = "") -> Check:
    return Check(name, not problems, "; ".join(problems[:6]) + (" ..." if len(problems) > 6 else "") or ok, rule)


def _label(n: int, message: ReceivedMessage) -> str:
    return f"request {n} ({message.path})"


# -- (a) the envelope of every request ------------------------------------------------------------
def _envelope_problems(message: ReceivedMessage, action: str, body: str, label: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"soap": [], "action": [], "message_id": [], "to": [], "must": [], "body": []}
    if message.soap_version != "1.2":
        what = f"SOAP {message.soap_version}" if message.soap_version else (message.problem or "no SOAP envelope")
        found["soap"].append(f"{label}: {what} ({message.content_type or 'no Content-Type'})")
        return found
    media = message.content_type.split(";")[0].strip().lower()
    if media not in ("application/soap+xml", "multipart/related"):
        found["soap"].append(f"{label}: Content-Type {media} is not SOAP 1.2")
    if message.mtom and "application/soap+xml" not in message.content_type:
        found["soap"].append(f"{label}: MTOM without start-info/type application/soap+xml")
    if len(message.actions) != 1:
        found["action"].append(f"{label}: {len(message.actions)} wsa:Action headers")
    elif message.actions[0] != action:
        found["action"].append(f"{label}: wsa:Action {message.actions[0]!r}, expected {action}")
    if any(ns != NS_WSA for ns in message.wsa_namespaces):
        found["action"].append(f"{label}: WS-Addressing headers in {sorted(message.wsa_namespaces)}")
    if not message.message_id:
        found["message_id"].append(f"{label}: no wsa:MessageID")
    if not message.to:
        found["to"].append(f"{label}: no wsa:To")
    elif message.to != message.exchange.target.split(" ")[1] and not message.to.endswith(message.path):
        found["to"].append(f"{label}: wsa:To {message.to} is not the endpoint {message.path}")
    if not message.must_understand:
        found["must"].append(f"{label}: no WS-Addressing header with {NS_SOAP12} mustUnderstand=\"true\"")
    if message.body is None or message.body.tag != body:
        found["body"].append(f"{label}: Body holds {message.body.tag if message.body is not None else 'nothing'}")
    return found


def envelopes(*peers: str, require: bool = True) -> Judge:
    """Every request to ``peers`` is a SOAP 1.2 request of that peer's transaction: one
    wsa:Action equal to the transaction's (no whitespace), a MessageID (unique), a To naming the
    endpoint, mustUnderstand on a WS-A header, the right Body (ITI TF-2x Appendix V); with
    ``require``, at least one request arrived."""

    def judge(state: CaseState, run: Invocation) -> list[Check]:
        checks: list[Check] = []
        for peer in peers:
            label, action, body = _EXPECTED[peer]
            messages = run.to(peer)
            if require:
                checks.append(Check(f"{label} request sent", bool(messages), f"{len(messages)} request(s) to {peer}",
                                    "the case's transaction"))  # fmt: skip
            if not messages:
                continue
            merged: dict[str, list[str]] = {}
            for n, message in enumerate(messages, start=1):
                for key, problems in _envelope_problems(message, action, body, _label(n, message)).items():
                    merged.setdefault(key, []).extend(problems)
            ids = [m.message_id for m in messages if m.message_id]
            if len(set(ids)) != len(ids):
                merged["message_id"].append("a wsa:MessageID was used twice")
            checks += [
                _check(f"{label} SOAP 1.2 envelope", merged["soap"], SOAP_RULE, ok=f"{len(messages)} request(s)"),
                _check(f"{label} wsa:Action", merged["action"], WSA_RULE, ok=action),
                _check(f"{label} wsa:MessageID", merged["message_id"], WSA_RULE, ok="present and unique"),
                _check(f"{label} wsa:To", merged["to"], WSA_RULE, ok="the endpoint"),
                _check(f"{label} mustUnderstand", merged["must"], WSA_RULE, ok="on a WS-Addressing header"),
                _check(f"{label} Body", merged["body"], "ITI TF-2x Appendix V; the transaction's request message",
                       ok=body),
            ]  # fmt: skip
            if peer != "registry":
                problems = [f"{_label(n, m)}: {m.content_type}" for n, m in enumerate(messages, start=1) if not m.mtom]
                checks.append(_check(f"{label} MTOM request", problems, MTOM_RULE, ok="multipart/related"))
        return checks

    return judge


# -- ITI-18 ---------------------------------------------------------------------------------------
def _patient_problems(value_texts: list[str], patient: str) -> list[str]:
    problems = []
    for text in value_texts:
        values = parse_values(text)
        if values is None or not text.strip().startswith("'"):
            problems.append(f"patient id {text!r} is not a quoted string")
        elif values != [patient]:
            problems.append(f"patient id {values} is not the test patient {patient}")
    if len(value_texts) != 1:
        problems.append(f"$XDSDocumentEntryPatientId given {len(value_texts)} times (single-valued)")
    return problems


def queries(query_id: str, *, return_type: str | None = "LeafClass", format_codes: bool = False) -> Judge:
    """The consumer's ITI-18 requests: at least one ``query_id`` query; every parameter value in
    the TF syntax; for FindDocuments the test patient as one quoted CX
    (``'id^^^&oid&ISO'``) and full status URNs (ITI TF-2a §3.18.4.1.2.3.7.1)."""

    def judge(state: CaseState, run: Invocation) -> list[Check]:
        patient = run.values["patient"]
        parsed = [(m, parse_query(m.body)) for m in run.to("registry") if m.body is not None]
        wanted = [(m, q) for m, q in parsed if q.query_id == query_id]
        checks = [Check(f"stored query {query_id}", bool(wanted),
                        f"{len(wanted)} of {len(parsed)} queries: {sorted({q.query_id or '?' for _, q in parsed})}",
                        "ITI TF-2a §3.18.4.1.2.3.7 (stored query ids)")]  # fmt: skip
        syntax = [f"{_label(n, m)}: {p}" for n, (m, q) in enumerate(parsed, start=1) for p in q.problems]
        checks.append(_check("parameter values", syntax, SQ_RULE, ok="quoted strings, lists and numbers"))
        if return_type is not None and wanted:
            kinds = sorted({q.return_type or "(none)" for _, q in wanted})
            checks.append(Check("returnType", kinds == [return_type], f"{', '.join(kinds)} (expected {return_type})",
                                "ITI TF-2a §3.18.4.1.2.1 (ResponseOption)"))  # fmt: skip
        if query_id == StoredQueryId.FIND_DOCUMENTS and wanted:
            problems: list[str] = []
            for n, (_, q) in enumerate(wanted, start=1):
                given = q.slots.get("$XDSDocumentEntryPatientId", [])
                problems += [f"query {n}: {p}" for p in _patient_problems(given, patient)]
                statuses = q.values("$XDSDocumentEntryStatus")
                if Status.APPROVED not in statuses:
                    problems.append(f"query {n}: $XDSDocumentEntryStatus {statuses} lacks {Status.APPROVED}")
            checks.append(_check("FindDocuments patient and status", problems,
                                 "ITI TF-2a §3.18.4.1.2.3.7.1; ITI TF-3 §4.2.3.1.7 (CX)", ok=patient))  # fmt: skip
        return checks

    return judge


def objectref_then_get_documents() -> Judge:
    """ObjectRef then LeafClass (ITI TF-2a §3.18.4.1.2.1): the entryUUIDs the ObjectRef answer
    gave are asked for with GetDocuments $XDSDocumentEntryEntryUUID, after the ObjectRef query."""

    def judge(state: CaseState, run: Invocation) -> list[Check]:
        parsed = [parse_query(m.body) for m in run.to("registry") if m.body is not None]
        first = next((n for n, q in enumerate(parsed)
                      if q.query_id == StoredQueryId.FIND_DOCUMENTS and q.return_type == "ObjectRef"), None)  # fmt: skip
        if first is None:
            return [Check("ObjectRef query first", False, "no FindDocuments with returnType ObjectRef",
                          "ITI TF-2a §3.18.4.1.2.1")]  # fmt: skip
        expected = {d.entry_uuid for d in peers(state).data.of_patient(run.values["patient"])}
        asked: set[str] = set()
        for q in parsed[first + 1 :]:
            if q.query_id == StoredQueryId.GET_DOCUMENTS and q.return_type == "LeafClass":
                asked |= set(q.values("$XDSDocumentEntryEntryUUID"))
        missing = sorted(expected - asked)
        return [Check("GetDocuments for the references", not missing and bool(asked),
                      f"asked {len(asked)} entryUUID(s)" + (f"; missing {', '.join(missing)}" if missing else ""),
                      "ITI TF-2a §3.18.4.1.2.3.7.5 (GetDocuments by $XDSDocumentEntryEntryUUID)")]  # fmt: skip

    return judge


def mentions(documents: Callable[[CaseState], Sequence[StoredDocument]]) -> Judge:
    """The consumer shows what it found: every expected uniqueId appears in its output (stdout)
    or in a file it wrote under ``{out}``."""

    def judge(state: CaseState, run: Invocation) -> list[Check]:
        texts = [run.stdout] + [p.read_bytes() for p in _files(run.out)]
        missing = [d.unique_id for d in documents(state) if not any(d.unique_id.encode() in t for t in texts)]
        return [_check("result shown", [f"uniqueId {uid} not in the output" for uid in missing],
                       "ITI TF-2a §3.18.4.1.3 (the consumer uses the returned metadata)", ok="every uniqueId")]  # fmt: skip

    return judge


# -- ITI-43 ---------------------------------------------------------------------------------------
def _text(element: etree._Element, local: str) -> str | None:
    found = element.find(f"{{{NS_XDS}}}{local}")
    return None if found is None else (found.text or "").strip()


def _home_problem(item: etree._Element, home: str | None, where: str) -> str | None:
    """What is wrong with a DocumentRequest's HomeCommunityId, given the metadata's ``home``."""
    sent = _text(item, "HomeCommunityId")
    if home is None and sent is not None:
        return f"{where}: HomeCommunityId {sent!r}, but the metadata has none"
    if home is not None and sent != home:
        return f"{where}: HomeCommunityId {sent!r}, the metadata's home is {home}"
    return None


#: ITI TF-2a §3.18.4.1.2.3.8: the home attribute a query returned is sent back with the requests
#: for those objects (ITI-43 HomeCommunityId; RAD-69 DocumentRequest/HomeCommunityId, XCA-I).
HOME_RULE: Final = (
    "ITI TF-2a §3.18.4.1.2.3.8 (use of homeCommunityId); ITI TF-2b §3.43.4.1.2 (HomeCommunityId); "
    "RAD TF-3 §4.69.4.1.2; xds-notes §3.3, §5, §7.4"
)


def retrieve_requests(
    expected: Callable[[CaseState], Sequence[str]], *, exact: bool = True, home: str | None = None
) -> Judge:
    """The ITI-43 DocumentRequests (ITI TF-2b §3.43.4.1.2): RepositoryUniqueId the one the
    metadata gives, HomeCommunityId the metadata's ``home`` (none when the metadata has none),
    DocumentUniqueIds of registered documents; together the ``expected`` uniqueIds (exactly, or
    at least with ``exact`` False)."""

    def judge(state: CaseState, run: Invocation) -> list[Check]:
        problems: list[str] = []
        homes: list[str] = []
        asked: list[str] = []
        for n, message in enumerate(run.to("repository"), start=1):
            if message.body is None:
                continue
            for item in message.body.iterfind(f"{{{NS_XDS}}}DocumentRequest"):
                uid = _text(item, "DocumentUniqueId") or ""
                asked.append(uid)
                repository = _text(item, "RepositoryUniqueId")
                if repository != REPOSITORY_ID:
                    problems.append(f"request {n}: RepositoryUniqueId {repository!r} for {uid}, not {REPOSITORY_ID}")
                wrong = _home_problem(item, home, f"request {n}, {uid}")
                if wrong:
                    homes.append(wrong)
        wanted = list(expected(state))
        checks = [_check("DocumentRequest values", problems,
                         "ITI TF-2b §3.43.4.1.2; ITI TF-3 §4.2.3.2 (repositoryUniqueId)",
                         ok=f"{len(asked)} DocumentRequest(s)"),
                  _check("ITI-43 HomeCommunityId", homes, HOME_RULE,
                         ok=f"{home} in every DocumentRequest" if home else "none (the metadata has none)")]  # fmt: skip
        missing = sorted(set(wanted) - set(asked))
        extra = sorted(set(asked) - set(wanted)) if exact else []
        detail = (f"missing {', '.join(missing)}; " if missing else "") + (f"unexpected {', '.join(extra)}; " if extra else "")
        checks.append(Check("documents requested", not missing and not extra, detail + f"asked {len(asked)}",
                            "ITI TF-2b §3.43.4.1.2 (the DocumentUniqueIds of the documents wanted)"))  # fmt: skip
        return checks

    return judge


# -- RAD-69 ---------------------------------------------------------------------------------------
def _is_uid(text: str) -> bool:
    return bool(text) and len(text) <= 64 and set(text) <= _UID_CHARS and not text.startswith(".") and ".." not in text


def rad69_requests(
    expected: Callable[[CaseState], Sequence[TestInstance]],
    *,
    batch: int | None = None,
    once: bool = True,
    home: str | None = None,
) -> Judge:
    """The RAD-69 requests (RAD TF-3 §4.69.4.1.2; xds-notes §7.4, §7.6): Study -> Series ->
    DocumentRequest as the manifest gives it; RepositoryUniqueId = the series' Retrieve Location
    UID and the source asked; HomeCommunityId the manifest entry's ``home`` (none without); a
    TransferSyntaxUIDList with valid UIDs including one the source serves; each instance asked
    (exactly once with ``once``) over all requests; at most ``batch`` per request."""

    def judge(state: CaseState, run: Invocation) -> list[Check]:
        data = peers(state).data
        known = {i.sop_uid: i for i in data.referenced_instances}
        homes: list[str] = []
        hierarchy: list[str] = []
        syntax: list[str] = []
        sizes: list[int] = []
        asked: list[str] = []
        for peer, source_id in (("source", SOURCE_IDS[0]), ("source2", SOURCE_IDS[1])):
            for n, message in enumerate(run.to(peer), start=1):
                label = f"{peer} request {n}"
                if message.body is None:
                    continue
                count = 0
                for study in message.body.iterfind(f"{{{NS_XDSI}}}StudyRequest"):
                    for series in study.iterfind(f"{{{NS_XDSI}}}SeriesRequest"):
                        for item in series.iterfind(f"{{{NS_XDS}}}DocumentRequest"):
                            count += 1
                            uid = _text(item, "DocumentUniqueId") or ""
                            asked.append(uid)
                            wrong = _home_problem(item, home, f"{label}, {uid}")
                            if wrong:
                                homes.append(wrong)
                            instance = known.get(uid)
                            repository = _text(item, "RepositoryUniqueId")
                            if instance is None:
                                hierarchy.append(f"{label}: {uid} is in no manifest")
                                continue
                            if study.get("studyInstanceUID") != instance.study_uid:
                                hierarchy.append(f"{label}: {uid} under study {study.get('studyInstanceUID')}")
                            if series.get("seriesInstanceUID") != instance.series_uid:
                                hierarchy.append(f"{label}: {uid} under series {series.get('seriesInstanceUID')}")
                            location = data.location_of(instance)
                            if repository != location or location != source_id:
                                hierarchy.append(f"{label}: {uid} with RepositoryUniqueId {repository}, its Retrieve "
                                                 f"Location UID is {location}, sent to {source_id}")  # fmt: skip
                sizes.append(count)
                syntaxes = [(e.text or "").strip() for e in message.body.iterfind(
                    f"{{{NS_XDSI}}}TransferSyntaxUIDList/{{{NS_XDSI}}}TransferSyntaxUID")]  # fmt: skip
                if not syntaxes:
                    syntax.append(f"{label}: no TransferSyntaxUID")
                syntax += [f"{label}: {s!r} is not a UID" for s in syntaxes if not _is_uid(s)]
                if syntaxes and EXPLICIT_VR_LE not in syntaxes and "1.2.840.10008.1.2" not in syntaxes:
                    syntax.append(f"{label}: neither little-endian uncompressed syntax is accepted")
        wanted = [i.sop_uid for i in expected(state)]
        twice = sorted({u for u in asked if asked.count(u) > 1}) if once else []
        missing = sorted(set(wanted) - set(asked))
        extra = sorted(set(asked) - set(wanted))
        checks = [
            Check("RAD-69 request sent", bool(sizes), f"{len(sizes)} request(s)", "xds-notes §7.6 step 3"),
            _check("Study/Series/Document hierarchy", hierarchy,
                   "RAD TF-3 §4.69.4.1.2; RAD TF-3 §4.68.4.1.2.1 (Retrieve Location UID)", ok=f"{len(asked)} instance(s)"),
            _check("TransferSyntaxUIDList", syntax, "RAD TF-3 §4.69.4.1.2 (TransferSyntaxUIDList, 1..n)",
                   ok="present, valid UIDs"),
            _check("RAD-69 HomeCommunityId", homes, HOME_RULE,
                   ok=f"{home} in every DocumentRequest" if home else "none (the metadata has none)"),
            _check("every referenced instance asked" + (" once" if once else ""),
                   [f"missing {', '.join(missing)}"] * bool(missing) + [f"not wanted {', '.join(extra)}"] * bool(extra)
                   + [f"asked twice {', '.join(twice)}"] * bool(twice),
                   "RAD TF-3 §4.69.4.1.2; xds-notes §7.6", ok=f"{len(wanted)} instance(s)"),
        ]  # fmt: skip
        if batch is not None:
            over = [n for n in sizes if n > batch]
            checks.append(Check("batches", not over and len(sizes) > 1,
                                f"{len(sizes)} requests of {sizes} instances (at most {batch} each)",
                                "the case's batch size ({batch})"))  # fmt: skip
        return checks

    return judge


# -- RAD-55 WADO-URI -----------------------------------------------------------------------------
WADO_RULE: Final = "RAD TF-3 §4.55.4.1 (WADO retrieve request); DICOM PS3.18 (WADO-URI parameters)"
#: WADO endpoint -> the repositoryUniqueId of the source that serves it.
_WADO_SOURCES: Final = (("wado", SOURCE_IDS[0]), ("wado2", SOURCE_IDS[1]))


def _wado_gets(run: Invocation, peer: str) -> list[dict[str, list[str]]]:
    """The query parameters of every GET the WADO endpoint ``peer`` received."""
    found = []
    for message in run.received:
        method, _, rest = message.exchange.target.partition(" ")
        resource = rest.split(" ")[0]
        path, _, query = resource.partition("?")
        if method == "GET" and path == PATHS[peer]:
            found.append(parse_qs(query, keep_blank_values=True))
    return found


def wado_requests(expected: Callable[[CaseState], Sequence[TestInstance]], *, once: bool = True) -> Judge:
    """The RAD-55 WADO-URI GETs (RAD TF-3 §4.55; xds-notes §7.1, §7.6): each with
    ``requestType=WADO`` and the studyUID, seriesUID and objectUID the manifest gives, asking
    ``contentType=application/dicom`` (the instance itself; without it a WADO-URI server renders
    image/jpeg), sent to the WADO endpoint of the source whose repositoryUniqueId is the series'
    Retrieve Location UID; every referenced instance asked (once with ``once``)."""

    def judge(state: CaseState, run: Invocation) -> list[Check]:
        data = peers(state).data
        known = {i.sop_uid: i for i in data.referenced_instances}
        params: list[str] = []
        routing: list[str] = []
        asked: list[str] = []
        for peer, source_id in _WADO_SOURCES:
            for n, query in enumerate(_wado_gets(run, peer), start=1):
                label = f"{peer} GET {n}"
                single = {k: v[0] for k, v in query.items() if len(v) == 1}
                repeated = sorted(k for k, v in query.items() if len(v) > 1)
                if repeated:
                    params.append(f"{label}: {', '.join(repeated)} given more than once")
                if single.get("requestType") != "WADO":
                    params.append(f"{label}: requestType {single.get('requestType')!r}, not 'WADO'")
                types = [t.split(";")[0].strip() for t in single.get("contentType", "").split(",") if t.strip()]
                if MIME_DICOM not in types:
                    params.append(f"{label}: contentType {single.get('contentType')!r} does not ask for {MIME_DICOM}")
                uid = single.get("objectUID", "")
                asked.append(uid)
                instance = known.get(uid)
                if instance is None:
                    params.append(f"{label}: objectUID {uid!r} is in no manifest")
                    continue
                if single.get("studyUID") != instance.study_uid or single.get("seriesUID") != instance.series_uid:
                    params.append(f"{label}: {uid} with studyUID {single.get('studyUID')!r}, "
                                  f"seriesUID {single.get('seriesUID')!r}; the manifest says "
                                  f"{instance.study_uid}, {instance.series_uid}")  # fmt: skip
                location = data.location_of(instance)
                if location != source_id:
                    routing.append(f"{label}: {uid} asked of source {source_id}; its Retrieve Location UID is {location}")
        wanted = [i.sop_uid for i in expected(state)]
        twice = sorted({u for u in asked if asked.count(u) > 1}) if once else []
        missing = sorted(set(wanted) - set(asked))
        extra = sorted(set(asked) - set(wanted))
        return [
            Check("WADO request sent", bool(asked), f"{len(asked)} GET(s)", "xds-notes §7.6 step 3 (or WADO)"),
            _check("WADO-URI parameters", params, WADO_RULE, ok="requestType, studyUID, seriesUID, objectUID, contentType"),
            _check("WADO endpoint by Retrieve Location UID", routing,
                   "RAD TF-3 §4.68.4.1.2.1 (Retrieve Location UID); xds-notes §7.2, §7.6", ok="every GET"),
            _check("every referenced instance asked" + (" once" if once else ""),
                   [f"missing {', '.join(missing)}"] * bool(missing) + [f"not wanted {', '.join(extra)}"] * bool(extra)
                   + [f"asked twice {', '.join(twice)}"] * bool(twice),
                   WADO_RULE + "; xds-notes §7.6", ok=f"{len(wanted)} instance(s)"),
        ]  # fmt: skip

    return judge


# -- (b) what the consumer produced ---------------------------------------------------------------
def _files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file()) if out.is_dir() else []


def documents_in_out(documents: Callable[[CaseState], Sequence[StoredDocument]]) -> Judge:
    """Each served document is in ``{out}`` byte for byte (the MTOM reply was accepted and its
    XOP part kept exactly: ITI TF-2b §3.43.4.2.2; xds-notes §1.4)."""

    def judge(state: CaseState, run: Invocation) -> list[Check]:
        files = [(p, p.read_bytes()) for p in _files(run.out)]
        problems = []
        for document in documents(state):
            if not any(data == document.content for _, data in files):
                near = [f"{p.name} ({len(d)} bytes)" for p, d in files if document.unique_id in p.name]
                problems.append(f"{document.key} ({document.unique_id}, {len(document.content)} bytes) not found"
                                + (f"; differs in {', '.join(near)}" if near else ""))  # fmt: skip
        return [_check("documents in {out}", problems, "ITI TF-2b §3.43.4.2.2 (the document bytes, as served)",
                       ok=f"byte for byte, {len(files)} file(s)")]  # fmt: skip

    return judge


def _dataset(data: bytes) -> bytes | None:
    try:
        return data[dataset_offset(data) :]
    except ValueError:
        return None


def instances_in_out(instances: Callable[[CaseState], Sequence[TestInstance]]) -> Judge:
    """Each served DICOM instance is in ``{out}``: its data set after the File Meta group is the
    one served, byte for byte (RAD TF-3 §4.69.4.2.3; PS3.10 §7.1)."""

    def judge(state: CaseState, run: Invocation) -> list[Check]:
        found = {}
        for path in _files(run.out):
            data = path.read_bytes()
            if len(data) > 132 and data[128:132] == b"DICM":
                dataset = _dataset(data)
                if dataset is not None:
                    found[dataset] = path
        wanted = list(instances(state))
        missing = [f"{i.key} ({i.sop_uid})" for i in wanted if i.dataset_bytes not in found]
        return [_check("DICOM instances in {out}", [f"not found byte for byte: {', '.join(missing)}"] * bool(missing),
                       "RAD TF-3 §4.69.4.2.3 (the instances as returned)", ok=f"{len(wanted)} instance(s)")]  # fmt: skip

    return judge


def absent_instances(instances: Callable[[CaseState], Sequence[TestInstance]]) -> Judge:
    """No file in ``{out}`` claims to be an instance the source did not return."""

    def judge(state: CaseState, run: Invocation) -> list[Check]:
        names = [p.name for p in _files(run.out)]
        present = [i.key for i in instances(state) if any(i.sop_uid in n for n in names)]
        return [_check("nothing made up", [f"a file names {', '.join(present)}, which was not returned"] * bool(present),
                       "ITI TF-2b §3.43.4.2.3 (PartialSuccess: only the returned documents exist)", ok="none")]  # fmt: skip

    return judge
