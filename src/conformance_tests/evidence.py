"""Evidence: every message exchanged with the peer, request and response, kept per test step.

An :class:`Exchange` is one round trip (an HTTP POST, an MLLP message and its ACK, a pre-load
command and its output) with the exact bytes on both sides. Reports embed them; ``write_evidence``
also files them as plain files a tester can send to the peer's developers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree

from xds.xml import XmlError, parse_xml

if TYPE_CHECKING:
    from conformance_tests.model import RunResult

__all__ = ["Exchange", "pretty_xml", "write_evidence"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True, kw_only=True)
class Exchange:
    """One round trip with the peer, byte for byte."""

    label: str  # e.g. "ITI-42 Register Document Set-b"
    protocol: str  # "HTTP", "MLLP" or "command"
    target: str  # URL, host:port, or the command line
    started: str  # ISO 8601 UTC
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    request_body: bytes = b""
    response_status: str = ""  # "HTTP 200", "ACK AA", "exit 0"
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""
    seconds: float = 0.0
    error: str = ""  # why no (complete) response arrived

    def request_text(self) -> str:
        return _display(self.request_body)

    def response_text(self) -> str:
        return _display(self.response_body)


def _display(data: bytes) -> str:
    """Bytes as readable text: XML pretty-printed, HL7 segments one per line, binary marked."""
    if not data:
        return ""
    pretty = pretty_xml(data)
    if pretty is not None:
        return pretty
    text = data.decode("utf-8", errors="replace")
    if text.startswith("MSH|") or "\rMSH|" in text:
        return text.replace("\r", "\n").strip()
    return text


def pretty_xml(data: bytes) -> str | None:
    """The XML document indented for reading, or None if ``data`` is not a single XML document."""
    stripped = data.lstrip()
    if not stripped.startswith(b"<"):
        return None
    try:
        root = parse_xml(data)
    except XmlError:
        return None
    etree.indent(root, space="  ")  # root is a fresh tree of our own: safe to re-indent
    return etree.tostring(root, encoding="unicode")


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("_") or "x"


def write_evidence(run: RunResult, directory: Path) -> list[Path]:
    """File every exchange as ``<case>/<nn>-<step>-<k>-{request,response}.txt``; return the paths."""
    written: list[Path] = []
    for case_result in run.cases:
        case_dir = directory / _safe(f"{case_result.suite.name}-{case_result.case.id}")
        for n, step_result in enumerate(case_result.steps, start=1):
            for k, exchange in enumerate(step_result.exchanges, start=1):
                case_dir.mkdir(parents=True, exist_ok=True)
                stem = case_dir / _safe(f"{n:02d}-{step_result.step.name}-{k}")
                request = stem.with_name(stem.name + "-request.txt")
                response = stem.with_name(stem.name + "-response.txt")
                head = f"{exchange.protocol} {exchange.target}\n" + "".join(
                    f"{name}: {value}\n" for name, value in exchange.request_headers
                )
                request.write_bytes(head.encode() + b"\n" + exchange.request_body)
                tail = f"{exchange.response_status}\n" + "".join(
                    f"{name}: {value}\n" for name, value in exchange.response_headers
                )
                if exchange.error:
                    tail += f"error: {exchange.error}\n"
                response.write_bytes(tail.encode() + b"\n" + exchange.response_body)
                written += [request, response]
    return written
