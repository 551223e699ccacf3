"""The hardened XML parser: what it refuses (DTD, entities, XXE, bombs, deep trees, garbage)."""

from __future__ import annotations

import pytest
from lxml import etree

from xds.xml import XmlError, parse_xml, qname, to_bytes

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""

XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<r>&xxe;</r>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">
<r>x</r>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>
<r/>"""


def nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


def test_parses_a_well_formed_document() -> None:
    root = parse_xml(b'<?xml version="1.0" encoding="UTF-8"?><r xmlns="urn:x"><c a="1">t\xc3\xa9</c></r>')
    assert root.tag == "{urn:x}r"
    assert root[0].get("a") == "1"
    assert root[0].text == "t\u00e9"


def test_xml_error_is_a_value_error() -> None:
    assert issubclass(XmlError, ValueError)


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, XXE_FILE, EXTERNAL_DTD, PARAMETER_ENTITY],
    ids=["billion-laughs", "xxe-file", "external-dtd", "parameter-entity"],
)
def test_any_document_type_declaration_is_refused(document: bytes) -> None:
    with pytest.raises(XmlError, match="DTD"):
        parse_xml(document)


def test_doctype_after_comments_and_processing_instructions_is_refused() -> None:
    document = (
        b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- c --><?pi x?>\n  <!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>'
    )
    with pytest.raises(XmlError, match="DTD"):
        parse_xml(document)


def test_doctype_in_utf16_is_refused_after_parsing() -> None:
    # The byte scan cannot read UTF-16; the parsed document's docinfo still shows the DTD.
    document = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>'.encode(
        "utf-16"
    )
    with pytest.raises(XmlError):
        parse_xml(document)


def test_external_entity_content_never_appears() -> None:
    try:
        root = parse_xml(XXE_FILE)
    except XmlError:
        return
    pytest.fail(f"XXE document was accepted: {etree.tostring(root)!r}")


def test_undefined_entity_reference_is_not_well_formed() -> None:
    with pytest.raises(XmlError, match="not well-formed"):
        parse_xml(b"<r>&xxe;</r>")


def test_predefined_and_character_references_still_work() -> None:
    assert parse_xml(b"<r>&lt;&amp;&#65;&#x42;</r>").text == "<&AB"


def test_doctype_text_inside_cdata_is_only_text() -> None:
    root = parse_xml(b"<r><![CDATA[<!DOCTYPE x>]]></r>")
    assert root.text == "<!DOCTYPE x>"


def test_xinclude_is_not_processed() -> None:
    root = parse_xml(
        b'<r xmlns:xi="http://www.w3.org/2001/XInclude">'
        b'<xi:include href="file:///etc/passwd" parse="text"/></r>'
    )
    assert root[0].tag == "{http://www.w3.org/2001/XInclude}include"
    assert "root:" not in (root.xpath("string()") or "")


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"   \n",
        b"garbage",
        b"<r>",
        b"<r></s>",
        b"<r a='1' a='2'/>",
        b"\x00\x01\x02",
        b"<r/><r/>",
        b"<?xml?>",
    ],
)
def test_garbage_is_refused(document: bytes) -> None:
    with pytest.raises(XmlError):
        parse_xml(document)


def test_non_bytes_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_xml("<r/>")  # type: ignore[arg-type]


def test_nesting_beyond_libxml2_limit_is_refused() -> None:
    with pytest.raises(XmlError):
        parse_xml(nested(300))


def test_max_depth_is_enforced_exactly() -> None:
    assert parse_xml(nested(10), max_depth=10).tag == "a"
    with pytest.raises(XmlError, match="deeper than 10"):
        parse_xml(nested(11), max_depth=10)


def test_max_depth_must_be_positive() -> None:
    with pytest.raises(ValueError):
        parse_xml(b"<a/>", max_depth=0)


def test_comments_are_kept() -> None:
    root = parse_xml(b"<r><!-- note --><c/></r>")
    assert isinstance(root[0], etree._Comment)


def test_to_bytes_round_trip() -> None:
    root = etree.Element(qname("urn:x", "r"), nsmap={"x": "urn:x"})
    etree.SubElement(root, qname("urn:x", "c")).text = "\u00e9"
    data = to_bytes(root)
    assert not data.startswith(b"<?xml")
    assert "\u00e9".encode() in data
    with_decl = to_bytes(root, xml_declaration=True)
    assert with_decl.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert parse_xml(with_decl)[0].text == "\u00e9"


def test_qname_is_clark_notation() -> None:
    assert qname("urn:a", "b") == "{urn:a}b"
