"""The dependency rule of DESIGN.md §2, enforced by the import-linter contracts in setup.cfg."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (extra 'test')")
    result = subprocess.run([exe, "--no-cache", str(REPO / "setup.cfg")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_xmlsec_and_lxml_share_libxml2() -> None:
    """DESIGN.md §3: a mismatched lxml/xmlsec pair must fail CI, not production."""
    import lxml.etree
    import xmlsec

    assert xmlsec.get_libxml_version()[:2] == lxml.etree.LIBXML_VERSION[:2]
