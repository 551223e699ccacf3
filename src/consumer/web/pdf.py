"""A one-page PDF of plain text lines: the printable sheet of a new share's code and PIN.

Just enough of ISO 32000-1 for that: a catalogue, one page (A4), the standard Helvetica fonts
(§9.6.2.2, no embedding) in WinAnsiEncoding (Annex D: Spanish accents included), one content
stream of text operators (§9.4), and a cross-reference table with exact byte offsets (§7.5.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["Line", "text_pdf"]

A4: Final = (595, 842)
MARGIN: Final = 56


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the sheet: its text, point size, and whether it is bold."""

    text: str
    size: float = 12
    bold: bool = False
    gap: float = 6  # extra space above the line, in points


def _literal(text: str) -> bytes:
    """A PDF literal string (§7.3.4.2) in WinAnsiEncoding; characters outside it become '?'."""
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _content(lines: Sequence[Line]) -> bytes:
    out = [b"BT"]
    y = A4[1] - MARGIN
    for line in lines:
        y -= line.size + line.gap
        font = b"/F2" if line.bold else b"/F1"
        out.append(font + b" %.1f Tf 1 0 0 1 %d %.1f Tm " % (line.size, MARGIN, y) + _literal(line.text) + b" Tj")
    out.append(b"ET")
    return b"\n".join(out)


def text_pdf(lines: Sequence[Line], *, title: str = "") -> bytes:
    """The PDF bytes of one A4 page carrying ``lines`` top to bottom."""
    stream = _content(lines)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>"
        % A4,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Title " + _literal(title) + b" /Producer (imageshare-xds portal) >>",
    ]
    body = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        body += b"%010d 00000 n \n" % offset
    body += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    return bytes(body)
