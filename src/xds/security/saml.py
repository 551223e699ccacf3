"""The consent token as a SAML 2.0 Assertion (DESIGN §4), signed and verified with xmlsec.

The assertion follows SAML 2.0 Core §2.3.3 (element order Issuer, Signature, Subject,
Conditions, AttributeStatement) and the XML Signature profile of SAML Core §5.4: an enveloped
signature whose one Reference points at the assertion's ``ID``, exclusive canonicalisation,
RSA-SHA256 over a SHA-256 digest, and the signer's certificate in KeyInfo. The subject is the
grant; the attributes list exactly what the grant lets its bearer see.

Verification defends against signature wrapping: the assertion is copied into a document of its
own, so the only element the signature can reference is the copy; the Signature must be a child
of the assertion, its single Reference must name the assertion's ID with only the enveloped and
exclusive-c14n transforms, and that ID must occur once. Everything returned is read from the
verified copy. The key is the trusted certificate given by the caller, never the KeyInfo.

Public API::

    GrantScope(patient_id, manifest_unique_ids, study_instance_uids, report_unique_ids)
    build_assertion(*, issuer, subject, audience, scope, now, lifetime, assertion_id=None)
        -> etree._Element                                         # unsigned
    sign_assertion(assertion, *, key_pem, cert_pem) -> etree._Element   # signed in place
    issue_assertion(..., key_pem, cert_pem) -> bytes              # build + sign + serialise
    verify_assertion(element, *, trusted_cert, audience, now, skew=DEFAULT_SKEW)
        -> VerifiedAssertion
    InvalidAssertion(ValueError) > MalformedAssertion, SignatureInvalid, AssertionExpired,
                                   AssertionNotYetValid, AudienceMismatch
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import xmlsec
from lxml import etree

from xds.vocabulary import (
    NS_DS,
    NS_SAML2,
    NS_XSD,
    NS_XSI,
    SAML2_ATTRNAME_URI,
    SAML2_CM_BEARER,
    SAML2_NAMEID_ENTITY,
    SAML2_NAMEID_UNSPECIFIED,
    SAML2_VERSION,
    GrantAttribute,
)
from xds.xml import qname, to_bytes

__all__ = [
    "DEFAULT_SKEW",
    "AssertionExpired",
    "AssertionNotYetValid",
    "AudienceMismatch",
    "GrantScope",
    "InvalidAssertion",
    "MalformedAssertion",
    "SignatureInvalid",
    "VerifiedAssertion",
    "build_assertion",
    "issue_assertion",
    "sign_assertion",
    "verify_assertion",
]

#: Clock difference tolerated between issuer and verifier (SAML Core §2.5.1.2 leaves it to us).
DEFAULT_SKEW: Final = timedelta(seconds=60)

_A = NS_SAML2
ASSERTION: Final = qname(_A, "Assertion")
_ISSUER = qname(_A, "Issuer")
_SUBJECT = qname(_A, "Subject")
_NAME_ID = qname(_A, "NameID")
_SUBJECT_CONFIRMATION = qname(_A, "SubjectConfirmation")
_CONDITIONS = qname(_A, "Conditions")
_AUDIENCE_RESTRICTION = qname(_A, "AudienceRestriction")
_AUDIENCE = qname(_A, "Audience")
_ATTRIBUTE_STATEMENT = qname(_A, "AttributeStatement")
_ATTRIBUTE = qname(_A, "Attribute")
_ATTRIBUTE_VALUE = qname(_A, "AttributeValue")
_SIGNATURE = qname(NS_DS, "Signature")
_REFERENCE = qname(NS_DS, "Reference")
_TRANSFORM = qname(NS_DS, "Transform")
_SIGNATURE_METHOD = qname(NS_DS, "SignatureMethod")
_XSI_TYPE = qname(NS_XSI, "type")

_ALLOWED_TRANSFORMS: Final = frozenset(
    {xmlsec.constants.TransformEnveloped.href, xmlsec.constants.TransformExclC14N.href}
)


class InvalidAssertion(ValueError):
    """The assertion must not be trusted; subclasses say why."""


class MalformedAssertion(InvalidAssertion):
    """Not a SAML 2.0 Assertion of the expected shape (missing parts, bad times, two IDs)."""


class SignatureInvalid(InvalidAssertion):
    """Unsigned, signed by another key, altered after signing, or a signature that does not
    cover the assertion itself (wrapping)."""


class AssertionExpired(InvalidAssertion):
    """``now`` is at or after NotOnOrAfter (plus the skew)."""


class AssertionNotYetValid(InvalidAssertion):
    """``now`` is before NotBefore (minus the skew)."""


class AudienceMismatch(InvalidAssertion):
    """The assertion is not meant for this relying party (SAML Core §2.5.1.4)."""


@dataclass(frozen=True, slots=True)
class GrantScope:
    """What a grant lets its bearer see: the patient, the released manifests and their studies,
    and the reports of those studies."""

    patient_id: str
    manifest_unique_ids: frozenset[str] = field(default_factory=frozenset)
    study_instance_uids: frozenset[str] = field(default_factory=frozenset)
    report_unique_ids: frozenset[str] = field(default_factory=frozenset)

    def permits_document(self, unique_id: str) -> bool:
        """True for a manifest or report uniqueId inside the scope."""
        return unique_id in self.manifest_unique_ids or unique_id in self.report_unique_ids


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """What a verified assertion says, read from the element the signature covers."""

    assertion_id: str
    issuer: str
    subject: str
    issue_instant: datetime
    not_before: datetime
    not_on_or_after: datetime
    audiences: tuple[str, ...]
    scope: GrantScope
    element: etree._Element = field(compare=False, repr=False)

    @property
    def grant_id(self) -> str:
        return self.subject


# -- time ------------------------------------------------------------------------------------------
def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC)


def _xs_datetime(moment: datetime) -> str:
    # SAML Core §1.3.3: xs:dateTime in UTC with the "Z" designator.
    return _utc(moment).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str | None, what: str) -> datetime:
    if not text:
        raise MalformedAssertion(f"the assertion has no {what}")
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedAssertion(f"{what} {text!r} is not an xs:dateTime") from None
    if moment.tzinfo is None:
        raise MalformedAssertion(f"{what} {text!r} has no time zone (SAML requires UTC)")
    return moment.astimezone(UTC)


# -- building --------------------------------------------------------------------------------------
def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    element = etree.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _attribute(statement: etree._Element, name: str, values: Iterable[str]) -> None:
    attribute = _sub(statement, _ATTRIBUTE, Name=name, NameFormat=SAML2_ATTRNAME_URI)
    for value in sorted(values):
        _sub(attribute, _ATTRIBUTE_VALUE, value).set(_XSI_TYPE, "xs:string")


def build_assertion(
    *,
    issuer: str,
    subject: str,
    audience: str,
    scope: GrantScope,
    now: datetime,
    lifetime: timedelta,
    assertion_id: str | None = None,
) -> etree._Element:
    """An unsigned assertion about grant ``subject``, valid from ``now`` for ``lifetime``."""
    if lifetime <= timedelta(0):
        raise ValueError("the assertion lifetime must be positive")
    issued = _utc(now)
    # SAML Core §1.3.4: an ID is an xs:ID (an NCName), so it may not start with a digit.
    ident = assertion_id or f"_{uuid.uuid4().hex}"
    root = etree.Element(
        ASSERTION,
        nsmap={"saml": _A, "xs": NS_XSD, "xsi": NS_XSI},
        ID=ident,
        Version=SAML2_VERSION,
        IssueInstant=_xs_datetime(issued),
    )
    _sub(root, _ISSUER, issuer, Format=SAML2_NAMEID_ENTITY)
    subject_el = _sub(root, _SUBJECT)
    _sub(subject_el, _NAME_ID, subject, Format=SAML2_NAMEID_UNSPECIFIED)
    # SAML Profiles §3 (bearer): whoever presents the assertion is the subject's delegate.
    _sub(subject_el, _SUBJECT_CONFIRMATION, Method=SAML2_CM_BEARER)
    conditions = _sub(
        root,
        _CONDITIONS,
        NotBefore=_xs_datetime(issued),
        NotOnOrAfter=_xs_datetime(issued + lifetime),
    )
    _sub(_sub(conditions, _AUDIENCE_RESTRICTION), _AUDIENCE, audience)
    statement = _sub(root, _ATTRIBUTE_STATEMENT)
    _attribute(statement, GrantAttribute.PATIENT_ID, [scope.patient_id])
    _attribute(statement, GrantAttribute.MANIFEST_UNIQUE_ID, scope.manifest_unique_ids)
    _attribute(statement, GrantAttribute.STUDY_INSTANCE_UID, scope.study_instance_uids)
    _attribute(statement, GrantAttribute.REPORT_UNIQUE_ID, scope.report_unique_ids)
    return root


def sign_assertion(assertion: etree._Element, *, key_pem: bytes, cert_pem: bytes) -> etree._Element:
    """Sign ``assertion`` in place (SAML Core §5.4) and return it."""
    ident = assertion.get("ID")
    if not ident:
        raise ValueError("the assertion has no ID to reference")
    signature = xmlsec.template.create(
        assertion, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256, ns="ds"
    )
    # SAML Core §2.3.3: ds:Signature comes right after saml:Issuer.
    issuer = assertion.find(_ISSUER)
    if issuer is None:
        raise ValueError("the assertion has no Issuer")
    issuer.addnext(signature)
    reference = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256, uri=f"#{ident}")
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(key_info))
    key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(cert_pem, xmlsec.constants.KeyDataFormatCertPem)
    context = xmlsec.SignatureContext()
    context.key = key
    context.register_id(assertion, "ID")
    context.sign(signature)
    return assertion


def issue_assertion(
    *,
    issuer: str,
    subject: str,
    audience: str,
    scope: GrantScope,
    now: datetime,
    lifetime: timedelta,
    key_pem: bytes,
    cert_pem: bytes,
) -> bytes:
    """Build, sign and serialise an assertion (what the token endpoint answers)."""
    assertion = build_assertion(
        issuer=issuer, subject=subject, audience=audience, scope=scope, now=now, lifetime=lifetime
    )
    return to_bytes(sign_assertion(assertion, key_pem=key_pem, cert_pem=cert_pem), xml_declaration=True)


# -- verifying -------------------------------------------------------------------------------------
def _check_signature_shape(assertion: etree._Element, ident: str) -> etree._Element:
    signatures = assertion.findall(_SIGNATURE)
    if not signatures:
        raise SignatureInvalid("the assertion is not signed")
    if len(signatures) > 1:
        raise SignatureInvalid("the assertion carries more than one signature")
    signature = signatures[0]
    references = signature.findall(f".//{_REFERENCE}")
    if len(references) != 1:
        raise SignatureInvalid("the signature must have exactly one Reference")
    if references[0].get("URI") != f"#{ident}":
        raise SignatureInvalid("the signature does not reference the assertion it is in")
    transforms = {t.get("Algorithm") for t in references[0].iter(_TRANSFORM)}
    if not transforms <= _ALLOWED_TRANSFORMS:
        raise SignatureInvalid("the signature uses transforms other than enveloped and exclusive c14n")
    method = signature.find(f".//{_SIGNATURE_METHOD}")
    if method is None or method.get("Algorithm") != xmlsec.constants.TransformRsaSha256.href:
        raise SignatureInvalid("the signature method must be RSA-SHA256")
    return signature


def _load_trusted(trusted_cert: bytes) -> xmlsec.Key:
    return xmlsec.Key.from_memory(trusted_cert, xmlsec.constants.KeyDataFormatCertPem)


def _attribute_values(statement_parent: etree._Element, name: str) -> frozenset[str]:
    values: set[str] = set()
    for attribute in statement_parent.iterfind(f"{_ATTRIBUTE_STATEMENT}/{_ATTRIBUTE}"):
        if attribute.get("Name") == name:
            values.update((v.text or "").strip() for v in attribute.iterfind(_ATTRIBUTE_VALUE))
    values.discard("")
    return frozenset(values)


def verify_assertion(
    element: etree._Element,
    *,
    trusted_cert: bytes,
    audience: str,
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
) -> VerifiedAssertion:
    """Check signature, validity window and audience; return what the signed assertion says.

    ``element`` is the ``saml:Assertion`` as found (e.g. in a WS-Security header).
    ``trusted_cert`` is the issuer's PEM certificate. Raises an :class:`InvalidAssertion`
    subclass naming the first problem found.
    """
    if element.tag != ASSERTION:
        raise MalformedAssertion(f"expected a SAML 2.0 Assertion, got {element.tag}")
    # Wrapping defence: a detached copy is the whole document, so the ID the Reference names can
    # only resolve inside it, and what is read below is exactly what was verified.
    copy = deepcopy(element)
    etree.ElementTree(copy)
    ident = copy.get("ID")
    if not ident:
        raise MalformedAssertion("the assertion has no ID")
    if copy.get("Version") != SAML2_VERSION:
        raise MalformedAssertion("the assertion is not SAML 2.0")
    same_id = [e for e in copy.iter() if isinstance(e.tag, str) and ident in (e.get("ID"), e.get("Id"), e.get("id"))]
    if len(same_id) != 1:
        raise SignatureInvalid("the assertion's ID occurs more than once")
    signature = _check_signature_shape(copy, ident)
    context = xmlsec.SignatureContext()
    try:
        context.key = _load_trusted(trusted_cert)
    except xmlsec.Error as exc:
        raise ValueError(f"the trusted certificate cannot be loaded: {exc}") from None
    context.register_id(copy, "ID")
    try:
        context.verify(signature)
    except xmlsec.Error:
        raise SignatureInvalid("the signature does not verify with the trusted certificate") from None

    issuer_el = copy.find(_ISSUER)
    name_id = copy.find(f"{_SUBJECT}/{_NAME_ID}")
    conditions = copy.find(_CONDITIONS)
    if issuer_el is None or not (issuer_el.text or "").strip():
        raise MalformedAssertion("the assertion has no Issuer")
    if name_id is None or not (name_id.text or "").strip():
        raise MalformedAssertion("the assertion has no Subject NameID")
    if conditions is None:
        raise MalformedAssertion("the assertion has no Conditions")
    issue_instant = _parse_time(copy.get("IssueInstant"), "IssueInstant")
    not_before = _parse_time(conditions.get("NotBefore"), "NotBefore")
    not_on_or_after = _parse_time(conditions.get("NotOnOrAfter"), "NotOnOrAfter")
    moment = _utc(now)
    # SAML Core §2.5.1.2: valid when NotBefore <= now < NotOnOrAfter.
    if moment + skew < not_before:
        raise AssertionNotYetValid(f"the assertion is valid from {_xs_datetime(not_before)}")
    if moment - skew >= not_on_or_after:
        raise AssertionExpired(f"the assertion expired at {_xs_datetime(not_on_or_after)}")
    # SAML Core §2.5.1.4: with several AudienceRestrictions the relying party must be in each.
    restrictions = conditions.findall(_AUDIENCE_RESTRICTION)
    if not restrictions:
        raise AudienceMismatch("the assertion names no audience")
    audiences: list[str] = []
    for restriction in restrictions:
        names = [(a.text or "").strip() for a in restriction.findall(_AUDIENCE)]
        audiences.extend(names)
        if audience not in names:
            raise AudienceMismatch("the assertion is meant for another audience")
    patient_ids = _attribute_values(copy, GrantAttribute.PATIENT_ID)
    if len(patient_ids) != 1:
        raise MalformedAssertion("the assertion must name exactly one patient")
    scope = GrantScope(
        patient_id=next(iter(patient_ids)),
        manifest_unique_ids=_attribute_values(copy, GrantAttribute.MANIFEST_UNIQUE_ID),
        study_instance_uids=_attribute_values(copy, GrantAttribute.STUDY_INSTANCE_UID),
        report_unique_ids=_attribute_values(copy, GrantAttribute.REPORT_UNIQUE_ID),
    )
    return VerifiedAssertion(
        assertion_id=ident,
        issuer=issuer_el.text.strip(),  # type: ignore[union-attr]
        subject=name_id.text.strip(),  # type: ignore[union-attr]
        issue_instant=issue_instant,
        not_before=not_before,
        not_on_or_after=not_on_or_after,
        audiences=tuple(audiences),
        scope=scope,
        element=copy,
    )
