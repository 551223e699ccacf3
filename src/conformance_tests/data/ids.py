"""Fresh identifiers for every run: OIDs for uniqueIds, patient ids, accession numbers.

SQ tests count objects exactly, so every run loads its data into patients no earlier run has
used (xds-notes §9 item 9), and every uniqueId is new, so runs never collide in a shared registry.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Final

# The NIST default affinity domain (xds-notes §4, "Patient Identity Feed").
DEFAULT_ASSIGNING_AUTHORITY: Final = "1.3.6.1.4.1.21367.13.20.1000"
# The accession-number issuer NIST configures for XDS-I (xds-notes §7.3).
ACCESSION_ISSUER: Final = "1.3.6.1.4.1.21367.13.202.2000"

# ITI TF-3 §4.2.3.1.7: an OID is at most 64 characters.
MAX_OID_LENGTH: Final = 64


def _run_root() -> str:
    # ISO/IEC 9834-8: an OID under 2.25 from a random UUID is globally unique. 96 bits of it keep
    # the root short enough for suffixes within the 64-character limit.
    return f"2.25.{uuid.uuid4().int >> 32}"


@dataclass(slots=True)
class IdFactory:
    """Hands out identifiers that are unique to one run."""

    assigning_authority: str = DEFAULT_ASSIGNING_AUTHORITY
    root: str = field(default_factory=_run_root)
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8].upper())
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def oid(self) -> str:
        """A new OID (for a uniqueId or sourceId)."""
        value = f"{self.root}.{next(self._serial)}"
        if len(value) > MAX_OID_LENGTH:
            raise ValueError(f"OID {value} is longer than {MAX_OID_LENGTH} characters")
        return value

    def patient_id(self, label: str) -> str:
        """A new patient id in the affinity domain, as a CX (ITI TF-3 §4.2.3.1.7)."""
        return f"{self.local_patient_id(label)}^^^&{self.assigning_authority}&ISO"

    def local_patient_id(self, label: str) -> str:
        """The id part of a new patient id: letters and digits only."""
        return f"CT{self.token}{label.upper()}"

    def accession(self, label: str) -> str:
        """A referenceIdList value for a new accession number (ITI TF-3 §4.2.3.2.28, CXi)."""
        return f"ACC{self.token}{label.upper()}^^^&{ACCESSION_ISSUER}&ISO^urn:ihe:iti:xds:2013:accession"

    def entry_uuid(self) -> str:
        """A new entryUUID in urn:uuid form, lowercase (ITI TF-3 §4.2.3.2, entryUUID)."""
        return f"urn:uuid:{uuid.uuid4()}"
