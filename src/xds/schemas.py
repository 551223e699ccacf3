"""Validation against the standard ebRS / IHE schemas, when a schema directory is configured.

The project does not ship the schemas; a deployment points at a directory with the IHE layout
(``schema/ebRS/lcm.xsd``, ``schema/IHE/...``). Schemas import each other by relative path; the
parser reads local files only (no network).
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from xds.errors import ErrorCode, RegistryError

LCM = "schema/ebRS/lcm.xsd"
QUERY = "schema/ebRS/query.xsd"
RS = "schema/ebRS/rs.xsd"
XDS_B = "schema/IHE/XDS.b_DocumentRepository.xsd"
XDS_I = "schema/IHE/XDSI.b_ImagingDocumentSource.xsd"


def load_schema(schema_dir: Path, relative: str) -> etree.XMLSchema:
    """Compile one schema of ``schema_dir`` (its imports resolved from the same directory)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(schema_dir / relative), parser))


def schema_errors(
    schema: etree.XMLSchema, element: etree._Element, *, code: ErrorCode, limit: int = 20
) -> list[RegistryError]:
    """One RegistryError per schema violation (at most ``limit``), or [] when valid."""
    if schema.validate(element):
        return []
    return [
        RegistryError(code, f"schema violation at line {e.line}: {e.message}", "")
        for e in list(schema.error_log)[:limit]
    ]
