"""The runner's own assertions: packaging, SOAP 1.2, WS-Addressing, XSD, status, errors, counts.

Each function returns :class:`~conformance_tests.model.Check` values instead of stopping at the
first problem, so a report lists everything wrong with a response. Every check names the rule it
applies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from conformance_tests.model import Check, Counts, Expectation, status_name
from conformance_tests.response import ObjectView, ResponseView
from conformance_tests.schemas import SchemaSet
from xds.soap import MimeError, parse_content_type
from xds.vocabulary import (
    MEDIA_MULTIPART_RELATED,
    MEDIA_SOAP12,
    MEDIA_XOP,
    NS_SOAP11,
    NS_SOAP12,
    ResponseStatus,
    Severity,
    Status,
)

__all__ = [
    "check_counts",
    "check_envelope",
    "check_expectation",
    "check_fault",
    "check_leaf_class",
    "check_schema",
    "check_status",
]

_KNOWN_STATUSES: Final = (ResponseStatus.SUCCESS, ResponseStatus.FAILURE, ResponseStatus.PARTIAL_SUCCESS)
_SEVERITIES: Final = (Severity.ERROR, Severity.WARNING)
_UUID: Final = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def _check(name: str, passed: bool, detail: str, rule: str) -> Check:
    return Check(name=name, passed=passed, detail=detail, rule=rule)


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    try:
        parsed = parse_content_type(value)
    except MimeError:
        return value.split(";", 1)[0].strip().lower(), {}
    return parsed.media_type, {k.lower(): v for k, v in parsed.params.items()}


# -- SOAP and WS-Addressing ----------------------------------------------------------------------
def check_content_type(view: ResponseView) -> Check:
    """SOAP 1.2 HTTP binding: application/soap+xml, or MTOM whose root part is SOAP 1.2."""
    rule = "SOAP 1.2 Part 2 §7.1.4; ITI TF-2x V.3.1 (SOAP 1.2), MTOM §4.3"
    content_type = view.answer.content_type
    media, params = _media_type(content_type)
    if media == MEDIA_SOAP12:
        return _check("Content-Type", True, content_type, rule)
    if media == MEDIA_MULTIPART_RELATED:
        problems = []
        if params.get("type", "").lower() != MEDIA_XOP:
            problems.append(f"type={params.get('type')!r}, not {MEDIA_XOP}")
        if (params.get("start-info") or "").lower() != MEDIA_SOAP12:
            problems.append(f"start-info={params.get('start-info')!r}, not {MEDIA_SOAP12}")
        root_media, root_params = _media_type(view.answer.root_content_type)
        if root_media != MEDIA_XOP or (root_params.get("type") or "").lower() != MEDIA_SOAP12:
            problems.append(f"root part Content-Type {view.answer.root_content_type!r}")
        return _check("Content-Type", not problems, "; ".join(problems) or content_type, rule)
    return _check("Content-Type", False, f"{content_type or '(none)'}: not a SOAP 1.2 media type", rule)


def check_envelope(
    view: ResponseView,
    *,
    expected_action: str,
    expected_body: str,
) -> list[Check]:
    """A SOAP 1.2 reply with the response action, RelatesTo, and the expected body element."""
    answer = view.answer
    checks = [
        _check(
            "reply",
            not answer.problem,
            answer.problem or f"{answer.exchange.response_status}, {len(answer.exchange.response_body)} bytes",
            "ITI TF-2x Appendix V (synchronous SOAP exchange)",
        )
    ]
    if answer.problem:
        return checks
    checks.append(
        _check(
            "HTTP status",
            answer.http_status == 200,
            f"HTTP {answer.http_status}"
            + ("" if answer.http_status == 200 else " (a business reply travels with 200)"),
            "SOAP 1.2 Part 2 §7.5.1.1; xds-notes §1.3 (business errors in the body, HTTP 200)",
        )
    )
    checks.append(check_content_type(view))
    namespace = view.soap_namespace
    version = {NS_SOAP12: "SOAP 1.2", NS_SOAP11: "SOAP 1.1"}.get(namespace or "", repr(namespace))
    checks.append(
        _check(
            "SOAP 1.2 envelope",
            namespace == NS_SOAP12,
            f"envelope is {version}",
            "ITI TF-2x V.3.1: XDS.b uses SOAP 1.2 only",
        )
    )
    if view.is_fault:
        checks.append(
            _check("not a fault", False, f"SOAP Fault {view.fault_code}: {view.fault_reason}", "ITI TF-2x V.3.1")
        )
        return checks
    actions = view.header_values("Action")
    checks.append(
        _check(
            "wsa:Action",
            actions == [expected_action],
            f"expected exactly [{expected_action}], got {actions}",
            "ITI TF-2x V.3.2.2; WS-Addressing 1.0 SOAP Binding §2.4",
        )
    )
    relates = view.header_values("RelatesTo")
    checks.append(
        _check(
            "wsa:RelatesTo",
            [r.strip() for r in relates] == [answer.message_id],
            f"expected [{answer.message_id}], got {relates}",
            "ITI TF-2x V.3.2.2; WS-Addressing 1.0 Core §3.4 (reply relates to the request MessageID)",
        )
    )
    body = view.body_tag
    checks.append(
        _check(
            "response body",
            body == expected_body,
            f"expected {expected_body}, got {body}",
            "ITI TF-2b §3.42.4.2 / ITI TF-2a §3.18.4.2 (response message)",
        )
    )
    return checks


def check_schema(view: ResponseView, schemas: SchemaSet) -> Check:
    """The body validates against the ebRS 3.0 / IHE schemas."""
    rule = "ebRS 3.0 rs.xsd, query.xsd, rim.xsd (ITI TF-3 §4.2); XDS.b_DocumentRepository.xsd"
    # XOP §3.2: an MTOM body is validated as its infoset (parts back in as base64).
    infoset = view.infoset()
    if infoset is None:
        return _check("XSD", False, "no body to validate", rule)
    errors = schemas.validate(infoset)
    return _check("XSD", not errors, "; ".join(errors) or "valid", rule)


# -- faults --------------------------------------------------------------------------------------
def _soap11_fault_code(view: ResponseView) -> str | None:
    if view.body is None or view.soap_namespace != NS_SOAP11:
        return None
    codes = view.body.xpath("faultcode/text()")
    return str(codes[0]).strip().rsplit(":", 1)[-1] if codes else None


def check_fault(view: ResponseView, expect: Expectation, *, accept_soap11: bool = False) -> list[Check]:
    """A SOAP Fault with the expected code (and subcode), sent with an HTTP error status."""
    rule = "SOAP 1.2 Part 1 §5.4; WS-Addressing 1.0 SOAP Binding §6"
    answer = view.answer
    if answer.problem:
        return [_check("reply", False, answer.problem, rule)]
    checks = [
        _check(
            "HTTP status",
            answer.http_status is not None and answer.http_status >= 400,
            f"HTTP {answer.http_status}",
            "SOAP 1.2 Part 2 §7.5.1.2 (a fault travels with 4xx/5xx)",
        )
    ]
    code = view.fault_code
    if accept_soap11 and answer.http_status == 415:
        # SOAP 1.2 Part 2 §7.1.4: the binding's media type is application/soap+xml; refusing
        # text/xml with 415 Unsupported Media Type refuses the SOAP 1.1 request as well.
        checks.append(_check("SOAP 1.1 refused", True, "HTTP 415 Unsupported Media Type", rule))
        return checks
    if code is None and accept_soap11:
        code = _soap11_fault_code(view)
    elif not accept_soap11:
        checks.append(
            _check(
                "SOAP 1.2 envelope", view.soap_namespace == NS_SOAP12, f"envelope namespace {view.soap_namespace}", rule
            )
        )
    checks.append(
        _check(
            "fault code",
            code == expect.fault,
            f"expected env:{expect.fault}, got {code or ('no fault: ' + str(view.body_tag))}",
            rule,
        )
    )
    if expect.fault_subcode is not None:
        subcodes = view.fault_subcodes
        checks.append(
            _check(
                "fault subcode",
                expect.fault_subcode in subcodes,
                f"expected {expect.fault_subcode}, got {subcodes}",
                rule,
            )
        )
    return checks


# -- ebRS status, errors, counts -----------------------------------------------------------------
def check_status(view: ResponseView, expect: Expectation, *, is_query: bool) -> list[Check]:
    """Status exact, errors and warnings as expected (ITI TF-3 §4.2.4)."""
    rule = "ITI TF-3 §4.2.4.1 (RegistryResponse status and RegistryErrorList)"
    status = view.status
    detail = f"expected {status_name(expect.status)}, got {status_name(status)}"
    if status not in _KNOWN_STATUSES:
        detail += " (not a ResponseStatusType: there is no 'Warning' status, NIST issue #265)"
    checks = [_check("status", status == expect.status, detail, rule)]
    errors = view.errors
    bad_severity = [e.describe() for e in errors if e.severity not in _SEVERITIES]
    if bad_severity:
        checks.append(_check("error severity", False, "; ".join(bad_severity), rule))
    listed = "; ".join(e.describe() for e in errors) or "none"
    hard = [e for e in errors if e.is_error]
    if expect.status == ResponseStatus.SUCCESS:
        checks.append(_check("no errors", not hard, f"errors: {listed}", rule))
    if expect.status == ResponseStatus.PARTIAL_SUCCESS:
        # ITI TF-2b §3.43.4.2.3: PartialSuccess lists an error for each document not returned.
        checks.append(_check("error list", bool(hard), f"errors: {listed}", rule + "; PartialSuccess lists its errors"))
    if expect.status == ResponseStatus.FAILURE:
        checks.append(_check("error list", bool(hard), f"errors: {listed}", rule + "; a Failure lists its errors"))
        if is_query:
            # ITI TF-2a §3.18.4.1.3: a failed query returns errors and no objects.
            count = 0 if view.object_list is None else len(view.object_list)
            checks.append(_check("no objects", count == 0, f"{count} objects in a Failure", "ITI TF-2a §3.18.4.1.3"))
    codes = sorted({e.code for e in hard})
    for code in expect.errors:
        checks.append(
            _check(
                f"error {code}", code in codes, f"error codes reported: {codes or 'none'}", "ITI TF-3 Table 4.2.4.1-2"
            )
        )
    warnings = sorted({e.code for e in errors if e.is_warning})
    for code in expect.warnings:
        checks.append(
            _check(
                f"warning {code}",
                code in warnings,
                f"warnings reported: {warnings or 'none'}",
                "ITI TF-3 Table 4.2.4.1-2",
            )
        )
    return checks


def check_counts(view: ResponseView, counts: Counts) -> list[Check]:
    """Exact numbers of DocumentEntries, SubmissionSets, Folders, Associations and ObjectRefs."""
    actual = {
        "DocumentEntry": len(view.documents),
        "SubmissionSet": len(view.submission_sets),
        "Folder": len(view.folders),
        "Association": len(view.associations),
        "ObjectRef": len(view.object_refs),
    }
    return [
        _check(
            f"{label} count",
            actual[label] == expected,
            f"expected {expected}, got {actual[label]}",
            "test data (exact counts)",
        )
        for label, expected in counts.items()
    ]


def check_expectation(view: ResponseView, expect: Expectation, *, is_query: bool) -> list[Check]:
    checks = check_status(view, expect, is_query=is_query)
    if expect.counts is not None:
        checks += check_counts(view, expect.counts)
    return checks


# -- LeafClass responses -------------------------------------------------------------------------
def _object_problems(obj: ObjectView) -> list[str]:
    problems = []
    where = f"{obj.tag} {obj.id or '(no id)'}"
    if not _UUID.match(obj.id):
        problems.append(f"{where}: id is not a urn:uuid")
    if obj.tag == "Association":
        return problems
    if not obj.lid:
        problems.append(f"{where}: no lid")
    if not obj.has_version_info or not obj.version:
        problems.append(f"{where}: no VersionInfo/@versionName")
    if obj.status not in (Status.APPROVED, Status.DEPRECATED):
        problems.append(f"{where}: status {obj.status!r}")
    if obj.unique_id is None:
        problems.append(f"{where}: no uniqueId")
    if obj.patient_id is None:
        problems.append(f"{where}: no patientId")
    return problems


def check_leaf_class(view: ResponseView) -> list[Check]:
    """What a LeafClass query result must hold (ITI TF-2a §3.18.4.1.3; NIST response validation)."""
    objects = [*view.documents, *view.packages, *view.associations]
    problems = [p for obj in objects for p in _object_problems(obj)]
    checks = [
        _check(
            "registry objects",
            not problems,
            "; ".join(problems[:12]) + (f"; ... {len(problems) - 12} more" if len(problems) > 12 else "")
            if problems
            else f"{len(objects)} objects with entryUUID, lid, VersionInfo, status, uniqueId, patientId",
            "ITI TF-3 §4.2.3.2 (entryUUID, logicalID, version); xds-notes §9 item 4",
        )
    ]
    patients = sorted({p for p in (o.patient_id for o in [*view.documents, *view.packages]) if p})
    checks.append(
        _check(
            "single patient",
            len(patients) <= 1,
            f"patients in the result: {patients or 'none'}",
            "ITI TF-2a §3.18.4.1.3 (XDSResultNotSinglePatient)",
        )
    )
    return checks


def summarize(checks: Iterable[Check]) -> str:
    failed = [c for c in checks if not c.passed]
    return "; ".join(f"{c.name}: {c.detail}" for c in failed)
