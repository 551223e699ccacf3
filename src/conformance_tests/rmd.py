"""The names of ITI-86 Remove Documents (IHE ITI Remove Metadata and Documents, RMD), which the
repository plan exercises as an option (xds-notes §1.1, §8.2 row 50000-50003), and of ITI-62
Delete Document Set, which the registry plan exercises as an option (§8.1 row 30000-30008).

They live here rather than in :mod:`xds.vocabulary` because no actor of the project implements
ITI-86 or ITI-62; only the conformance runner speaks them.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ITI62_ACTION", "ITI62_RESPONSE_ACTION", "ITI86_ACTION", "ITI86_RESPONSE_ACTION", "NS_RMD"]

# ITI TF-2b §3.86.4.1.2 (RMD): the request root, rmd:RemoveDocumentsRequest, whose content is
# that of an ITI-43 request (xds:DocumentRequest 1..n).
NS_RMD: Final = "urn:ihe:iti:rmd:2017"
# ITI TF-2b §3.86.5 (RMD); xds-notes §1.1.
ITI86_ACTION: Final = "urn:ihe:iti:2017:RemoveDocuments"
ITI86_RESPONSE_ACTION: Final = "urn:ihe:iti:2017:RemoveDocumentsResponse"

# ITI TF-2b §3.62.5 (RMD Delete Document Set); xds-notes §1.1. The request is an
# lcm:RemoveObjectsRequest carrying a rim:ObjectRefList (ITI TF-2b §3.62.4.1.2).
ITI62_ACTION: Final = "urn:ihe:iti:2010:DeleteDocumentSet"
ITI62_RESPONSE_ACTION: Final = "urn:ihe:iti:2010:DeleteDocumentSetResponse"
