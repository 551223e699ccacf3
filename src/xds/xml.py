"""The one hardened XML parser of the project, and a serializer.

Every byte string that arrives from the network goes through :func:`parse_xml`. It refuses
what an attacker could use against an XML processor:

* any document type declaration (``<!DOCTYPE``), internal or external, rejected outright:
  a SOAP message must not contain one (SOAP 1.2 Part 1 §5), and without a DTD there are no
  entity declarations, hence no entity expansion ("billion laughs") and no external entity
  (XXE, ``file:///etc/passwd``);
* entity references of any kind (undefined without a DTD, hence not well-formed);
* network access while parsing (``no_network``), DTD loading, default attributes;
* documents nested deeper than libxml2's limit of 256 levels (``huge_tree`` off), or than
  ``max_depth`` when given;
* anything not well-formed.

All of these raise :class:`XmlError`, a :class:`ValueError`, so callers turn one exception type
into a SOAP ``env:Sender`` fault. Comments and processing instructions are kept (SOAP 1.2 tells a
receiver to ignore processing instructions, not to fail on them).

Public API::

    parse_xml(data: bytes, *, max_depth: int | None = None) -> etree._Element
    to_bytes(element, *, xml_declaration: bool = False) -> bytes
    qname(namespace: str, local: str) -> str          # Clark notation "{ns}local"
    XmlError(ValueError)
"""

from __future__ import annotations

import functools
from typing import Final

from lxml import etree

__all__ = ["XmlError", "parse_xml", "qname", "to_bytes"]

#: libxml2's own nesting limit without XML_PARSE_HUGE.
LIBXML2_MAX_DEPTH: Final = 256

_UTF8_BOM: Final = b"\xef\xbb\xbf"
_XML_WHITESPACE: Final = b" \t\r\n"


class XmlError(ValueError):
    """The bytes are not an acceptable XML document (malformed, DTD, entities, too deep)."""


def _new_parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers must not be shared between threads, and building one
    # costs about a microsecond.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        collect_ids=False,
        remove_comments=False,
        remove_pis=False,
        strip_cdata=True,
    )


def _prolog_has_doctype(data: bytes) -> bool:
    """True when the prolog (before the root element) holds a ``<!DOCTYPE``.

    Scans only the XML declaration, comments, processing instructions and white space that may
    precede a document type declaration (XML 1.0 §2.8), so it costs nothing on large documents
    and never looks inside content (where the string may legally appear in CDATA or text).
    Encodings that are not ASCII-compatible are caught after parsing instead.
    """
    i = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    n = len(data)
    while i < n:
        while i < n and data[i] in _XML_WHITESPACE:
            i += 1
        if data.startswith(b"<?", i):
            end = data.find(b"?>", i + 2)
            if end < 0:
                return False
            i = end + 2
        elif data.startswith(b"<!--", i):
            end = data.find(b"-->", i + 4)
            if end < 0:
                return False
            i = end + 3
        else:
            return data.startswith(b"<!DOCTYPE", i)
    return False


@functools.lru_cache(maxsize=16)
def _deeper_than(max_depth: int) -> etree.XPath:
    # An element exists at depth max_depth + 1: evaluated in C, a fraction of the parse cost.
    return etree.XPath("boolean(/" + "/*" * (max_depth + 1) + ")")


def parse_xml(data: bytes, *, max_depth: int | None = None) -> etree._Element:
    """Parse untrusted bytes into an element tree, refusing DTDs, entities and deep nesting.

    Parameters
    ----------
    data:
        The document, with its encoding declared or UTF-8/UTF-16 with a byte order mark.
    max_depth:
        Reject documents whose elements nest deeper than this (the root is depth 1). ``None``
        keeps libxml2's own limit of 256.

    Returns
    -------
    The root element.

    Raises
    ------
    XmlError
        Not well-formed, a document type declaration, an entity reference, too deep, or empty.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_xml takes bytes")
    raw = bytes(data)
    if not raw.strip():
        raise XmlError("empty document")
    # XML 1.0 §2.8; SOAP 1.2 Part 1 §5: a SOAP message MUST NOT contain a document type
    # declaration. Rejected before libxml2 sees the entity declarations it would contain.
    if _prolog_has_doctype(raw):
        raise XmlError("document type declarations (DTD) are not accepted")
    try:
        root = etree.fromstring(raw, _new_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"not well-formed XML: {exc}") from None
    if root is None:
        raise XmlError("no root element")
    docinfo = root.getroottree().docinfo
    # Second line of defence for encodings the prolog scan cannot read (UTF-16, EBCDIC...):
    # resolve_entities=False means nothing was expanded while parsing.
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise XmlError("document type declarations (DTD) are not accepted")
    if max_depth is not None:
        if max_depth < 1:
            raise ValueError("max_depth must be at least 1")
        if max_depth < LIBXML2_MAX_DEPTH and _deeper_than(max_depth)(root):
            raise XmlError(f"elements nested deeper than {max_depth} levels")
    return root


def to_bytes(element: etree._Element, *, xml_declaration: bool = False) -> bytes:
    """Serialize an element (and its subtree) as UTF-8 bytes."""
    data: bytes = etree.tostring(element, encoding="UTF-8", xml_declaration=xml_declaration)
    return data


def qname(namespace: str, local: str) -> str:
    """The Clark notation ``{namespace}local`` lxml uses for qualified names."""
    return f"{{{namespace}}}{local}"
