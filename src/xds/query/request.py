"""ITI-18 requests: an ``query:AdhocQueryRequest`` read into a typed, validated :class:`StoredQuery`,
and built from typed values for clients.

Reading (:func:`parse_query`) checks everything ITI TF-2a §3.18.4.1.2.3 asks of a registry and
collects every finding before raising one :class:`~xds.errors.XdsError`:

* unknown ``rim:AdhocQuery/@id``                                  -> ``XDSUnknownStoredQuery``
* a required parameter missing; neither of an "X xor Y" pair;
  none of an "at least one of" group                              -> ``XDSStoredQueryMissingParam``
* a single-valued parameter with several values (a list, several
  ``rim:Value``, or a repeated Slot); a repeated Slot of a parameter
  that is not AND/OR; both of an "X xor Y" pair                   -> ``XDSStoredQueryParamNumber``
* a malformed value (syntax, a code without its scheme, a status
  that is not a full URN, a bad time or objectType, a bad
  ``returnType``)                                                  -> ``XDSRegistryError``

The TF has no error code for a malformed parameter value; ``XDSRegistryError`` is what the NIST
registry simulator answers for stored-query parameter problems (xds-notes §2.1, where even a
missing parameter gets XDSRegistryError from it; its code parser raises an internal error for a
code that is not ``CODE^^SCHEME``). ``XDSRegistryMetadataError`` is reserved for submitted
metadata. Each error's codeContext names the parameter and its location is the parameter name.

Parameters the query does not define are ignored (NIST 11897/practicesetting_scheme) and listed
in :attr:`StoredQuery.ignored_params`; ``$homeCommunityId`` is accepted by every query (NIST
11901/homeCommunityId).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NamedTuple, TypeAlias

from lxml import etree

from xds.errors import ErrorCode, RegistryError, XdsError
from xds.query.definitions import (
    HOME_COMMUNITY_ID,
    DEFINITIONS,
    Param,
    QueryDefinition,
    QueryParam,
    ValueKind,
    find_definition,
)
from xds.query.grammar import (
    CodeValue,
    ParseError,
    check_dtm,
    encode_values,
    parse_code,
    parse_values,
    quote,
)
from xds.vocabulary import NS_QUERY, NS_RIM, ObjectType, Status

__all__ = [
    "ParamValue",
    "ReturnType",
    "StoredQuery",
    "TimeRange",
    "build_adhoc_query",
    "parse_query",
]

#: The typed value of one parameter (see :class:`StoredQuery`).
ParamValue: TypeAlias = (
    str
    | tuple[str, ...]
    | tuple[CodeValue, ...]
    | tuple[tuple[str, ...], ...]
    | tuple[tuple[CodeValue, ...], ...]
)
_Item: TypeAlias = str | CodeValue


class ReturnType:
    """The two return types of ITI-18 (ITI TF-2a §3.18.4.1.2)."""

    LEAF_CLASS: Final = "LeafClass"
    OBJECT_REF: Final = "ObjectRef"


# ebRS 3.0 query.xsd ResponseOptionType/@returnType; its default is "RegistryObject". ITI-18 only
# defines LeafClass and ObjectRef; the two other ebRS values both ask for whole objects, so they
# are answered as LeafClass (the NIST registry treats LeafClassWithRepositoryItem the same way).
_RETURN_TYPES: Final = MappingProxyType(
    {
        "LeafClass": ReturnType.LEAF_CLASS,
        "ObjectRef": ReturnType.OBJECT_REF,
        "RegistryObject": ReturnType.LEAF_CLASS,
        "LeafClassWithRepositoryItem": ReturnType.LEAF_CLASS,
    }
)
_EBRS_DEFAULT_RETURN_TYPE: Final = "RegistryObject"

_Q_REQUEST: Final = f"{{{NS_QUERY}}}AdhocQueryRequest"
_Q_RESPONSE_OPTION: Final = f"{{{NS_QUERY}}}ResponseOption"
_RIM_ADHOC_QUERY: Final = f"{{{NS_RIM}}}AdhocQuery"
_RIM_SLOT: Final = f"{{{NS_RIM}}}Slot"
_RIM_VALUE_LIST: Final = f"{{{NS_RIM}}}ValueList"
_RIM_VALUE: Final = f"{{{NS_RIM}}}Value"
_SLOT_VALUES: Final = f"{_RIM_VALUE_LIST}/{_RIM_VALUE}"

_HOME_PARAM: Final = Param(HOME_COMMUNITY_ID, ValueKind.STRING, attribute="homeCommunityId")
_STATUS_MARK: Final = ":StatusType:"


class TimeRange(NamedTuple):
    """The bounds of a time filter: ``from_ <= value < to`` (ITI TF-2a §3.18.4.1.2.3.7.1).

    ``From`` is inclusive and ``To`` exclusive (NIST 11897/creationtime_right_edge). Either bound
    may be None (open). Values are DTM strings, compared as strings the way the NIST toolkit does.
    """

    from_: str | None = None
    to: str | None = None

    @property
    def is_open(self) -> bool:
        """True when neither bound is set (no filtering at all)."""
        return self.from_ is None and self.to is None

    def contains(self, value: str | None) -> bool:
        """Does an object whose attribute is ``value`` pass this filter?

        An object without the attribute (None) does not match a filter with any bound set.
        """
        if self.is_open:
            return True
        if value is None:
            return False
        if self.from_ is not None and value < self.from_:
            return False
        return not (self.to is not None and value >= self.to)


@dataclass(frozen=True, kw_only=True)
class StoredQuery:
    """A validated stored query, ready for a registry's executor.

    ``params`` maps each parameter (Slot) name that was sent to its typed value:

    * a single-valued parameter: ``str`` (strings, patient ids, DTM times, numbers);
    * a multi-valued parameter: ``tuple[str, ...]``, or ``tuple[CodeValue, ...]`` for codes
      (the values are OR'ed);
    * an AND/OR parameter (EventCodeList, ConfidentialityCode, FolderCodeList, ReferenceIdList):
      ``tuple[tuple[CodeValue, ...], ...]`` (or of ``str``), one OR-list per Slot, the OR-lists
      AND'ed; always this shape, even for one Slot.

    ``$homeCommunityId`` is not in ``params``: it is :attr:`home_community_id` (taken from the
    parameter, else from ``rim:AdhocQuery/@home``). Parameters the query does not define are
    listed in :attr:`ignored_params`. :attr:`document_entry_types` is the effective
    ``$XDSDocumentEntryType``: the values sent, else Stable only for queries that define the
    parameter (issue #182), else both types (no filter).

    The accessors raise ``KeyError`` for a name that is not a parameter of this query, so a typo
    in an executor fails loudly instead of silently matching nothing.
    """

    definition: QueryDefinition
    return_type: str = ReturnType.LEAF_CLASS
    return_composed_objects: bool = False
    home_community_id: str | None = None
    params: Mapping[str, ParamValue] = field(default_factory=lambda: MappingProxyType({}))
    document_entry_types: tuple[str, ...] = (ObjectType.STABLE_DOCUMENT_ENTRY,)
    ignored_params: tuple[str, ...] = ()

    # -- identity --------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The query name, e.g. ``FindDocuments``."""
        return self.definition.name

    @property
    def query_id(self) -> str:
        """The query id, ``urn:uuid:…``."""
        return self.definition.id

    @property
    def is_leaf_class(self) -> bool:
        return self.return_type == ReturnType.LEAF_CLASS

    # -- typed accessors -------------------------------------------------------------------------

    def param(self, name: str) -> Param:
        """The definition of parameter ``name`` of this query (KeyError if it has none)."""
        try:
            return self.definition.params[name]
        except KeyError:
            raise KeyError(f"{name} is not a parameter of {self.definition.name}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.params

    def get(self, name: str, default: ParamValue | None = None) -> ParamValue | None:
        """The typed value of ``name`` as stored in :attr:`params`, or ``default``."""
        self.param(name)
        return self.params.get(name, default)

    def string(self, name: str) -> str | None:
        """A single-valued parameter (string, patient id, time, number), or None if absent."""
        param = self.param(name)
        if param.multi:
            raise TypeError(f"{name} is multi-valued; use strings()")
        value = self.params.get(name)
        return value if isinstance(value, str) else None

    def strings(self, name: str) -> tuple[str, ...]:
        """The values of a string-like parameter as an OR-list (``()`` if absent).

        A single-valued parameter gives a tuple of one.
        """
        param = self.param(name)
        if param.kind is ValueKind.CODE:
            raise TypeError(f"{name} holds codes; use codes() or and_codes()")
        if param.and_or:
            raise TypeError(f"{name} is AND/OR; use and_strings()")
        value = self.params.get(name)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        return tuple(v for v in value if isinstance(v, str))

    def and_strings(self, name: str) -> tuple[tuple[str, ...], ...]:
        """An AND/OR string parameter ($XDSDocumentEntryReferenceIdList): AND of OR-lists."""
        param = self.param(name)
        if not param.and_or or param.kind is ValueKind.CODE:
            raise TypeError(f"{name} is not an AND/OR string parameter")
        return self._and_groups(name)  # type: ignore[return-value]

    def codes(self, name: str) -> tuple[CodeValue, ...]:
        """A plain code-list parameter: the codes, OR'ed (``()`` if absent).

        AND/OR parameters raise TypeError: flattening them would change their meaning.
        """
        param = self.param(name)
        if param.kind is not ValueKind.CODE:
            raise TypeError(f"{name} does not hold codes")
        if param.and_or:
            raise TypeError(f"{name} is AND/OR; use and_codes()")
        value = self.params.get(name, ())
        return tuple(v for v in value if isinstance(v, CodeValue))

    def and_codes(self, name: str) -> tuple[tuple[CodeValue, ...], ...]:
        """A code parameter as AND of OR-lists (``()`` if absent).

        For a plain code list this is one OR-list, so an executor may treat every code
        parameter alike.
        """
        param = self.param(name)
        if param.kind is not ValueKind.CODE:
            raise TypeError(f"{name} does not hold codes")
        if not param.and_or:
            codes = self.codes(name)
            return (codes,) if codes else ()
        return self._and_groups(name)  # type: ignore[return-value]

    def _and_groups(self, name: str) -> tuple[tuple[_Item, ...], ...]:
        value = self.params.get(name, ())
        return tuple(tuple(group) for group in value if isinstance(group, tuple))

    def time_range(self, base: str) -> TimeRange:
        """The ``{base}From`` / ``{base}To`` pair, e.g. ``time_range("$XDSDocumentEntryCreationTime")``."""
        low, high = self.param(base + "From"), self.param(base + "To")
        return TimeRange(self.string(low.name), self.string(high.name))

    def statuses(self, name: str) -> tuple[str, ...]:
        """A status parameter, e.g. ``statuses("$XDSDocumentEntryStatus")``: full status URNs."""
        if self.param(name).kind is not ValueKind.STATUS:
            raise TypeError(f"{name} is not a status parameter")
        return self.strings(name)

    def object_types(self) -> tuple[str, ...]:
        """The DocumentEntry objectTypes to return (see :attr:`document_entry_types`)."""
        return self.document_entry_types

    def patient_ids(self) -> tuple[str, ...]:
        """Every patient id the query names, across its patient-id parameters."""
        ids: list[str] = []
        for name, param in self.definition.params.items():
            if param.kind is ValueKind.PATIENT_ID:
                ids.extend(self.strings(name))
        return tuple(ids)


# -- reading -------------------------------------------------------------------------------------


def _error(code: ErrorCode, context: str, location: str = "") -> RegistryError:
    return RegistryError(code, context, location)


def _response_option(option: etree._Element | None, errors: list[RegistryError]) -> tuple[str, bool]:
    """``returnType`` and ``returnComposedObjects`` of query:ResponseOption (ebRS 3.0 query.xsd)."""
    if option is None:
        return _RETURN_TYPES[_EBRS_DEFAULT_RETURN_TYPE], False
    raw_type = (option.get("returnType") or _EBRS_DEFAULT_RETURN_TYPE).strip()
    return_type = _RETURN_TYPES.get(raw_type)
    if return_type is None:
        errors.append(
            _error(
                ErrorCode.REGISTRY_ERROR,
                f"ResponseOption returnType {raw_type!r} is not one of LeafClass, ObjectRef "
                "(ITI TF-2a §3.18.4.1.2)",
                "returnType",
            )
        )
        return_type = ReturnType.LEAF_CLASS
    raw_composed = (option.get("returnComposedObjects") or "false").strip()
    if raw_composed not in ("true", "false", "1", "0"):
        errors.append(
            _error(
                ErrorCode.REGISTRY_ERROR,
                f"ResponseOption returnComposedObjects {raw_composed!r} is not a boolean",
                "returnComposedObjects",
            )
        )
    return return_type, raw_composed in ("true", "1")


def _collect_slots(adhoc: etree._Element, errors: list[RegistryError]) -> dict[str, list[list[str]]]:
    """Slot name -> the ``rim:Value`` texts of each Slot of that name, in document order."""
    slots: dict[str, list[list[str]]] = {}
    for slot in adhoc.iterfind(_RIM_SLOT):
        name = (slot.get("name") or "").strip()
        if not name:
            errors.append(_error(ErrorCode.REGISTRY_ERROR, "a Slot of the AdhocQuery has no name"))
            continue
        # itertext(): the whole text of a Value, even when a comment splits it.
        texts = ["".join(value.itertext()) for value in slot.iterfind(_SLOT_VALUES)]
        slots.setdefault(name, []).append(texts)
    return slots


def _check_patient_id(text: str) -> str:
    # ITI TF-3 §4.2.3.1.7 (CX data type): ID^^^&OID&ISO; the ID and the assigning authority are
    # required.
    parts = text.split("^")
    if len(parts) < 4 or not parts[0] or not parts[3]:
        raise ParseError(f"patient id {text!r} is not a CX with an assigning authority (ID^^^&OID&ISO)")
    return text


_KNOWN_STATUSES = frozenset((Status.APPROVED, Status.DEPRECATED, Status.SUBMITTED))


def _check_status(text: str) -> str:
    # xds-notes §3.6: queries take full status URNs; NIST rejects ('Approved').
    if not (text.startswith("urn:") and _STATUS_MARK in text and not text.endswith(":")):
        raise ParseError(
            f"status {text!r} is not a full status URN "
            "(e.g. urn:oasis:names:tc:ebxml-regrep:StatusType:Approved)"
        )
    return text


def _check_object_type(text: str) -> str:
    # ITI TF-3 §4.2.5.2: the two DocumentEntry objectTypes (Stable, On-Demand).
    if text not in ObjectType.DOCUMENT_ENTRY_TYPES:
        raise ParseError(
            f"objectType {text!r} is not a DocumentEntry type "
            f"({ObjectType.STABLE_DOCUMENT_ENTRY} or {ObjectType.ON_DEMAND_DOCUMENT_ENTRY})"
        )
    return text


def _convert(param: Param, text: str, quoted: bool) -> _Item:
    """Turn one parsed value into its typed form, or raise ParseError."""
    kind = param.kind
    if kind is ValueKind.TIME:
        # Times are unquoted (ITI TF-2a §3.18.4.1.2.3.5); a quoted DTM is accepted as well.
        return check_dtm(text)
    if kind is ValueKind.NUMBER:
        if not text.isdigit() or not text.isascii():
            raise ParseError(f"{text!r} is not a number")
        return text
    if not quoted:
        raise ParseError(f"{text} must be a quoted string ('…')")
    if not text:
        raise ParseError("the value is an empty string")
    if kind is ValueKind.CODE:
        return parse_code(text)
    if kind is ValueKind.PATIENT_ID:
        return _check_patient_id(text)
    if kind is ValueKind.STATUS:
        return _check_status(text)
    if kind is ValueKind.OBJECT_TYPE:
        return _check_object_type(text)
    return text


def _read_param(
    param: Param, slots: list[list[str]], errors: list[RegistryError]
) -> ParamValue | None:
    """Read the Slots of one parameter; append findings to ``errors``; None if unusable."""
    name = param.name
    if len(slots) > 1 and not param.and_or:
        # ITI TF-2a §3.18.4.1.2.3.5: only AND/OR parameters may repeat their Slot.
        errors.append(
            _error(
                ErrorCode.STORED_QUERY_PARAM_NUMBER,
                f"{name}: the Slot appears {len(slots)} times; only AND/OR parameters may repeat",
                name,
            )
        )
        return None
    groups: list[tuple[_Item, ...]] = []
    failed = False
    for texts in slots:
        try:
            atoms = [atom for value in parse_values(texts) for atom in value]
        except ParseError as exc:
            errors.append(_error(ErrorCode.REGISTRY_ERROR, f"{name}: {exc}", name))
            failed = True
            continue
        if not atoms:
            continue  # an empty Slot says nothing
        if not param.multi and len(atoms) > 1:
            errors.append(
                _error(
                    ErrorCode.STORED_QUERY_PARAM_NUMBER,
                    f"{name} takes a single value, got {len(atoms)}",
                    name,
                )
            )
            failed = True
            continue
        items: list[_Item] = []
        for atom in atoms:
            try:
                items.append(_convert(param, atom.text, atom.quoted))
            except ParseError as exc:
                errors.append(_error(ErrorCode.REGISTRY_ERROR, f"{name}: {exc}", name))
                failed = True
        groups.append(tuple(items))
    if failed or not groups:
        return None
    if param.and_or:
        return tuple(groups)  # type: ignore[return-value]
    if param.multi:
        return groups[0]  # type: ignore[return-value]
    return str(groups[0][0])


def _has_values(slots: list[list[str]]) -> bool:
    return any(text.strip() for texts in slots for text in texts)


def _check_rules(
    definition: QueryDefinition, present: set[str], errors: list[RegistryError]
) -> None:
    """Required parameters, "X xor Y" and "at least one of" (ITI TF-2a §3.18.4.1.2.3.7)."""
    where = f"{definition.name} ({definition.section})"
    for name in definition.required:
        if name not in present:
            errors.append(
                _error(
                    ErrorCode.STORED_QUERY_MISSING_PARAM,
                    f"{name} is required by {where}",
                    name,
                )
            )
    for group in definition.exactly_one_of:
        sent = [name for name in group if name in present]
        if not sent:
            errors.append(
                _error(
                    ErrorCode.STORED_QUERY_MISSING_PARAM,
                    f"one of {', '.join(group)} is required by {where}",
                    group[0],
                )
            )
        elif len(sent) > 1:
            errors.append(
                _error(
                    ErrorCode.STORED_QUERY_PARAM_NUMBER,
                    f"{' and '.join(sent)} are mutually exclusive in {where}",
                    sent[0],
                )
            )
    for group in definition.at_least_one_of:
        if not any(name in present for name in group):
            errors.append(
                _error(
                    ErrorCode.STORED_QUERY_MISSING_PARAM,
                    f"at least one of {', '.join(group)} is required by {where}",
                    group[0],
                )
            )


def parse_query(element: etree._Element) -> StoredQuery:
    """Read and validate a stored query.

    Parameters
    ----------
    element:
        A ``query:AdhocQueryRequest`` (or a bare ``rim:AdhocQuery``, read with the ebRS default
        response option), parsed with :func:`xds.xml.parse_xml`.

    Returns
    -------
    The typed query.

    Raises
    ------
    XdsError
        With one RegistryError per finding (see the module docstring for the codes).
    """
    errors: list[RegistryError] = []
    if element.tag == _Q_REQUEST:
        return_type, composed = _response_option(element.find(_Q_RESPONSE_OPTION), errors)
        adhoc = element.find(_RIM_ADHOC_QUERY)
        if adhoc is None:
            errors.append(_error(ErrorCode.REGISTRY_ERROR, "AdhocQueryRequest has no rim:AdhocQuery"))
            raise XdsError(*errors)
    elif element.tag == _RIM_ADHOC_QUERY:
        adhoc = element
        return_type, composed = _response_option(None, errors)
    else:
        raise XdsError.of(
            ErrorCode.REGISTRY_ERROR, f"expected query:AdhocQueryRequest, found {element.tag}"
        )

    query_id = (adhoc.get("id") or "").strip()
    definition = DEFINITIONS.get(query_id.lower())
    if definition is None:
        # ITI TF-2a §3.18.4.1.3: XDSUnknownStoredQuery.
        errors.append(
            _error(
                ErrorCode.UNKNOWN_STORED_QUERY,
                f"AdhocQuery id {query_id!r} is not a known stored query",
                query_id,
            )
        )
        raise XdsError(*errors)

    slots = _collect_slots(adhoc, errors)
    params: dict[str, ParamValue] = {}
    present: set[str] = set()
    ignored: list[str] = []
    home = (adhoc.get("home") or "").strip() or None
    for name, slot_values in slots.items():
        param = definition.params.get(name)
        if param is None and name == HOME_COMMUNITY_ID:
            param = _HOME_PARAM
        if param is None:
            ignored.append(name)  # NIST 11897/practicesetting_scheme: ignored, not an error
            continue
        if not _has_values(slot_values):
            continue
        present.add(name)
        value = _read_param(param, slot_values, errors)
        if value is None:
            continue
        if param.kind is ValueKind.STATUS and not set(value) & _KNOWN_STATUSES:
            # ITI TF-2a §3.18.4.1.2.3.6 (NIST 11897/status_invalid): without one valid status
            # value, the required status parameter is missing.
            errors.append(
                _error(
                    ErrorCode.STORED_QUERY_MISSING_PARAM,
                    f"{name}: none of {', '.join(map(str, value))} is a known availabilityStatus",
                    name,
                )
            )
            continue
        if name == HOME_COMMUNITY_ID:
            home = str(value)
        else:
            params[name] = value
    _check_rules(definition, present, errors)
    if errors:
        raise XdsError(*errors)

    if QueryParam.DE_TYPE in definition.params:
        # xds-notes §6.1, NIST issue #182: without $XDSDocumentEntryType, Stable only.
        sent_types = params.get(QueryParam.DE_TYPE)
        entry_types = sent_types if sent_types else (ObjectType.STABLE_DOCUMENT_ENTRY,)
    else:
        entry_types = ObjectType.DOCUMENT_ENTRY_TYPES
    return StoredQuery(
        definition=definition,
        return_type=return_type,
        return_composed_objects=composed,
        home_community_id=home,
        params=MappingProxyType(params),
        document_entry_types=tuple(str(t) for t in entry_types),
        ignored_params=tuple(ignored),
    )


# -- building ------------------------------------------------------------------------------------


def _encode_item(param: Param | None, item: object) -> str:
    """One value as query syntax: quoted strings and codes, bare digits for times and numbers."""
    kind = param.kind if param is not None else None
    if kind in (ValueKind.TIME, ValueKind.NUMBER):
        text = str(item)
        if not text.isdigit() or not text.isascii():
            raise ValueError(f"{text!r} is not a number")
        return text
    if isinstance(item, CodeValue):
        return quote(str(item))
    code, scheme = getattr(item, "code", None), getattr(item, "scheme", None)
    if isinstance(code, str) and isinstance(scheme, str):  # e.g. xds.metadata.Code
        return quote(str(CodeValue(code, scheme)))
    if isinstance(item, bool) or not isinstance(item, str | int):
        raise TypeError(f"cannot encode {item!r} as a query parameter value")
    if isinstance(item, int):
        return str(item) if param is None else quote(str(item))
    return quote(item)


def _is_sequence(value: object) -> bool:
    return isinstance(value, Sequence | frozenset | set) and not isinstance(value, str | bytes)


def _encode_param(name: str, param: Param | None, value: object) -> list[list[str]]:
    """The Slots (each a list of ``rim:Value`` texts) that carry ``value``."""
    if param is None:  # not defined for this query: written as given
        if _is_sequence(value):
            items = list(value)  # type: ignore[call-overload]
            if items and all(_is_sequence(group) for group in items):
                return [encode_values([_encode_item(None, i) for i in group], as_list=True) for group in items]
            return [encode_values([_encode_item(None, i) for i in items], as_list=True)]
        return [encode_values([_encode_item(None, value)], as_list=False)]
    if param.and_or:
        groups = list(value) if _is_sequence(value) else [value]  # type: ignore[call-overload]
        if groups and not all(_is_sequence(g) for g in groups):
            groups = [groups]  # a flat list: one OR-list
        return [
            encode_values([_encode_item(param, item) for item in group], as_list=True)
            for group in groups
        ]
    if param.multi:
        items = list(value) if _is_sequence(value) else [value]  # type: ignore[call-overload]
        return [encode_values([_encode_item(param, item) for item in items], as_list=True)]
    if _is_sequence(value):
        items = list(value)  # type: ignore[call-overload]
        if len(items) != 1:
            raise ValueError(f"{name} takes a single value, got {len(items)}")
        value = items[0]
    return [encode_values([_encode_item(param, value)], as_list=False)]


def build_adhoc_query(
    query_id: str,
    params: Mapping[str, object],
    *,
    return_type: str = ReturnType.LEAF_CLASS,
    return_composed_objects: bool = True,
    home_community_id: str | None = None,
    validate: bool = True,
) -> etree._Element:
    """Build a ``query:AdhocQueryRequest`` for a stored query (ITI TF-2a §3.18.4.1.2).

    Parameters
    ----------
    query_id:
        The query id (``urn:uuid:…``) or name (``"FindDocuments"``).
    params:
        Parameter name -> value, in the shapes :class:`StoredQuery` uses: a ``str`` (or ``int``
        for times) for single values; an iterable for lists; for codes :class:`CodeValue` (or any
        object with ``code`` and ``scheme``, or a ``"CODE^^SCHEME"`` string); for AND/OR
        parameters an iterable of OR-lists, written as one Slot each (a flat list is one
        OR-list). Strings are quoted with ``''`` escapes, times written unquoted, long lists
        spread over several ``rim:Value`` elements of at most 256 characters. A value of None
        or an empty list writes no Slot.
    return_type:
        ``"LeafClass"`` or ``"ObjectRef"``.
    return_composed_objects:
        ``ResponseOption/@returnComposedObjects``.
    home_community_id:
        Written as ``rim:AdhocQuery/@home`` and, for queries that define it, as the
        ``$homeCommunityId`` parameter.
    validate:
        Read the result back with :func:`parse_query` and raise its XdsError if the request is
        not valid. Turn off only to send deliberately invalid requests (conformance tests).

    Raises
    ------
    XdsError
        ``validate`` found the request invalid, or the query is unknown.
    TypeError, ValueError
        A value cannot be encoded.
    """
    definition = find_definition(query_id)
    if definition is None and validate:
        raise XdsError.of(ErrorCode.UNKNOWN_STORED_QUERY, f"{query_id!r} is not a known stored query")
    if return_type not in (ReturnType.LEAF_CLASS, ReturnType.OBJECT_REF) and validate:
        raise ValueError(f"return_type must be LeafClass or ObjectRef, not {return_type!r}")
    values = dict(params)
    if HOME_COMMUNITY_ID in values:
        given = values.pop(HOME_COMMUNITY_ID)
        if home_community_id is not None and given != home_community_id:
            raise ValueError("two different home community ids given")
        home_community_id = str(given)

    root = etree.Element(_Q_REQUEST, nsmap={"query": NS_QUERY, "rim": NS_RIM})
    etree.SubElement(
        root,
        _Q_RESPONSE_OPTION,
        returnType=return_type,
        returnComposedObjects="true" if return_composed_objects else "false",
    )
    adhoc = etree.SubElement(root, _RIM_ADHOC_QUERY, id=definition.id if definition else query_id)
    if home_community_id is not None:
        adhoc.set("home", home_community_id)
        if definition is not None and HOME_COMMUNITY_ID in definition.params:
            values[HOME_COMMUNITY_ID] = home_community_id
    for name, value in values.items():
        if value is None or (_is_sequence(value) and not value):  # type: ignore[arg-type]
            continue  # nothing to filter on: no Slot
        param = definition.params.get(name) if definition else None
        if param is None and name == HOME_COMMUNITY_ID:
            param = _HOME_PARAM
        for texts in _encode_param(name, param, value):
            _add_slot(adhoc, name, texts)
    if validate:
        parse_query(root)
    return root


def _add_slot(parent: etree._Element, name: str, texts: Iterable[str]) -> None:
    slot = etree.SubElement(parent, _RIM_SLOT, name=name)
    value_list = etree.SubElement(slot, _RIM_VALUE_LIST)
    for text in texts:
        etree.SubElement(value_list, _RIM_VALUE).text = text
