"""HL7 v2 data types and value formats of XDS metadata (ITI TF-3 §4.2.3.1.7, Table 4.2.3.1.7-2).

Every ``check_*`` function takes the wire text and returns ``None`` when the value is valid, or a
short reason (a phrase that reads after the value, e.g. "is not an OID") when it is not. The
``is_*`` functions are the boolean forms. Validation composes these into RegistryErrors; other
callers (the CLI, the Edge Server building metadata) use them directly.

HL7 v2 encoding as XDS uses it: components are separated by ``^``, subcomponents by ``&``; an
empty component is absent. The assigning authority of an XDS identifier is an HD written
``&OID&ISO`` (namespace empty, universal ID an ISO OID).

Public API::

    check_oid, check_dtm, check_cx, check_patient_id, check_cxi, check_xcn, check_xon, check_xtn,
    check_hash, check_size, check_language_code, check_unique_id, check_document_unique_id,
    check_uuid_urn, check_source_patient_info, check_intended_recipient
    is_oid, is_dtm, is_cx, is_patient_id, is_xcn, is_xon, is_xtn, is_hash, is_size,
    is_language_code, is_document_unique_id
    CX, HD, cx_parts(text) -> CX, hd_parts(text) -> HD, components(text) -> list[str]
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CX",
    "HD",
    "check_cx",
    "check_cxi",
    "check_document_unique_id",
    "check_dtm",
    "check_hash",
    "check_intended_recipient",
    "check_language_code",
    "check_oid",
    "check_patient_id",
    "check_size",
    "check_source_patient_info",
    "check_unique_id",
    "check_uuid_urn",
    "check_xcn",
    "check_xon",
    "check_xtn",
    "components",
    "cx_parts",
    "hd_parts",
    "is_cx",
    "is_document_unique_id",
    "is_dtm",
    "is_hash",
    "is_language_code",
    "is_oid",
    "is_patient_id",
    "is_size",
    "is_xcn",
    "is_xon",
    "is_xtn",
]

# ITI TF-3 Table 4.2.3.1.7-2 (OID): dotted decimal arcs, no leading zeros, first arc 0, 1 or 2;
# at most 64 characters (ITI TF-3 §4.2.3.2, uniqueId; the DICOM UID limit).
OID_MAX_LENGTH: Final = 64
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
# ITI TF-3 §4.2.3.2 (uniqueId): a DocumentEntry uniqueId is OID or OID^extension, extension ≤ 16 chars.
UNIQUE_ID_EXTENSION_MAX_LENGTH: Final = 16
_HEX40 = re.compile(r"[0-9A-Fa-f]{40}")
_DIGITS = re.compile(r"[0-9]+")
_UUID_URN = re.compile(r"urn:uuid:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_SOURCE_PATIENT_INFO = re.compile(r"PID-[1-9][0-9]?\|")

# RFC 5646 §2.1 Language-Tag ABNF (case-insensitive), including the grandfathered tags of §2.2.8.
_ALNUM = "[a-z0-9]"
_LANGTAG = (
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"  # language [-extlang]
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"  # region
    rf"(?:-(?:{_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}}))*"  # variants
    rf"(?:-[0-9a-wyz](?:-{_ALNUM}{{2,8}})+)*"  # extensions (any singleton but x)
    rf"(?:-x(?:-{_ALNUM}{{1,8}})+)?"  # private use
)
_PRIVATE_USE = rf"x(?:-{_ALNUM}{{1,8}})+"
_GRANDFATHERED = (
    "en-gb-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo|i-pwn|"
    "i-tao|i-tay|i-tsu|sgn-be-fr|sgn-be-nl|sgn-ch-de|art-lojban|cel-gaulish|no-bok|no-nyn|"
    "zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang"
)
_LANGUAGE_TAG = re.compile(rf"(?:{_LANGTAG}|{_PRIVATE_USE}|{_GRANDFATHERED})", re.IGNORECASE)

# ITI TF-3 Table 4.2.3.1.7-2 (DTM): YYYY[MM[DD[hh[mm[ss]]]]], UTC, no time zone.
_DTM_LENGTHS: Final = frozenset({4, 6, 8, 10, 12, 14})

# XTN.3 telecommunication equipment types that carry a phone number (HL7 v2.5 table 0202).
_PHONE_TYPES: Final = frozenset({"PH", "CP", "FX", "BP", "MD", "TDD", "TTY", "SAT"})
_EMAIL_TYPES: Final = frozenset({"Internet", "X.400"})


# -- parsing ------------------------------------------------------------------------------------


def components(text: str) -> list[str]:
    """The ``^``-separated components of an HL7 v2 value (component 1 at index 0)."""
    return text.split("^")


def _component(parts: list[str], number: int) -> str:
    """Component ``number`` (1-based), or "" when absent."""
    return parts[number - 1] if len(parts) >= number else ""


@dataclass(frozen=True, slots=True)
class HD:
    """An HL7 v2 HD (hierarchic designator): namespace ID, universal ID, universal ID type."""

    namespace_id: str = ""
    universal_id: str = ""
    universal_id_type: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.namespace_id or self.universal_id or self.universal_id_type)


def hd_parts(text: str) -> HD:
    """Split an HD written with ``&`` subcomponents (``&1.2.3&ISO``)."""
    sub = text.split("&")
    return HD(
        namespace_id=sub[0] if sub else "",
        universal_id=sub[1] if len(sub) > 1 else "",
        universal_id_type=sub[2] if len(sub) > 2 else "",
    )


@dataclass(frozen=True, slots=True)
class CX:
    """An HL7 v2 CX (extended composite ID) as XDS uses it: ``id^^^&OID&ISO`` plus the rest."""

    id: str
    check_digit: str = ""
    check_digit_scheme: str = ""
    assigning_authority: HD = HD()
    identifier_type_code: str = ""
    extra: tuple[str, ...] = ()  # CX.6 onwards

    @property
    def authority_oid(self) -> str:
        """The assigning authority's universal ID (the affinity-domain OID for a patientId)."""
        return self.assigning_authority.universal_id


def cx_parts(text: str) -> CX:
    """Split a CX (``P123^^^&1.2.3&ISO``) into its components; no validation."""
    parts = components(text)
    return CX(
        id=parts[0],
        check_digit=_component(parts, 2),
        check_digit_scheme=_component(parts, 3),
        assigning_authority=hd_parts(_component(parts, 4)),
        identifier_type_code=_component(parts, 5),
        extra=tuple(parts[5:]),
    )


# -- OIDs, uniqueIds, UUIDs ----------------------------------------------------------------------


def check_oid(text: str) -> str | None:
    """ITI TF-3 Table 4.2.3.1.7-2: an ISO OID, dotted decimal, at most 64 characters."""
    if not text:
        return "is empty"
    if len(text) > OID_MAX_LENGTH:
        return f"is longer than {OID_MAX_LENGTH} characters"
    if _OID.fullmatch(text) is None:
        return "is not an OID"
    return None


def check_unique_id(text: str) -> str | None:
    """SubmissionSet and Folder uniqueId (ITI TF-3 §4.2.3.3, §4.2.3.4): an OID."""
    return check_oid(text)


def check_document_unique_id(text: str) -> str | None:
    """DocumentEntry uniqueId (ITI TF-3 §4.2.3.2, uniqueId): ``OID`` or ``OID^extension``; OID at most
    64 characters, extension at most 16, no trailing ``^``."""
    if not text:
        return "is empty"
    root, sep, ext = text.partition("^")
    problem = check_oid(root)
    if problem:
        return f"has a root that {problem}" if root else "has an empty OID root"
    if sep:
        if not ext:
            return "ends with '^' (an empty extension)"
        if len(ext) > UNIQUE_ID_EXTENSION_MAX_LENGTH:
            return f"has an extension longer than {UNIQUE_ID_EXTENSION_MAX_LENGTH} characters"
        if "^" in ext:
            return "has more than one '^'"
    return None


def check_uuid_urn(text: str) -> str | None:
    """An entryUUID in ``urn:uuid:`` form (RFC 4122 UUID, 8-4-4-4-12 hex digits)."""
    return None if _UUID_URN.fullmatch(text) else "is not a urn:uuid: UUID"


# -- DTM -----------------------------------------------------------------------------------------


def check_dtm(text: str) -> str | None:
    """ITI TF-3 Table 4.2.3.1.7-2 (DTM): ``YYYY[MM[DD[hh[mm[ss]]]]]`` in UTC, 4, 6, 8, 10, 12 or
    14 digits, each field in range (no time zone, no fraction)."""
    if len(text) not in _DTM_LENGTHS or not text.isascii() or not text.isdigit():
        return "is not a DTM (YYYY[MM[DD[hh[mm[ss]]]]])"
    year = int(text[0:4])
    if len(text) >= 6:
        month = int(text[4:6])
        if not 1 <= month <= 12:
            return "is not a DTM (month out of range)"
        if len(text) >= 8:
            day = int(text[6:8])
            if not 1 <= day <= calendar.monthrange(max(year, 1), month)[1]:
                return "is not a DTM (day out of range)"
    if len(text) >= 10 and int(text[8:10]) > 23:
        return "is not a DTM (hour out of range)"
    if len(text) >= 12 and int(text[10:12]) > 59:
        return "is not a DTM (minute out of range)"
    if len(text) >= 14 and int(text[12:14]) > 59:
        return "is not a DTM (second out of range)"
    return None


# -- identifiers: CX, CXi ------------------------------------------------------------------------


def _check_iso_hd(hd_text: str, what: str) -> str | None:
    """An HD that must be ``&OID&ISO`` (ITI TF-3 Table 4.2.3.1.7-2, CX.4 / XCN.9 / XON.6)."""
    hd = hd_parts(hd_text)
    if hd.namespace_id:
        return f"has a namespace ID in {what} (only &OID&ISO is allowed)"
    if hd.universal_id_type != "ISO":
        return f"has a {what} whose universal ID type is not ISO"
    if not hd.universal_id:
        return f"has a {what} without universal ID"
    if hd_text.count("&") > 2:
        return f"has too many subcomponents in {what}"
    problem = check_oid(hd.universal_id)
    if problem:
        return f"has a {what} universal ID that {problem}"
    return None


def check_cx(text: str) -> str | None:
    """A CX identifier (sourcePatientId, ITI TF-3 §4.2.3.2): CX.1 present and CX.4 a valid
    assigning authority ``&OID&ISO``; at most 10 components."""
    if not text:
        return "is empty"
    parts = components(text)
    if len(parts) > 10:
        return "is not a CX (more than 10 components)"
    if not parts[0]:
        return "is not a CX (CX.1 ID is empty)"
    authority = _component(parts, 4)
    if not authority:
        return "is not a CX (CX.4 assigning authority is missing)"
    problem = _check_iso_hd(authority, "CX.4 assigning authority")
    return f"is not a CX ({problem})" if problem else None


def check_patient_id(text: str) -> str | None:
    """An XDS patientId (ITI TF-3 §4.2.3.2, patientId; Table 4.2.3.1.7-2 CX): ``ID^^^&OID&ISO`` with only CX.1 and CX.4,
    CX.4 having an empty namespace, an OID universal ID and the type ISO."""
    if not text:
        return "is empty"
    parts = components(text)
    if len(parts) != 4:
        return "is not a patient ID (only CX.1 and CX.4 are allowed: ID^^^&OID&ISO)"
    if parts[1] or parts[2]:
        return "is not a patient ID (CX.2 and CX.3 must be empty)"
    if not parts[0]:
        return "is not a patient ID (CX.1 ID is empty)"
    if not parts[3]:
        return "is not a patient ID (CX.4 assigning authority is missing)"
    problem = _check_iso_hd(parts[3], "CX.4 assigning authority")
    return f"is not a patient ID ({problem})" if problem else None


def check_cxi(text: str) -> str | None:
    """A referenceIdList value (CXi, ITI TF-3 Table 4.2.3.1.7-2): CXi.1 ID and CXi.5 identifier
    type required; CXi.4 either a namespace or a universal ID with its type; CXi.2, .3, .6-.9
    empty; CXi.10 (homeCommunityId) allowed."""
    if not text:
        return "is empty"
    parts = components(text)
    if len(parts) > 10:
        return "is not a CXi (more than 10 components)"
    if not parts[0]:
        return "is not a CXi (CXi.1 ID is empty)"
    if not _component(parts, 5):
        return "is not a CXi (CXi.5 identifier type code is empty)"
    if any(_component(parts, n) for n in (2, 3, 6, 7, 8, 9)):
        return "is not a CXi (only components 1, 4, 5 and 10 are allowed)"
    authority = _component(parts, 4)
    if authority:
        hd = hd_parts(authority)
        if not (hd.namespace_id or (hd.universal_id and hd.universal_id_type)):
            return "is not a CXi (incomplete CXi.4 assigning authority)"
        if hd.universal_id_type == "ISO" and check_oid(hd.universal_id):
            return "is not a CXi (CXi.4 universal ID is not an OID)"
    return None


# -- people, organisations, telecom ---------------------------------------------------------------


def check_xcn(text: str) -> str | None:
    """An XCN person (authorPerson, legalAuthenticator; ITI TF-3 Table 4.2.3.1.7-2): XCN.1 ID or
    XCN.2.1 family name present; when XCN.9 assigning authority is present it is ``&OID&ISO``."""
    if not text:
        return "is empty"
    parts = components(text)
    if len(parts) > 23:
        return "is not an XCN (more than 23 components)"
    family = _component(parts, 2).split("&")[0]
    if not parts[0] and not family:
        return "is not an XCN (neither XCN.1 ID nor XCN.2 family name is present)"
    authority = _component(parts, 9)
    if authority:
        problem = _check_iso_hd(authority, "XCN.9 assigning authority")
        if problem:
            return f"is not an XCN ({problem})"
    return None


def check_xon(text: str) -> str | None:
    """An XON organisation (authorInstitution; ITI TF-3 Table 4.2.3.1.7-2): XON.1 name required;
    only XON.1, XON.3 (deprecated ID), XON.6 and XON.10 allowed; XON.6 when present is
    ``&OID&ISO``; without XON.6 an XON.10 identifier must be an OID."""
    if not text:
        return "is empty"
    parts = components(text)
    if len(parts) > 10:
        return "is not an XON (more than 10 components)"
    if not parts[0]:
        return "is not an XON (XON.1 organization name is empty)"
    if any(_component(parts, n) for n in (2, 4, 5, 7, 8, 9)):
        return "is not an XON (only components 1, 6 and 10 are allowed)"
    authority = _component(parts, 6)
    identifier = _component(parts, 10) or _component(parts, 3)
    if authority:
        problem = _check_iso_hd(authority, "XON.6 assigning authority")
        if problem:
            return f"is not an XON ({problem})"
    elif identifier and check_oid(identifier):
        return "is not an XON (XON.10 is not an OID and XON.6 is absent)"
    return None


def check_xtn(text: str) -> str | None:
    """An XTN telecommunication address (authorTelecommunication; ITI TF-3 Table 4.2.3.1.7-2):
    XTN.3 equipment type required; ``Internet`` needs XTN.4 e-mail; a phone type needs a number
    (XTN.7 local number or XTN.12 unformatted number)."""
    if not text:
        return "is empty"
    parts = components(text)
    if len(parts) > 18:
        return "is not an XTN (more than 18 components)"
    kind = _component(parts, 3)
    if not kind:
        return "is not an XTN (XTN.3 telecommunication equipment type is empty)"
    if kind in _EMAIL_TYPES:
        if not _component(parts, 4):
            return f"is not an XTN (type {kind} without XTN.4 address)"
        return None
    if kind in _PHONE_TYPES:
        if not (_component(parts, 7) or _component(parts, 12) or parts[0]):
            return f"is not an XTN (type {kind} without a telephone number)"
        return None
    return f"is not an XTN (unknown XTN.3 equipment type '{kind}')"


def check_intended_recipient(text: str) -> str | None:
    """SubmissionSet intendedRecipient (ITI TF-3 §4.2.3.3, intendedRecipient): ``XON|XCN|XTN``,
    each part optional, at least one present, each valid for its position; a value without
    ``|`` may be any one of the three."""
    if not text:
        return "is empty"
    parts = text.split("|")
    if len(parts) > 3:
        return "is not an intendedRecipient (more than three '|' parts)"
    checks = (check_xon, check_xcn, check_xtn)
    if not any(parts):
        return "is not an intendedRecipient (no organization, person or telecom)"
    if len(parts) == 1 and any(check(text) is None for check in checks):
        return None  # a lone organization, person or telecom address
    for part, check in zip(parts, checks, strict=False):
        if part:
            problem = check(part)
            if problem:
                return f"has a part '{part}' that {problem}"
    return None


# -- scalar slots ---------------------------------------------------------------------------------


def check_hash(text: str) -> str | None:
    """DocumentEntry hash (ITI TF-3 §4.2.3.2, hash): SHA-1 as 40 hexadecimal digits, either case
    (NIST 11981 sends upper case)."""
    return None if _HEX40.fullmatch(text) else "is not a SHA-1 hash (40 hexadecimal digits)"


def check_size(text: str) -> str | None:
    """DocumentEntry size (ITI TF-3 §4.2.3.2, size): a non-negative decimal integer of bytes."""
    return None if _DIGITS.fullmatch(text) else "is not a decimal size in bytes"


def check_language_code(text: str) -> str | None:
    """DocumentEntry languageCode (ITI TF-3 §4.2.3.2, languageCode): an RFC 5646 language tag."""
    return None if _LANGUAGE_TAG.fullmatch(text) else "is not an RFC 5646 language tag"


def check_source_patient_info(text: str) -> str | None:
    """One sourcePatientInfo value (ITI TF-3 §4.2.3.2, sourcePatientInfo): ``PID-n|value``."""
    return None if _SOURCE_PATIENT_INFO.match(text) else "is not a 'PID-n|value' field"


# -- boolean forms ------------------------------------------------------------------------------


def is_oid(text: str) -> bool:
    return check_oid(text) is None


def is_dtm(text: str) -> bool:
    return check_dtm(text) is None


def is_cx(text: str) -> bool:
    return check_cx(text) is None


def is_patient_id(text: str) -> bool:
    return check_patient_id(text) is None


def is_xcn(text: str) -> bool:
    return check_xcn(text) is None


def is_xon(text: str) -> bool:
    return check_xon(text) is None


def is_xtn(text: str) -> bool:
    return check_xtn(text) is None


def is_hash(text: str) -> bool:
    return check_hash(text) is None


def is_size(text: str) -> bool:
    return check_size(text) is None


def is_language_code(text: str) -> bool:
    return check_language_code(text) is None


def is_document_unique_id(text: str) -> bool:
    return check_document_unique_id(text) is None
