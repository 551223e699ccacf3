"""The XDS model -> ebRIM 3.0: ``lcm:SubmitObjectsRequest``, ``rim:RegistryObjectList``, objects.

Elements follow the rim.xsd order inside every RegistryObject (Slot*, Name?, Description?,
VersionInfo?, Classification*, ExternalIdentifier*), every Identifiable gets an id (a fresh
``urn:uuid:`` for classifications and external identifiers), ExternalIdentifiers carry their
``@registryObject`` and the TF name (ITI TF-3 Tables 4.2.3.2-1, 4.2.3.3-1, 4.2.3.4-1), and
SubmissionSets and Folders carry their node classification inside the package.

``for_query=True`` is the query-response form: every object gets ``@status``, ``@lid`` and
``rim:VersionInfo/@versionName`` (the NIST response validator requires them, NIST issue #598);
when the model has none, status is Approved, lid the id and version "1". Nested classifications
and identifiers then also carry their ``@objectType``.

Speed: the registry encodes every object it stores. The encoder writes XML text directly (one
list of string parts per message, values escaped) and, where an element is wanted, parses that
text once; on this project's lxml this is several times faster than building the same tree with
``etree.SubElement``. :func:`encode_object_bytes` skips the parse for callers that store bytes.
Markup that depends only on constants (schemes, slot and identifier names, object types) is
escaped and joined once at import, and each element is one f-string, so an object costs about a
third of what escaping every attribute at every call did (the output is the same bytes).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Final

from lxml import etree

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
from xds.xml import parse_xml

__all__ = [
    "encode_object",
    "encode_object_bytes",
    "encode_object_refs",
    "encode_registry_object_list",
    "encode_submit_objects_request",
]

_DEFAULT_VERSION: Final = "1"
_XMLNS_RIM: Final = f' xmlns:rim="{NS_RIM}"'

# XML 1.0 §2.2 Char; anything else cannot be written.
_NOT_XML_CHAR: Final = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# The ASCII bytes that are XML Chars: deleting them from ASCII text leaves only what is not.
_ASCII_XML_CHARS: Final = bytes((0x09, 0x0A, 0x0D, *range(0x20, 0x80)))
_attr_special: Final = re.compile('[&<>"\x09\x0a\x0d]').search
_text_special: Final = re.compile("[&<>\x0d]").search


def _attr(value: str) -> str:
    """Escape an attribute value (white space as character references, so it survives
    attribute-value normalisation, XML 1.0 §3.3.3)."""
    if _attr_special(value) is None:
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
    if _text_special(value) is None:
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


# Speed: the registry encodes every object it stores, so the writers below put each element
# together with one f-string, from fragments escaped once at import (schemes, slot and
# identifier names are constants) and values escaped once per object (the owner id). Ids from
# new_id() are hex digits and "urn:uuid:-", which never need escaping.
_CLASSIFICATION_TYPE: Final = f' objectType="{_attr(ObjectType.CLASSIFICATION)}"'
_IDENTIFIER_TYPE: Final = f' objectType="{_attr(ObjectType.EXTERNAL_IDENTIFIER)}"'
_CODING_SCHEME_SLOT: Final = f'<rim:Slot name="{_attr(SlotName.CODING_SCHEME)}"><rim:ValueList><rim:Value>'
_SLOT_END: Final = "</rim:ValueList></rim:Slot>"
_VALUE_SLOT_END: Final = "</rim:Value></rim:ValueList></rim:Slot>"


def _slot_open(name: str) -> str:
    return f'<rim:Slot name="{_attr(name)}"><rim:ValueList>'


def _scheme_mid(scheme: str) -> str:
    """What follows a classification's id up to its classifiedObject value."""
    return f'" classificationScheme="{_attr(scheme)}" classifiedObject="'


def _identifier_parts(scheme: str) -> tuple[str, str]:
    """What follows an ExternalIdentifier's registryObject value up to its value, and its Name."""
    return (
        f'" identificationScheme="{_attr(scheme)}" value="',
        f'<rim:Name><rim:LocalizedString value="{_attr(EXTERNAL_IDENTIFIER_NAMES[scheme])}"/></rim:Name>'
        "</rim:ExternalIdentifier>",
    )


# (attribute, classification head middle) of the DocumentEntry codes, in wire order.
_DE_CODES: Final = tuple((attr, _scheme_mid(scheme)) for scheme, (attr, _) in n.DE_CODE_SCHEMES.items())
_SS_CONTENT_TYPE_MID: Final = _scheme_mid(Scheme.SS_CONTENT_TYPE_CODE)
_FD_CODE_MID: Final = _scheme_mid(Scheme.FD_CODE_LIST)
_DOCUMENTATION_MID: Final = _scheme_mid(Scheme.ASSOCIATION_DOCUMENTATION)
_DE_AUTHOR_MID: Final = _scheme_mid(Scheme.DE_AUTHOR)
_SS_AUTHOR_MID: Final = _scheme_mid(Scheme.SS_AUTHOR)
# (attribute, identificationScheme part, Name part) in wire order, per kind.
def _identifier_table(*schemes: tuple[str, str]) -> tuple[tuple[str, str, str], ...]:
    return tuple((attr, *_identifier_parts(scheme)) for scheme, attr in schemes)


_DE_IDS: Final = _identifier_table((IdScheme.DE_PATIENT_ID, "patient_id"), (IdScheme.DE_UNIQUE_ID, "unique_id"))
_SS_IDS: Final = _identifier_table(
    (IdScheme.SS_UNIQUE_ID, "unique_id"), (IdScheme.SS_SOURCE_ID, "source_id"), (IdScheme.SS_PATIENT_ID, "patient_id")
)
_FD_IDS: Final = _identifier_table((IdScheme.FD_PATIENT_ID, "patient_id"), (IdScheme.FD_UNIQUE_ID, "unique_id"))
# (slot open tag, attribute) in wire order.
_DE_SINGLE: Final = tuple((_slot_open(name), attr) for name, attr in n.DE_SINGLE_SLOTS.items())
_DE_MULTI: Final = tuple((_slot_open(name), attr) for name, attr in n.DE_MULTI_SLOTS.items())
_AUTHOR_PERSON_SLOT: Final = _slot_open(SlotName.AUTHOR_PERSON)
_AUTHOR_MULTI: Final = tuple(
    (_slot_open(name), attr)
    for name, attr in (
        (SlotName.AUTHOR_INSTITUTION, "institutions"),
        (SlotName.AUTHOR_ROLE, "roles"),
        (SlotName.AUTHOR_SPECIALTY, "specialties"),
        (SlotName.AUTHOR_TELECOMMUNICATION, "telecommunications"),
    )
)
_SUBMISSION_TIME_SLOT: Final = _slot_open(SlotName.SUBMISSION_TIME)
_INTENDED_RECIPIENT_SLOT: Final = _slot_open(SlotName.INTENDED_RECIPIENT)
_LAST_UPDATE_TIME_SLOT: Final = _slot_open(SlotName.LAST_UPDATE_TIME)
_SUBMISSION_SET_STATUS_SLOT: Final = _slot_open(SlotName.SUBMISSION_SET_STATUS)
_PACKAGE_TYPE: Final = f' objectType="{_attr(ObjectType.REGISTRY_PACKAGE)}"'
_ASSOCIATION_TYPE: Final = f' objectType="{_attr(ObjectType.ASSOCIATION)}"'
_SS_NODE: Final = f'" classificationNode="{_attr(Node.SUBMISSION_SET)}"'
_FD_NODE: Final = f'" classificationNode="{_attr(Node.FOLDER)}"'


def _limited(scheme: str) -> str:
    return f'" classificationScheme="{_attr(scheme)}" nodeRepresentation=""'


_DE_LIMITED: Final = _limited(Scheme.DE_LIMITED_METADATA)
_SS_LIMITED: Final = _limited(Scheme.SS_LIMITED_METADATA)
_FD_LIMITED: Final = _limited(Scheme.FD_LIMITED_METADATA)


# -- building blocks ------------------------------------------------------------------------------


def _slot(out: _Out, name: str, values: Iterable[str], slot_type: str | None = None) -> None:
    typed = "" if slot_type is None else f' slotType="{_attr(slot_type)}"'
    out.append(f'<rim:Slot name="{_attr(name)}"{typed}><rim:ValueList>')
    out.extend(f"<rim:Value>{_text(v)}</rim:Value>" for v in values)
    out.append(_SLOT_END)


def _known_slot(out: _Out, head: str, values: Iterable[str]) -> None:
    """A slot whose open tag (a TF name) was written at import."""
    out.append(head)
    out.extend(f"<rim:Value>{_text(v)}</rim:Value>" for v in values)
    out.append(_SLOT_END)


def _single_slot(out: _Out, head: str, value: str) -> None:
    out.append(f"{head}<rim:Value>{_text(value)}{_VALUE_SLOT_END}")


def _extra_slots(out: _Out, slots: Sequence[Slot]) -> None:
    for s in slots:
        _slot(out, s.name, s.values, s.slot_type)


def _localized(out: _Out, tag: str, text: str) -> None:
    out.append(f'<rim:{tag}><rim:LocalizedString value="{_attr(text)}"/></rim:{tag}>')


def _object_attrs(obj: RegistryObject, escaped_id: str, *, for_query: bool) -> str:
    """status, lid and home (ITI TF-3 §4.2.3.2; NIST issue #598 for query responses)."""
    attrs = ""
    if for_query:
        status = obj.status or Status.APPROVED
        lid = obj.lid
        attrs = f' status="{_attr(status)}" lid="{_attr(lid) if lid else escaped_id}"'
    else:
        if obj.status is not None:
            attrs = f' status="{_attr(obj.status)}"'
        if obj.lid is not None:
            attrs += f' lid="{_attr(obj.lid)}"'
    if obj.home is not None:
        attrs += f' home="{_attr(obj.home)}"'
    return attrs


def _name_description_version(out: _Out, obj: RegistryObject, *, for_query: bool) -> None:
    if obj.title is not None:
        _localized(out, "Name", obj.title)
    if obj.comments is not None:
        _localized(out, "Description", obj.comments)
    version = obj.version or (_DEFAULT_VERSION if for_query else None)
    if version is not None:
        out.append(f'<rim:VersionInfo versionName="{_attr(version)}"/>')


def _code(out: _Out, mid: str, owner: str, code: Code, query_type: str) -> None:
    """A coded value (ITI TF-3 §4.2.3.1.2): nodeRepresentation, codingScheme slot, display Name.

    ``mid`` is the scheme part of the head (:func:`_scheme_mid`), ``owner`` the escaped id of
    the classified object, ``query_type`` the objectType attribute of the query form or "".
    """
    head = (
        f'<rim:Classification id="{out.new_id()}{mid}{owner}" nodeRepresentation="{_attr(code.code)}"{query_type}'
    )
    scheme, display = code.scheme, code.display
    if not scheme and not display:
        out.append(head + "/>")
        return
    if scheme:
        head = f"{head}>{_CODING_SCHEME_SLOT}{_text(scheme)}{_VALUE_SLOT_END}"
    else:
        head += ">"
    if display:
        out.append(f'{head}<rim:Name><rim:LocalizedString value="{_attr(display)}"/></rim:Name></rim:Classification>')
    else:
        out.append(head + "</rim:Classification>")


def _author(out: _Out, mid: str, owner: str, author: Author, query_type: str) -> None:
    """An author classification (ITI TF-3 §4.2.3.1.4): nodeRepresentation "" and sub-slots."""
    out.append(f'<rim:Classification id="{out.new_id()}{mid}{owner}" nodeRepresentation=""{query_type}>')
    if author.person is not None:
        _single_slot(out, _AUTHOR_PERSON_SLOT, author.person)
    for head, attribute in _AUTHOR_MULTI:
        values = getattr(author, attribute)
        if values:
            _known_slot(out, head, values)
    _extra_slots(out, author.extra_slots)
    out.append("</rim:Classification>")


def _marker(out: _Out, owner: str, rest: str, query_type: str) -> None:
    """A classification without a code: the SS/FD node (``rest`` = :data:`_SS_NODE` ...), or
    limitedMetadata (``rest`` = :data:`_DE_LIMITED` ...)."""
    out.append(f'<rim:Classification id="{out.new_id()}" classifiedObject="{owner}{rest}{query_type}/>')


def _identifiers(
    out: _Out, obj: RegistryObject, owner: str, table: Sequence[tuple[str, str, str]], *, for_query: bool
) -> None:
    query_type = _IDENTIFIER_TYPE if for_query else ""
    for attribute, mid, tail in table:
        value = getattr(obj, attribute)
        if value is None:
            continue
        head = f'<rim:ExternalIdentifier id="{out.new_id()}" registryObject="{owner}'
        out.append(f'{head}{mid}{_attr(value)}"{query_type}>{tail}')


def _open_tag(tag: str, *, xmlns: bool) -> str:
    return f"<{tag}{_XMLNS_RIM}" if xmlns else f"<{tag}"


# -- objects ----------------------------------------------------------------------------------------


def _document_entry(out: _Out, de: DocumentEntry, *, for_query: bool, xmlns: bool) -> None:
    owner = _attr(de.id)
    head = f'{_open_tag("rim:ExtrinsicObject", xmlns=xmlns)} id="{owner}"'
    if de.mime_type:
        head += f' mimeType="{_attr(de.mime_type)}"'
    if de.object_type:
        head += f' objectType="{_attr(de.object_type)}"'
    out.append(f"{head}{_object_attrs(de, owner, for_query=for_query)}>")
    for slot_head, attribute in _DE_SINGLE:
        value = getattr(de, attribute)
        if value is not None:
            _single_slot(out, slot_head, value)
    for slot_head, attribute in _DE_MULTI:
        values = getattr(de, attribute)
        if values:
            _known_slot(out, slot_head, values)
    _extra_slots(out, de.extra_slots)
    _name_description_version(out, de, for_query=for_query)
    query_type = _CLASSIFICATION_TYPE if for_query else ""
    for author in de.authors:
        _author(out, _DE_AUTHOR_MID, owner, author, query_type)
    for attribute, mid in _DE_CODES:
        value = getattr(de, attribute)
        if value is None:
            continue
        if isinstance(value, list):
            for code in value:
                _code(out, mid, owner, code, query_type)
        else:
            _code(out, mid, owner, value, query_type)
    if de.limited_metadata:
        _marker(out, owner, _DE_LIMITED, query_type)
    _identifiers(out, de, owner, _DE_IDS, for_query=for_query)
    out.append("</rim:ExtrinsicObject>")


def _package_start(out: _Out, obj: RegistryObject, owner: str, *, for_query: bool, xmlns: bool) -> None:
    attrs = _object_attrs(obj, owner, for_query=for_query)
    out.append(f'{_open_tag("rim:RegistryPackage", xmlns=xmlns)} id="{owner}"{_PACKAGE_TYPE}{attrs}>')


def _submission_set(out: _Out, ss: SubmissionSet, *, for_query: bool, xmlns: bool) -> None:
    owner = _attr(ss.id)
    _package_start(out, ss, owner, for_query=for_query, xmlns=xmlns)
    if ss.submission_time is not None:
        _single_slot(out, _SUBMISSION_TIME_SLOT, ss.submission_time)
    if ss.intended_recipients:
        _known_slot(out, _INTENDED_RECIPIENT_SLOT, ss.intended_recipients)
    _extra_slots(out, ss.extra_slots)
    _name_description_version(out, ss, for_query=for_query)
    query_type = _CLASSIFICATION_TYPE if for_query else ""
    for author in ss.authors:
        _author(out, _SS_AUTHOR_MID, owner, author, query_type)
    if ss.content_type_code is not None:
        _code(out, _SS_CONTENT_TYPE_MID, owner, ss.content_type_code, query_type)
    if ss.limited_metadata:
        _marker(out, owner, _SS_LIMITED, query_type)
    # ITI TF-3 §4.2.3.3: a RegistryPackage is a SubmissionSet by this classification.
    _marker(out, owner, _SS_NODE, query_type)
    _identifiers(out, ss, owner, _SS_IDS, for_query=for_query)
    out.append("</rim:RegistryPackage>")


def _folder(out: _Out, fd: Folder, *, for_query: bool, xmlns: bool) -> None:
    owner = _attr(fd.id)
    _package_start(out, fd, owner, for_query=for_query, xmlns=xmlns)
    if fd.last_update_time is not None:
        _single_slot(out, _LAST_UPDATE_TIME_SLOT, fd.last_update_time)
    _extra_slots(out, fd.extra_slots)
    _name_description_version(out, fd, for_query=for_query)
    query_type = _CLASSIFICATION_TYPE if for_query else ""
    for code in fd.codes:
        _code(out, _FD_CODE_MID, owner, code, query_type)
    if fd.limited_metadata:
        _marker(out, owner, _FD_LIMITED, query_type)
    # ITI TF-3 §4.2.3.4: a RegistryPackage is a Folder by this classification.
    _marker(out, owner, _FD_NODE, query_type)
    _identifiers(out, fd, owner, _FD_IDS, for_query=for_query)
    out.append("</rim:RegistryPackage>")


def _association(out: _Out, a: Association, *, for_query: bool, xmlns: bool) -> None:
    owner = _attr(a.id)
    out.append(
        f'{_open_tag("rim:Association", xmlns=xmlns)} id="{owner}" associationType="{_attr(a.association_type)}"'
        f' sourceObject="{_attr(a.source)}" targetObject="{_attr(a.target)}"{_ASSOCIATION_TYPE}'
        f"{_object_attrs(a, owner, for_query=for_query)}>"
    )
    if a.submission_set_status is not None:
        _single_slot(out, _SUBMISSION_SET_STATUS_SLOT, a.submission_set_status)
    _extra_slots(out, a.extra_slots)
    _name_description_version(out, a, for_query=for_query)
    query_type = _CLASSIFICATION_TYPE if for_query else ""
    for code in a.documentation:
        _code(out, _DOCUMENTATION_MID, owner, code, query_type)
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
    if text.isascii():
        data = text.encode("ascii")
        # ASCII text: every byte but the C0 controls (other than tab, LF, CR) is an XML Char.
        if not data.translate(None, _ASCII_XML_CHARS):
            return data
    bad = _NOT_XML_CHAR.search(text)
    if bad is not None:
        raise ValueError(f"character U+{ord(bad.group()):04X} cannot be written in XML metadata")
    return text.encode("utf-8")


def _element(out: _Out) -> etree._Element:
    return parse_xml(_finish(out))


# -- public API ------------------------------------------------------------------------------------


def encode_object_bytes(obj: RegistryObject, *, for_query: bool = True) -> bytes:
    """One object as standalone UTF-8 XML (declaring ``rim``), without building a tree: what a
    registry stores per object and later splices into query responses."""
    out = _Out()
    _write(out, obj, for_query=for_query, xmlns=True)
    return _finish(out)


def encode_object(obj: RegistryObject, *, for_query: bool = True) -> etree._Element:
    """One DocumentEntry, SubmissionSet, Folder or Association as a standalone rim element.

    ``for_query`` (the default) writes the query-response form with status, lid and VersionInfo.
    """
    return parse_xml(encode_object_bytes(obj, for_query=for_query))


def _objects_of(objects: Submission | Iterable[RegistryObject]) -> tuple[Iterable[RegistryObject], Sequence[str]]:
    if isinstance(objects, Submission):
        return objects.all_objects(), objects.object_refs
    return objects, ()


def encode_registry_object_list(
    objects: Submission | Iterable[RegistryObject], *, for_query: bool = True
) -> etree._Element:
    """A ``rim:RegistryObjectList`` of the objects (and, for a Submission, its ObjectRefs first)."""
    items, refs = _objects_of(objects)
    out = _Out(f"<rim:RegistryObjectList{_XMLNS_RIM}>")
    _object_refs(out, refs)
    for obj in items:
        _write(out, obj, for_query=for_query)
    out.append("</rim:RegistryObjectList>")
    return _element(out)


def encode_object_refs(ids: Iterable[str]) -> etree._Element:
    """A ``rim:RegistryObjectList`` of ``rim:ObjectRef`` (the ObjectRef query result form)."""
    out = _Out(f"<rim:RegistryObjectList{_XMLNS_RIM}>")
    _object_refs(out, ids)
    out.append("</rim:RegistryObjectList>")
    return _element(out)


def encode_submit_objects_request(sub: Submission) -> etree._Element:
    """An ``lcm:SubmitObjectsRequest`` (ITI TF-2b §3.42.4.1.2) holding the submission's objects:
    ObjectRefs, SubmissionSets, DocumentEntries, Folders, then Associations."""
    out = _Out(f'<lcm:SubmitObjectsRequest xmlns:lcm="{NS_LCM}"{_XMLNS_RIM}><rim:RegistryObjectList>')
    _object_refs(out, sub.object_refs)
    for obj in sub.all_objects():
        _write(out, obj, for_query=False)
    out.append("</rim:RegistryObjectList></lcm:SubmitObjectsRequest>")
    return _element(out)
