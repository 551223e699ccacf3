"""ebRIM 3.0 -> the XDS model: decode ``lcm:SubmitObjectsRequest`` and ``rim:RegistryObjectList``.

The model is a lenient container; what it cannot represent (a single-valued slot with several
values, a repeated slot, two classCodes, an unknown classification scheme, a RegistryPackage that
is neither SubmissionSet nor Folder, ebRIM 2.1 elements, a Classification without id ...) becomes
a finding of :class:`Decoded`. Everything the model *can* represent (an empty value, a missing
attribute, an empty codingScheme) is left for :mod:`xds.metadata.validation` to judge, so each
problem is reported exactly once.

Findings carry ``XDSRegistryMetadataError``; validation maps that to the metadata error code of
the actor's profile (the repository answers ``XDSRepositoryMetadataError``), IPF style.

Decoding accepts both placements of a SubmissionSet/Folder classification (inside the
RegistryPackage or a top-level element of the list, ITI TF-3 §4.2.3.3 / §4.2.3.4), and likewise
top-level code classifications and external identifiers that name their object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from xds.errors import ErrorCode, RegistryError
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
from xds.vocabulary import NS_RIM, Node, Scheme, SlotName

__all__ = ["Decoded", "decode_registry_object_list", "decode_submit_objects_request"]

_METADATA_ERROR: Final = ErrorCode.REGISTRY_METADATA_ERROR
_AUTHOR_SCHEMES: Final = {"DocumentEntry": Scheme.DE_AUTHOR, "SubmissionSet": Scheme.SS_AUTHOR}
_LIMITED_SCHEMES: Final = {
    "DocumentEntry": Scheme.DE_LIMITED_METADATA,
    "SubmissionSet": Scheme.SS_LIMITED_METADATA,
    "Folder": Scheme.FD_LIMITED_METADATA,
}
_NODE_KINDS: Final = {Node.SUBMISSION_SET: "SubmissionSet", Node.FOLDER: "Folder"}


@dataclass(slots=True)
class Decoded:
    """The decoded objects and the wire problems the model cannot carry.

    ``findings`` are :class:`~xds.errors.RegistryError` values with code
    ``XDSRegistryMetadataError``, the offending object's id as ``location`` and a context that
    names the object, the slot/scheme and the value.
    """

    submission: Submission
    findings: list[RegistryError] = field(default_factory=list)


@dataclass(slots=True)
class _Wire:
    """The parts of one registry object read in one pass over its children."""

    slots: list[tuple[str, tuple[str, ...], str | None]] = field(default_factory=list)
    title: str | None = None
    comments: str | None = None
    version: str | None = None
    classifications: list[etree._Element] = field(default_factory=list)
    identifiers: list[etree._Element] = field(default_factory=list)


def _ns(tag: object) -> str:
    if not isinstance(tag, str) or not tag.startswith("{"):
        return ""
    return tag[1 : tag.index("}")]


def _localized(el: etree._Element) -> str:
    """The first LocalizedString/@value of a rim:Name or rim:Description ("" when none)."""
    for child in el:
        if child.tag == n.Q_LOCALIZED_STRING:
            return child.get("value", "")
    return ""


_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
# The members of rim:Identifiable's substitution group, by their schema type (ebRIM 3.0 rim.xsd).
_TYPED_ELEMENTS = {
    "ExtrinsicObjectType": n.Q_EXTRINSIC_OBJECT,
    "RegistryPackageType": n.Q_REGISTRY_PACKAGE,
    "AssociationType1": n.Q_ASSOCIATION,
    "ClassificationType": n.Q_CLASSIFICATION,
    "ExternalIdentifierType": n.Q_EXTERNAL_IDENTIFIER,
    "ObjectRefType": n.Q_OBJECT_REF,
}


def _substituted(el: etree._Element) -> etree._Element:
    """Read ``<rim:Identifiable xsi:type="rim:ExtrinsicObjectType">`` as ``<rim:ExtrinsicObject>``.

    Both encodings are schema-valid; WSDL-driven clients without substitution-group support
    (zeep) write the typed form. The element is renamed in place.
    """
    if el.tag != n.Q_IDENTIFIABLE:
        return el
    typed = el.get(_XSI_TYPE, "")
    prefix, _, local = typed.rpartition(":")
    if el.nsmap.get(prefix or None) == NS_RIM and local in _TYPED_ELEMENTS:
        el.tag = _TYPED_ELEMENTS[local]
        del el.attrib[_XSI_TYPE]
    return el


class _Decoder:
    """One decoding run: collects the submission and the findings."""

    def __init__(self) -> None:
        self.findings: list[RegistryError] = []
        self.sub = Submission()

    def finding(self, context: str, location: str = "") -> None:
        self.findings.append(RegistryError(_METADATA_ERROR, context, location))

    # -- the list -----------------------------------------------------------------------------

    def decode_list(self, object_list: etree._Element) -> None:
        children = [_substituted(c) for c in object_list if isinstance(c.tag, str)]
        # Top-level Classifications and ExternalIdentifiers attach to the object they name.
        loose_classifications: dict[str, list[etree._Element]] = defaultdict(list)
        loose_identifiers: dict[str, list[etree._Element]] = defaultdict(list)
        object_ids = {
            c.get("id")
            for c in children
            if c.tag in (n.Q_EXTRINSIC_OBJECT, n.Q_REGISTRY_PACKAGE, n.Q_ASSOCIATION)
        }
        for c in children:
            if c.tag == n.Q_CLASSIFICATION:
                target = c.get("classifiedObject")
                if target is None or target not in object_ids:
                    self.finding(
                        f"Classification {c.get('id', '(no id)')} classifies "
                        f"{target or '(nothing)'}, which is not an object of this message",
                        c.get("id", ""),
                    )
                    continue
                loose_classifications[target].append(c)
            elif c.tag == n.Q_EXTERNAL_IDENTIFIER:
                target = c.get("registryObject")
                if target is None or target not in object_ids:
                    self.finding(
                        f"ExternalIdentifier {c.get('id', '(no id)')} identifies "
                        f"{target or '(nothing)'}, which is not an object of this message",
                        c.get("id", ""),
                    )
                    continue
                loose_identifiers[target].append(c)

        for c in children:
            tag = c.tag
            if tag == n.Q_EXTRINSIC_OBJECT:
                self.document_entry(c, loose_classifications, loose_identifiers)
            elif tag == n.Q_REGISTRY_PACKAGE:
                self.package(c, loose_classifications, loose_identifiers)
            elif tag == n.Q_ASSOCIATION:
                self.association(c, loose_classifications, loose_identifiers)
            elif tag == n.Q_OBJECT_REF:
                ref = c.get("id")
                if ref:
                    self.sub.object_refs.append(ref)
                else:
                    self.finding("an ObjectRef has no id")
            elif tag in (n.Q_CLASSIFICATION, n.Q_EXTERNAL_IDENTIFIER):
                continue
            elif _ns(tag) in n.EBRIM21_NAMESPACES:
                # ITI TF-3 §4.1: XDS.b metadata is ebRIM 3.0; XDS.a (ebRIM 2.1) is refused.
                self.finding(f"element {tag} is ebRIM 2.1 (XDS.a) metadata, which is not accepted")
            else:
                self.finding(f"unexpected element {tag} in rim:RegistryObjectList", c.get("id", ""))

    # -- common parts ----------------------------------------------------------------------------

    def read(self, el: etree._Element, kind: str, obj_id: str) -> _Wire:
        """Slots, Name, Description, VersionInfo, Classifications, ExternalIdentifiers."""
        wire = _Wire()
        for child in el:
            tag = child.tag
            if tag == n.Q_SLOT:
                wire.slots.append(self.slot(child, f"{kind} {obj_id}", obj_id))
            elif tag == n.Q_CLASSIFICATION:
                wire.classifications.append(child)
            elif tag == n.Q_EXTERNAL_IDENTIFIER:
                wire.identifiers.append(child)
            elif tag == n.Q_NAME:
                wire.title = _localized(child)
            elif tag == n.Q_DESCRIPTION:
                wire.comments = _localized(child)
            elif tag == n.Q_VERSION_INFO:
                wire.version = child.get("versionName")
        return wire

    def slot(self, el: etree._Element, owner: str, location: str) -> tuple[str, tuple[str, ...], str | None]:
        name = el.get("name", "")
        values: list[str] = []
        for value_list in el:
            if value_list.tag == n.Q_VALUE_LIST:
                for v in value_list:
                    if v.tag == n.Q_VALUE:
                        values.append(v.text or "")
        for v in values:
            if len(v) > n.LONG_NAME_MAX:
                # ebRIM 3.0 rim.xsd: a Slot Value is a LongName (at most 256 characters).
                self.finding(
                    f"{owner}: a value of slot {name} is longer than {n.LONG_NAME_MAX} characters",
                    location,
                )
        return name, tuple(values), el.get("slotType")

    def base(self, obj: RegistryObject, el: etree._Element, wire: _Wire) -> None:
        obj.lid = el.get("lid")
        obj.home = el.get("home")
        obj.status = el.get("status")
        obj.version = wire.version
        obj.title = wire.title
        obj.comments = wire.comments

    def object_id(self, el: etree._Element, kind: str) -> str:
        # A missing id is kept as "" (the model carries it; validation reports it once).
        return el.get("id", "")

    def slots_into(
        self,
        obj: object,
        slots: Iterable[tuple[str, tuple[str, ...], str | None]],
        single: Mapping[str, str],
        multi: Mapping[str, str],
        extra: list[Slot],
        owner: str,
        location: str,
    ) -> None:
        """Map slots onto attributes; the rest go to ``extra`` in wire order."""
        seen: set[str] = set()
        for name, values, slot_type in slots:
            if name in seen:
                # ebRIM 3.0 §4.3: slot names are unique within an object.
                self.finding(f"{owner}: slot {name} appears more than once", location)
            elif name in single:
                if len(values) > 1:
                    # ITI TF-3 Table 4.2.3.2-1 etc.: this attribute has cardinality 1.
                    self.finding(
                        f"{owner}: single-valued slot {name} has {len(values)} values {list(values)}",
                        location,
                    )
                setattr(obj, single[name], values[0] if values else "")
            elif name in multi:
                setattr(obj, multi[name], list(values))
            else:
                extra.append(Slot(name, values, slot_type))
            seen.add(name)

    # -- classifications and identifiers -----------------------------------------------------

    def classifications(
        self,
        obj: object,
        elements: Iterable[etree._Element],
        *,
        kind: str,
        obj_id: str,
        location: str,
        codes: Mapping[str, tuple[str, bool]],
    ) -> None:
        owner = f"{kind} {obj_id}"
        author_scheme = _AUTHOR_SCHEMES.get(kind)
        limited_scheme = _LIMITED_SCHEMES.get(kind)
        seen_single: set[str] = set()
        for c in elements:
            self.check_classification_ids(c, owner, obj_id, location)
            if c.get("classificationNode") is not None:
                if kind in ("SubmissionSet", "Folder"):
                    continue  # the node classification, read by package()
                self.finding(
                    f"{owner}: unexpected classificationNode {c.get('classificationNode')}", location
                )
                continue
            scheme = c.get("classificationScheme", "")
            if scheme == author_scheme:
                obj.authors.append(self.author(c, owner, location))  # type: ignore[attr-defined]
            elif scheme in codes:
                attribute, multi = codes[scheme]
                code = self.code(c, owner, location)
                if multi:
                    getattr(obj, attribute).append(code)
                elif scheme in seen_single:
                    # ITI TF-3 Table 4.2.3.2-1: classCode etc. have cardinality 1.
                    self.finding(
                        f"{owner}: more than one {n.CODE_ATTRIBUTE_NAMES[attribute]} classification "
                        f"(extra code '{code.code}')",
                        location,
                    )
                else:
                    seen_single.add(scheme)
                    setattr(obj, attribute, code)
            elif scheme == limited_scheme:
                obj.limited_metadata = True  # type: ignore[attr-defined]
            else:
                self.finding(f"{owner}: unknown classification scheme '{scheme}'", location)

    def check_classification_ids(self, c: etree._Element, owner: str, obj_id: str, location: str) -> None:
        if not c.get("id"):
            self.finding(f"{owner}: a Classification has no id", location)
        classified = c.get("classifiedObject")
        if classified is None:
            self.finding(f"{owner}: a Classification has no classifiedObject", location)
        elif classified != obj_id:
            self.finding(
                f"{owner}: a Classification inside it classifies another object, {classified}", location
            )

    def code(self, c: etree._Element, owner: str, location: str) -> Code:
        """A coded value (ITI TF-3 §4.2.3.1.2): nodeRepresentation, codingScheme slot, Name."""
        value = c.get("nodeRepresentation", "")
        scheme = ""
        schemes_seen = 0
        display = ""
        for child in c:
            if child.tag == n.Q_SLOT:
                name, values, _ = self.slot(child, owner, location)
                if name != SlotName.CODING_SCHEME:
                    continue
                schemes_seen += 1
                if schemes_seen > 1:
                    self.finding(f"{owner}: code '{value}' has more than one codingScheme slot", location)
                    continue
                if len(values) > 1:
                    self.finding(
                        f"{owner}: codingScheme of code '{value}' has {len(values)} values {list(values)}",
                        location,
                    )
                scheme = values[0] if values else ""
            elif child.tag == n.Q_NAME:
                display = _localized(child)
        return Code(value, scheme, display)

    def author(self, c: etree._Element, owner: str, location: str) -> Author:
        """An author classification (ITI TF-3 §4.2.3.1.4); nodeRepresentation is ""."""
        author = Author()
        seen: set[str] = set()
        for child in c:
            if child.tag != n.Q_SLOT:
                continue
            name, values, slot_type = self.slot(child, owner, location)
            if name in seen:
                self.finding(f"{owner}: author slot {name} appears more than once", location)
            elif name == SlotName.AUTHOR_PERSON:
                if len(values) > 1:
                    # ITI TF-3 §4.2.3.1.4: authorPerson has cardinality 0..1.
                    self.finding(f"{owner}: authorPerson has {len(values)} values {list(values)}", location)
                author.person = values[0] if values else ""
            elif name in n.AUTHOR_MULTI_SLOTS:
                setattr(author, n.AUTHOR_MULTI_SLOTS[name], list(values))
            else:
                author.extra_slots.append(Slot(name, values, slot_type))
            seen.add(name)
        return author

    def identifiers(
        self,
        obj: object,
        elements: Iterable[etree._Element],
        *,
        kind: str,
        obj_id: str,
        location: str,
        schemes: Mapping[str, str],
    ) -> None:
        owner = f"{kind} {obj_id}"
        seen: set[str] = set()
        for e in elements:
            if not e.get("id"):
                self.finding(f"{owner}: an ExternalIdentifier has no id", location)
            registry_object = e.get("registryObject")
            if registry_object is None:
                self.finding(f"{owner}: an ExternalIdentifier has no registryObject", location)
            elif registry_object != obj_id:
                self.finding(
                    f"{owner}: an ExternalIdentifier inside it names another object, {registry_object}",
                    location,
                )
            scheme = e.get("identificationScheme", "")
            attribute = schemes.get(scheme)
            if attribute is None:
                self.finding(f"{owner}: unknown ExternalIdentifier scheme '{scheme}'", location)
                continue
            value = e.get("value", "")
            if scheme in seen:
                # ITI TF-3 Tables 4.2.3.2-1, 4.2.3.3-1, 4.2.3.4-1: uniqueId/patientId/sourceId are 1..1.
                self.finding(f"{owner}: more than one {attribute} ExternalIdentifier ('{value}')", location)
                continue
            seen.add(scheme)
            setattr(obj, attribute, value)

    # -- objects ----------------------------------------------------------------------------------

    def document_entry(
        self,
        el: etree._Element,
        loose_c: Mapping[str, list[etree._Element]],
        loose_i: Mapping[str, list[etree._Element]],
    ) -> None:
        kind = "DocumentEntry"
        obj_id = self.object_id(el, kind)
        wire = self.read(el, kind, obj_id)
        de = DocumentEntry(id=obj_id, object_type=el.get("objectType", ""), mime_type=el.get("mimeType", ""))
        self.base(de, el, wire)
        owner = f"{kind} {obj_id}"
        self.slots_into(de, wire.slots, n.DE_SINGLE_SLOTS, n.DE_MULTI_SLOTS, de.extra_slots, owner, obj_id)
        self.classifications(
            de,
            [*wire.classifications, *loose_c.get(obj_id, ())],
            kind=kind,
            obj_id=obj_id,
            location=obj_id,
            codes=n.DE_CODE_SCHEMES,
        )
        self.identifiers(
            de,
            [*wire.identifiers, *loose_i.get(obj_id, ())],
            kind=kind,
            obj_id=obj_id,
            location=obj_id,
            schemes=n.DE_ID_SCHEMES,
        )
        self.sub.document_entries.append(de)

    def package(
        self,
        el: etree._Element,
        loose_c: Mapping[str, list[etree._Element]],
        loose_i: Mapping[str, list[etree._Element]],
    ) -> None:
        obj_id = self.object_id(el, "RegistryPackage")
        wire = self.read(el, "RegistryPackage", obj_id)
        classifications = [*wire.classifications, *loose_c.get(obj_id, ())]
        kinds: list[str] = []
        for c in classifications:
            node = c.get("classificationNode")
            if node is None:
                continue
            if node in _NODE_KINDS:
                kinds.append(_NODE_KINDS[node])
            else:
                self.finding(f"RegistryPackage {obj_id}: unknown classificationNode '{node}'", obj_id)
        distinct = set(kinds)
        # ITI TF-3 §4.2.3.3 / §4.2.3.4: a RegistryPackage is an SS or an FD by its classification.
        if len(distinct) != 1:
            what = "neither a SubmissionSet nor a Folder" if not distinct else "both a SubmissionSet and a Folder"
            self.finding(f"RegistryPackage {obj_id} is {what} (classificationNode)", obj_id)
            return
        if len(kinds) > 1:
            self.finding(f"RegistryPackage {obj_id} has its {kinds[0]} classification more than once", obj_id)
        kind = kinds[0]
        owner = f"{kind} {obj_id}"
        obj: SubmissionSet | Folder
        if kind == "SubmissionSet":
            obj = SubmissionSet(id=obj_id)
            single, multi, codes, schemes = n.SS_SINGLE_SLOTS, n.SS_MULTI_SLOTS, n.SS_CODE_SCHEMES, n.SS_ID_SCHEMES
        else:
            obj = Folder(id=obj_id)
            single, multi, codes, schemes = n.FD_SINGLE_SLOTS, n.FD_MULTI_SLOTS, n.FD_CODE_SCHEMES, n.FD_ID_SCHEMES
        self.base(obj, el, wire)
        self.slots_into(obj, wire.slots, single, multi, obj.extra_slots, owner, obj_id)
        self.classifications(obj, classifications, kind=kind, obj_id=obj_id, location=obj_id, codes=codes)
        self.identifiers(
            obj, [*wire.identifiers, *loose_i.get(obj_id, ())], kind=kind, obj_id=obj_id, location=obj_id, schemes=schemes
        )
        if isinstance(obj, SubmissionSet):
            self.sub.submission_sets.append(obj)
        else:
            self.sub.folders.append(obj)

    def association(
        self,
        el: etree._Element,
        loose_c: Mapping[str, list[etree._Element]],
        loose_i: Mapping[str, list[etree._Element]],
    ) -> None:
        kind = "Association"
        obj_id = self.object_id(el, kind)
        wire = self.read(el, kind, obj_id)
        a = Association(
            id=obj_id,
            association_type=el.get("associationType", ""),
            source=el.get("sourceObject", ""),
            target=el.get("targetObject", ""),
        )
        self.base(a, el, wire)
        owner = f"{kind} {obj_id}"
        self.slots_into(
            a, wire.slots, n.ASSOCIATION_SINGLE_SLOTS, n.ASSOCIATION_MULTI_SLOTS, a.extra_slots, owner, obj_id
        )
        self.classifications(
            a,
            [*wire.classifications, *loose_c.get(obj_id, ())],
            kind=kind,
            obj_id=obj_id,
            location=obj_id,
            codes=n.ASSOCIATION_CODE_SCHEMES,
        )
        if wire.identifiers or loose_i.get(obj_id):
            self.finding(f"{owner}: an Association carries no ExternalIdentifier in XDS", obj_id)
        self.sub.associations.append(a)


def decode_registry_object_list(el: etree._Element) -> Decoded:
    """Decode a ``rim:RegistryObjectList`` (a query response's list, or a submission's)."""
    decoder = _Decoder()
    if el.tag != n.Q_REGISTRY_OBJECT_LIST:
        if _ns(el.tag) in n.EBRIM21_NAMESPACES:
            decoder.finding(f"{el.tag} is ebRIM 2.1 (XDS.a) metadata, which is not accepted")
        else:
            decoder.finding(f"expected rim:RegistryObjectList, found {el.tag}")
        return Decoded(decoder.sub, decoder.findings)
    decoder.decode_list(el)
    return Decoded(decoder.sub, decoder.findings)


def decode_submit_objects_request(el: etree._Element) -> Decoded:
    """Decode an ``lcm:SubmitObjectsRequest`` (the body of ITI-42, the metadata of ITI-41)."""
    if el.tag != n.Q_SUBMIT_OBJECTS_REQUEST:
        decoder = _Decoder()
        if _ns(el.tag) in n.EBRIM21_NAMESPACES:
            # ITI TF-3 §4.1: XDS.b is ebRIM 3.0; an XDS.a (ebRIM 2.1) submission is refused.
            decoder.finding(f"{el.tag} is an ebRIM 2.1 (XDS.a) submission, which is not accepted")
        else:
            decoder.finding(f"expected lcm:SubmitObjectsRequest, found {el.tag}")
        return Decoded(decoder.sub, decoder.findings)
    lists = [c for c in el if c.tag == n.Q_REGISTRY_OBJECT_LIST]
    if len(lists) != 1:
        decoder = _Decoder()
        decoder.finding(f"lcm:SubmitObjectsRequest has {len(lists)} rim:RegistryObjectList elements, not 1")
        if not lists:
            stray = [c.tag for c in el if isinstance(c.tag, str) and _ns(c.tag) in n.EBRIM21_NAMESPACES]
            if stray:
                decoder.finding(f"{stray[0]} is ebRIM 2.1 (XDS.a) metadata, which is not accepted")
            return Decoded(decoder.sub, decoder.findings)
        decoder.decode_list(lists[0])
        return Decoded(decoder.sub, decoder.findings)
    return decode_registry_object_list(lists[0])
