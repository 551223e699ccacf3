"""Transfer syntax negotiation in RAD-69 (RAD TF-3 §4.69.4.1.2, §4.69.4.2.3; xds-notes §7.5).

The test data is stored in Explicit VR Little Endian. Every source returns it in Explicit VR
Little Endian and in Implicit VR Little Endian (the two native syntaxes NIST and the notes
require), picks from the consumer's list one it can produce, and refuses a list it cannot
serve (NIST ids_2018-4811 case 09, in the errors suite)."""

from __future__ import annotations

from typing import Final

from conformance_tests.model import TestCase
from conformance_tests.plans.imaging_source.common import EXPLICIT, IMPLICIT, LOAD_CASE, UNSUPPORTED_TS, study_keys
from conformance_tests.plans.imaging_source.retrieve import fetch

__all__ = ["cases"]

TF: Final = "RAD TF-3 §4.69.4.1.2 (TransferSyntaxUIDList), §4.69.4.2.3 (RAD69-005); DICOM PS3.5 §A.1, §A.2"


def cases() -> tuple[TestCase, ...]:
    ct, mr = study_keys("ct"), study_keys("mr")
    return (
        TestCase(id="ts-explicit", title="Explicit VR Little Endian only: the instances as stored", tf=TF,
                 reference="NIST ids_2018-4803 (requests 1.2.840.10008.1.2.1)", requires=(LOAD_CASE,),
                 steps=(fetch(mr, syntaxes=(EXPLICIT,)),)),
        TestCase(id="ts-implicit", title="Implicit VR Little Endian only: every instance re-encoded losslessly", tf=TF,
                 reference="xds-notes §7.5 (support Implicit VR LE)", requires=(LOAD_CASE,),
                 description="The source re-encodes (or has kept) each instance in Implicit VR Little Endian; "
                 "every element and the Pixel Data must stay the same.",
                 steps=(fetch(ct + mr[:1], syntaxes=(IMPLICIT,)),)),
        TestCase(id="ts-list", title="Both native syntaxes listed: one of them", tf=TF,
                 reference="RAD TF-3 §4.69.4.1.2 (the consumer's acceptable list)", requires=(LOAD_CASE,),
                 steps=(fetch(ct, syntaxes=(IMPLICIT, EXPLICIT)),)),
        TestCase(id="ts-fallback", title="An unsupported syntax first, then Explicit VR Little Endian", tf=TF,
                 reference="RAD69-005 (the source picks a listed syntax it can produce)", requires=(LOAD_CASE,),
                 steps=(fetch(ct[:1], syntaxes=(UNSUPPORTED_TS, EXPLICIT)),)),
    )  # fmt: skip
