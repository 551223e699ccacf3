"""Where the shared test data lives (never copied into the project)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("XDS_SHARED_DIR", REPO.parent / "shared"))
SCHEMAS = SHARED / "schemas"
CODES_XML = SHARED / "affinity-domain" / "codes.xml"
