"""The names of ITI-86 Remove Documents (IHE ITI Remove Metadata and Documents, RMD), which the
repository plan exercises as an option (xds-notes §1.1, §8.2 row 50000-50003).

They live here rather than in :mod:`xds.vocabulary` because no actor of the project implements
ITI-86; only the conformance runner speaks it.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ITI86_ACTION", "ITI86_RESPONSE_ACTION", "NS_RMD"]

# ITI TF-2b §3.86.4.1.2 (RMD): the request root, rmd:RemoveDocumentsRequest, whose content is
# that of an ITI-43 request (xds:DocumentRequest 1..n).
NS_RMD: Final = "urn:ihe:iti:rmd:2017"
# ITI TF-2b §3.86.5 (RMD); xds-notes §1.1.
ITI86_ACTION: Final = "urn:ihe:iti:2017:RemoveDocuments"
ITI86_RESPONSE_ACTION: Final = "urn:ihe:iti:2017:RemoveDocumentsResponse"
