"""The ebRIM encoder as first written (straightforward string building, one regex per value),
kept as the oracle the optimised :mod:`xds.metadata.ebrim_encode` is compared with byte for
byte: same model and same id source in, same bytes out.

Public API (bytes, not elements)::

    encode_object_bytes(obj, *, for_query=True) -> bytes
    encode_registry_object_list_bytes(objects, *, for_query=True) -> bytes
    encode_submit_objects_request_bytes(sub) -> bytes
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Final

from xds.metadata import ebrim_names as n
from xds.metadata.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    RegistryObject,
    Slot,
    Submission,
    SubmissionSet,
)
from xds.vocabulary import (
    EXTERNAL_IDENTIFIER_NAMES,
    NS_LCM,
    NS_RIM,
    IdScheme,
    Node,
    ObjectType,
    Scheme,
    SlotName,
    Status,
)

_DEFAULT_VERSION: Final = "1"
_XMLNS_RIM: Final = f' xmlns:rim="{NS_RIM}"'

# Element order of the code classifications on the wire, per kind (scheme, attribute).
_DE_CODES: Final = tuple((scheme, attr) for scheme, (attr, _) in n.DE_CODE_SCHEMES.items())
_DE_IDS: Final = ((IdScheme.DE_PATIENT_ID, "patient_id"), (IdScheme.DE_UNIQUE_ID, "unique_id"))
_SS_IDS: Final = (
    (IdScheme.SS_UNIQUE_ID, "unique_id"),
    (IdScheme.SS_SOURCE_ID, "source_id"),
    (IdScheme.SS_PATIENT_ID, "patient_id"),
)
_FD_IDS: Final = ((IdScheme.FD_PATIENT_ID, "patient_id"), (IdScheme.FD_UNIQUE_ID, "unique_id"))
_DE_SINGLE: Final = tuple(n.DE_SINGLE_SLOTS.items())
_DE_MULTI: Final = tuple(n.DE_MULTI_SLOTS.items())

# XML 1.0 §2.2 Char; anything else cannot be written.
_NOT_XML_CHAR: Final = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTR_SPECIAL: Final = re.compile('[&<>"\x09\x0a\x0d]')
_TEXT_SPECIAL: Final = re.compile("[&<>\x0d]")


def _attr(value: str) -> str:
    """Escape an attribute value (white space as character references, so it survives
    attribute-value normalisation, XML 1.0 §3.3.3)."""
    if _ATTR_SPECIAL.search(value) is None:
        return value
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\t", "&#9;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
    )


def _text(value: str) -> str:
    if _TEXT_SPECIAL.search(value) is None:
        return value
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


class _Out(list[str]):
    """The string parts of one message, and its id generator.

    Ids are random version-4 UUIDs: one :func:`uuid.uuid4` per 65536 ids, whose last 16 random
    bits are replaced by a counter (still a valid, unique-with-overwhelming-probability UUID;
    uuid4() per classification was a measurable share of encoding time).
    """

    __slots__ = ("_count", "_prefix")

    def __init__(self, first: str = "") -> None:
        super().__init__((first,) if first else ())
        self._prefix = ""
        self._count = 0x10000

    def new_id(self) -> str:
        if self._count >= 0x10000:
            self._prefix = f"urn:uuid:{str(uuid.uuid4())[:-4]}"
            self._count = 0
        self._count += 1
        return f"{self._prefix}{self._count - 1:04x}"


def _open(out: _Out, tag: str, attrs: Sequence[tuple[str, str]], *, xmlns: bool = False, empty: bool = False) -> None:
    head = f"<{tag}{_XMLNS_RIM}" if xmlns else f"<{tag}"
    out.append(head + "".join(f' {k}="{_attr(v)}"' for k, v in attrs) + ("/>" if empty else ">"))


# -- building blocks ------------------------------------------------------------------------------


def _slot(out: _Out, name: str, values: Iterable[str], slot_type: str | None = None) -> None:
    typed = "" if slot_type is None else f' slotType="{_attr(slot_type)}"'
    out.append(f'<rim:Slot name="{_attr(name)}"{typed}><rim:ValueList>')
    out.extend(f"<rim:Value>{_text(v)}</rim:Value>" for v in values)
    out.append("</rim:ValueList></rim:Slot>")


def _extra_slots(out: _Out, slots: Sequence[Slot]) -> None:
    for s in slots:
        _slot(out, s.name, s.values, s.slot_type)


def _localized(out: _Out, tag: str, text: str) -> None:
    out.append(f'<rim:{tag}><rim:LocalizedString value="{_attr(text)}"/></rim:{tag}>')


def _object_attrs(obj: RegistryObject, attrs: list[tuple[str, str]], *, for_query: bool) -> list[tuple[str, str]]:
    """status, lid and home (ITI TF-3 §4.2.3.2; NIST issue #598 for query responses)."""
    if for_query:
        attrs.append(("status", obj.status or Status.APPROVED))
        attrs.append(("lid", obj.lid or obj.id))
    else:
        if obj.status is not None:
            attrs.append(("status", obj.status))
        if obj.lid is not None:
            attrs.append(("lid", obj.lid))
    if obj.home is not None:
        attrs.append(("home", obj.home))
    return attrs


def _name_description_version(out: _Out, obj: RegistryObject, *, for_query: bool) -> None:
    if obj.title is not None:
        _localized(out, "Name", obj.title)
    if obj.comments is not None:
        _localized(out, "Description", obj.comments)
    version = obj.version or (_DEFAULT_VERSION if for_query else None)
    if version is not None:
        out.append(f'<rim:VersionInfo versionName="{_attr(version)}"/>')


def _classification_head(
    out: _Out, scheme: str, owner: str, node_representation: str, *, for_query: bool
) -> list[tuple[str, str]]:
    attrs = [
        ("id", out.new_id()),
        ("classificationScheme", scheme),
        ("classifiedObject", owner),
        ("nodeRepresentation", node_representation),
    ]
    if for_query:
        attrs.append(("objectType", ObjectType.CLASSIFICATION))
    return attrs


def _code(out: _Out, scheme: str, owner: str, code: Code, *, for_query: bool) -> None:
    """A coded value (ITI TF-3 §4.2.3.1.2): nodeRepresentation, codingScheme slot, display Name."""
    attrs = _classification_head(out, scheme, owner, code.code, for_query=for_query)
    if not code.scheme and not code.display:
        _open(out, "rim:Classification", attrs, empty=True)
        return
    _open(out, "rim:Classification", attrs)
    if code.scheme:
        _slot(out, SlotName.CODING_SCHEME, (code.scheme,))
    if code.display:
        _localized(out, "Name", code.display)
    out.append("</rim:Classification>")


def _author(out: _Out, scheme: str, owner: str, author: Author, *, for_query: bool) -> None:
    """An author classification (ITI TF-3 §4.2.3.1.4): nodeRepresentation "" and sub-slots."""
    _open(out, "rim:Classification", _classification_head(out, scheme, owner, "", for_query=for_query))
    if author.person is not None:
        _slot(out, SlotName.AUTHOR_PERSON, (author.person,))
    if author.institutions:
        _slot(out, SlotName.AUTHOR_INSTITUTION, author.institutions)
    if author.roles:
        _slot(out, SlotName.AUTHOR_ROLE, author.roles)
    if author.specialties:
        _slot(out, SlotName.AUTHOR_SPECIALTY, author.specialties)
    if author.telecommunications:
        _slot(out, SlotName.AUTHOR_TELECOMMUNICATION, author.telecommunications)
    _extra_slots(out, author.extra_slots)
    out.append("</rim:Classification>")


def _marker(out: _Out, owner: str, *, scheme: str | None = None, node: str | None = None, for_query: bool) -> None:
    """A classification without a code: the SS/FD node, or limitedMetadata."""
    attrs = [("id", out.new_id()), ("classifiedObject", owner)]
    if node is not None:
        attrs.append(("classificationNode", node))
    if scheme is not None:
        attrs += [("classificationScheme", scheme), ("nodeRepresentation", "")]
    if for_query:
        attrs.append(("objectType", ObjectType.CLASSIFICATION))
    _open(out, "rim:Classification", attrs, empty=True)


def _identifiers(out: _Out, obj: RegistryObject, table: Sequence[tuple[str, str]], *, for_query: bool) -> None:
    for scheme, attribute in table:
        value = getattr(obj, attribute)
        if value is None:
            continue
        attrs = [("id", out.new_id()), ("registryObject", obj.id), ("identificationScheme", scheme), ("value", value)]
        if for_query:
            attrs.append(("objectType", ObjectType.EXTERNAL_IDENTIFIER))
        _open(out, "rim:ExternalIdentifier", attrs)
        _localized(out, "Name", EXTERNAL_IDENTIFIER_NAMES[scheme])
        out.append("</rim:ExternalIdentifier>")


# -- objects ----------------------------------------------------------------------------------------


def _document_entry(out: _Out, de: DocumentEntry, *, for_query: bool, xmlns: bool) -> None:
    attrs = [("id", de.id)]
    if de.mime_type:
        attrs.append(("mimeType", de.mime_type))
    if de.object_type:
        attrs.append(("objectType", de.object_type))
    _open(out, "rim:ExtrinsicObject", _object_attrs(de, attrs, for_query=for_query), xmlns=xmlns)
    for name, attribute in _DE_SINGLE:
        value = getattr(de, attribute)
        if value is not None:
            _slot(out, name, (value,))
    for name, attribute in _DE_MULTI:
        values = getattr(de, attribute)
        if values:
            _slot(out, name, values)
    _extra_slots(out, de.extra_slots)
    _name_description_version(out, de, for_query=for_query)
    for author in de.authors:
        _author(out, Scheme.DE_AUTHOR, de.id, author, for_query=for_query)
    for scheme, attribute in _DE_CODES:
        value = getattr(de, attribute)
        if value is None:
            continue
        if isinstance(value, list):
            for code in value:
                _code(out, scheme, de.id, code, for_query=for_query)
        else:
            _code(out, scheme, de.id, value, for_query=for_query)
    if de.limited_metadata:
        _marker(out, de.id, scheme=Scheme.DE_LIMITED_METADATA, for_query=for_query)
    _identifiers(out, de, _DE_IDS, for_query=for_query)
    out.append("</rim:ExtrinsicObject>")


def _package_start(out: _Out, obj: RegistryObject, *, for_query: bool, xmlns: bool) -> None:
    attrs = [("id", obj.id), ("objectType", ObjectType.REGISTRY_PACKAGE)]
    _open(out, "rim:RegistryPackage", _object_attrs(obj, attrs, for_query=for_query), xmlns=xmlns)


def _submission_set(out: _Out, ss: SubmissionSet, *, for_query: bool, xmlns: bool) -> None:
    _package_start(out, ss, for_query=for_query, xmlns=xmlns)
    if ss.submission_time is not None:
        _slot(out, SlotName.SUBMISSION_TIME, (ss.submission_time,))
    if ss.intended_recipients:
        _slot(out, SlotName.INTENDED_RECIPIENT, ss.intended_recipients)
    _extra_slots(out, ss.extra_slots)
    _name_description_version(out, ss, for_query=for_query)
    for author in ss.authors:
        _author(out, Scheme.SS_AUTHOR, ss.id, author, for_query=for_query)
    if ss.content_type_code is not None:
        _code(out, Scheme.SS_CONTENT_TYPE_CODE, ss.id, ss.content_type_code, for_query=for_query)
    if ss.limited_metadata:
        _marker(out, ss.id, scheme=Scheme.SS_LIMITED_METADATA, for_query=for_query)
    # ITI TF-3 §4.2.3.3: a RegistryPackage is a SubmissionSet by this classification.
    _marker(out, ss.id, node=Node.SUBMISSION_SET, for_query=for_query)
    _identifiers(out, ss, _SS_IDS, for_query=for_query)
    out.append("</rim:RegistryPackage>")


def _folder(out: _Out, fd: Folder, *, for_query: bool, xmlns: bool) -> None:
    _package_start(out, fd, for_query=for_query, xmlns=xmlns)
    if fd.last_update_time is not None:
        _slot(out, SlotName.LAST_UPDATE_TIME, (fd.last_update_time,))
    _extra_slots(out, fd.extra_slots)
    _name_description_version(out, fd, for_query=for_query)
    for code in fd.codes:
        _code(out, Scheme.FD_CODE_LIST, fd.id, code, for_query=for_query)
    if fd.limited_metadata:
        _marker(out, fd.id, scheme=Scheme.FD_LIMITED_METADATA, for_query=for_query)
    # ITI TF-3 §4.2.3.4: a RegistryPackage is a Folder by this classification.
    _marker(out, fd.id, node=Node.FOLDER, for_query=for_query)
    _identifiers(out, fd, _FD_IDS, for_query=for_query)
    out.append("</rim:RegistryPackage>")


def _association(out: _Out, a: Association, *, for_query: bool, xmlns: bool) -> None:
    attrs = [
        ("id", a.id),
        ("associationType", a.association_type),
        ("sourceObject", a.source),
        ("targetObject", a.target),
        ("objectType", ObjectType.ASSOCIATION),
    ]
    _open(out, "rim:Association", _object_attrs(a, attrs, for_query=for_query), xmlns=xmlns)
    if a.submission_set_status is not None:
        _slot(out, SlotName.SUBMISSION_SET_STATUS, (a.submission_set_status,))
    _extra_slots(out, a.extra_slots)
    _name_description_version(out, a, for_query=for_query)
    for code in a.documentation:
        _code(out, Scheme.ASSOCIATION_DOCUMENTATION, a.id, code, for_query=for_query)
    out.append("</rim:Association>")


_WRITERS: Final = {
    DocumentEntry: _document_entry,
    SubmissionSet: _submission_set,
    Folder: _folder,
    Association: _association,
}


def _write(out: _Out, obj: RegistryObject, *, for_query: bool, xmlns: bool = False) -> None:
    writer = _WRITERS.get(type(obj))
    if writer is None:
        raise TypeError(f"cannot encode {type(obj).__name__} as ebRIM")
    writer(out, obj, for_query=for_query, xmlns=xmlns)  # type: ignore[operator]


def _object_refs(out: _Out, ids: Iterable[str]) -> None:
    out.extend(f'<rim:ObjectRef id="{_attr(ref)}"/>' for ref in ids)


def _finish(out: _Out) -> bytes:
    text = "".join(out)
    bad = _NOT_XML_CHAR.search(text)
    if bad is not None:
        raise ValueError(f"character U+{ord(bad.group()):04X} cannot be written in XML metadata")
    return text.encode("utf-8")



# -- public API ------------------------------------------------------------------------------------


def encode_object_bytes(obj: RegistryObject, *, for_query: bool = True) -> bytes:
    out = _Out()
    _write(out, obj, for_query=for_query, xmlns=True)
    return _finish(out)


def encode_registry_object_list_bytes(objects: Submission | Iterable[RegistryObject], *, for_query: bool = True) -> bytes:
    if isinstance(objects, Submission):
        items, refs = objects.all_objects(), objects.object_refs
    else:
        items, refs = objects, []
    out = _Out(f"<rim:RegistryObjectList{_XMLNS_RIM}>")
    _object_refs(out, refs)
    for obj in items:
        _write(out, obj, for_query=for_query)
    out.append("</rim:RegistryObjectList>")
    return _finish(out)


def encode_submit_objects_request_bytes(sub: Submission) -> bytes:
    out = _Out(f'<lcm:SubmitObjectsRequest xmlns:lcm="{NS_LCM}"{_XMLNS_RIM}><rim:RegistryObjectList>')
    _object_refs(out, sub.object_refs)
    for obj in sub.all_objects():
        _write(out, obj, for_query=False)
    out.append("</rim:RegistryObjectList></lcm:SubmitObjectsRequest>")
    return _finish(out)
