"""XSD validation of message bodies against a schema directory (ebRS 3.0 and IHE schemas).

The directory follows the IHE implementation-material layout (``schema/ebRS/*.xsd``,
``schema/IHE/*.xsd``); ``schema/IHE/XDSI.b_ImagingDocumentSource.xsd`` imports all the others, so
one compiled schema reaches every element of XDS.b and XDS-I.b (ebRS, xds-b, xdsi-b).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from lxml import etree

__all__ = ["SchemaError", "SchemaSet", "default_schema_dir"]

ENTRY_SCHEMA: Final = Path("schema") / "IHE" / "XDSI.b_ImagingDocumentSource.xsd"
MAX_REPORTED_ERRORS: Final = 20


class SchemaError(Exception):
    """The schema directory is missing or its schemas do not compile."""


def default_schema_dir() -> Path | None:
    """``../shared/schemas`` from the current directory, else from the source tree; or
    ``$XDS_SHARED_DIR/schemas`` when that variable is set."""
    candidates = []
    shared = os.environ.get("XDS_SHARED_DIR")
    if shared:
        candidates.append(Path(shared) / "schemas")
    candidates.append(Path.cwd().parent / "shared" / "schemas")
    candidates.append(Path(__file__).resolve().parents[2].parent / "shared" / "schemas")
    for candidate in candidates:
        if (candidate / ENTRY_SCHEMA).is_file():
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class SchemaSet:
    """The compiled schemas of one directory."""

    directory: Path
    schema: etree.XMLSchema

    @classmethod
    def load(cls, directory: Path) -> SchemaSet:
        entry = directory / ENTRY_SCHEMA
        if not entry.is_file():
            raise SchemaError(
                f"{entry} not found: --schemas must name the directory holding schema/ebRS and schema/IHE"
            )
        # Local schema files of the operator's choosing; the parser still refuses the network.
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        try:
            schema = etree.XMLSchema(etree.parse(str(entry), parser))
        except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError) as exc:
            raise SchemaError(f"{entry}: {exc}") from exc
        return cls(directory=directory, schema=schema)

    def validate(self, element: etree._Element) -> list[str]:
        """Schema errors of ``element`` as its own document (empty when valid)."""
        document = etree.ElementTree(copy.deepcopy(element))
        if self.schema.validate(document):
            return []
        errors = [f"line {e.line}: {e.message}" for e in self.schema.error_log]
        if len(errors) > MAX_REPORTED_ERRORS:
            errors = errors[:MAX_REPORTED_ERRORS] + [f"... and {len(errors) - MAX_REPORTED_ERRORS} more"]
        return errors
