"""Affinity-domain code sets: the NIST ``codes.xml`` format, loaded into a :class:`CodeValidator`.

An XDS Affinity Domain fixes the vocabularies of the coded metadata attributes (ITI TF-1 §10.2.2;
ITI TF-3 §4.2.3.1.2). The NIST XDS Toolkit configures them in ``codes.xml``::

    <Codes>
      <CodeType name="classCode" classScheme="urn:uuid:41a5887f-...">
        <Code code="REPORTS" display="Reports" codingScheme="1.3.6.1.4.1.19376.1.2.6.1" system="..."/>
      </CodeType>
      <CodeType name="mimeType">  <!-- no classScheme; only code (and ext) -->
        <Code code="application/dicom" ext="dicom"/>
      </CodeType>
      <AssigningAuthority id="&amp;1.3.6.1.4.1.21367.13.20.1000&amp;ISO" display="IHERED"/>
    </Codes>

A registry loads the file once at start-up; :class:`AffinityDomainCodes` is immutable and answers
``contains`` with one set lookup (exact code and codingScheme).

Public API::

    load_code_set(path) -> AffinityDomainCodes
    parse_code_set(data: bytes) -> AffinityDomainCodes
    AffinityDomainCodes: contains(attribute, code), knows(attribute), mime_types(), codes(attribute),
                         display(attribute, code), class_scheme(attribute), attribute_for_scheme(uuid),
                         assigning_authorities
    CodeSetError(ValueError)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

from xds.metadata.model import Code
from xds.xml import XmlError, parse_xml

__all__ = [
    "MIME_TYPE",
    "AffinityDomainCodes",
    "AssigningAuthority",
    "CodeSetError",
    "CodeType",
    "load_code_set",
    "parse_code_set",
]

#: The CodeType name of the allowed mime types (no classification scheme).
MIME_TYPE: Final = "mimeType"


class CodeSetError(ValueError):
    """The code-set document is not a ``Codes`` document of the expected shape."""


@dataclass(frozen=True, slots=True)
class CodeType:
    """One ``CodeType``: its name, classification scheme (None for mimeType) and codes in file order."""

    name: str
    class_scheme: str | None
    codes: tuple[Code, ...]


@dataclass(frozen=True, slots=True)
class AssigningAuthority:
    """An ``AssigningAuthority`` of the affinity domain (``&OID&ISO`` and a display name)."""

    id: str
    display: str

    @property
    def oid(self) -> str:
        parts = self.id.split("&")
        return parts[1] if len(parts) > 1 else self.id


@dataclass(frozen=True, slots=True)
class AffinityDomainCodes:
    """The code sets of one affinity domain; implements :class:`xds.metadata.validation.CodeValidator`."""

    types: Mapping[str, CodeType]
    assigning_authorities: tuple[AssigningAuthority, ...] = ()
    _index: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict, repr=False, compare=False)
    _displays: Mapping[tuple[str, str, str], str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(
        cls, types: Mapping[str, CodeType], assigning_authorities: tuple[AssigningAuthority, ...] = ()
    ) -> AffinityDomainCodes:
        """Build the code sets and their lookup indexes."""
        index = {name: frozenset((c.code, c.scheme) for c in t.codes) for name, t in types.items()}
        displays = {(name, c.code, c.scheme): c.display for name, t in types.items() for c in t.codes}
        return cls(
            types=MappingProxyType(dict(types)),
            assigning_authorities=assigning_authorities,
            _index=MappingProxyType(index),
            _displays=MappingProxyType(displays),
        )

    # -- CodeValidator ---------------------------------------------------------------------------

    def contains(self, attribute: str, code: Code) -> bool:
        """True when ``code`` is in ``attribute``'s set: exact code and codingScheme."""
        return (code.code, code.scheme) in self._index.get(attribute, frozenset())

    def knows(self, attribute: str) -> bool:
        """True when the domain configures codes for ``attribute``."""
        return attribute in self._index

    def mime_types(self) -> frozenset[str]:
        """The allowed mimeTypes (empty when the domain does not list them)."""
        return frozenset(code for code, _ in self._index.get(MIME_TYPE, frozenset()))

    # -- lookups -----------------------------------------------------------------------------------

    def codes(self, attribute: str) -> tuple[Code, ...]:
        """The codes of ``attribute`` in file order (with display names)."""
        t = self.types.get(attribute)
        return t.codes if t is not None else ()

    def display(self, attribute: str, code: Code) -> str | None:
        """The configured display name of ``code``, or None when it is not configured."""
        return self._displays.get((attribute, code.code, code.scheme))

    def class_scheme(self, attribute: str) -> str | None:
        t = self.types.get(attribute)
        return t.class_scheme if t is not None else None

    def attribute_for_scheme(self, class_scheme: str) -> str | None:
        """The CodeType name configured for a classification scheme UUID."""
        for name, t in self.types.items():
            if t.class_scheme == class_scheme:
                return name
        return None


def parse_code_set(data: bytes) -> AffinityDomainCodes:
    """Read a ``codes.xml`` document (bytes) with the project's hardened parser."""
    try:
        root = parse_xml(data)
    except XmlError as exc:
        raise CodeSetError(f"code set is not acceptable XML: {exc}") from None
    if _local(root.tag) != "Codes":
        raise CodeSetError(f"code set root is <{_local(root.tag)}>, not <Codes>")
    types: dict[str, CodeType] = {}
    authorities: list[AssigningAuthority] = []
    for el in root:
        if not isinstance(el.tag, str):
            continue
        local = _local(el.tag)
        if local == "CodeType":
            name = el.get("name")
            if not name:
                raise CodeSetError(f"CodeType without a name (line {el.sourceline})")
            codes: list[Code] = []
            for c in el:
                if not isinstance(c.tag, str) or _local(c.tag) != "Code":
                    continue
                value = c.get("code")
                if value is None:
                    raise CodeSetError(f"Code without a code attribute in CodeType {name} (line {c.sourceline})")
                codes.append(Code(value, c.get("codingScheme", ""), c.get("display", "")))
            if name in types:
                # A repeated CodeType adds its codes to the first.
                first = types[name]
                types[name] = CodeType(name, first.class_scheme, first.codes + tuple(codes))
            else:
                types[name] = CodeType(name, el.get("classScheme"), tuple(codes))
        elif local == "AssigningAuthority":
            authorities.append(AssigningAuthority(el.get("id", ""), el.get("display", "")))
    return AffinityDomainCodes.of(types, tuple(authorities))


def load_code_set(path: str | os.PathLike[str]) -> AffinityDomainCodes:
    """Load a ``codes.xml`` file (the file is read here; parsing is :func:`parse_code_set`)."""
    return parse_code_set(Path(path).read_bytes())


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
