"""Our own ITI-8 Patient Identity Feed messages (HL7 v2.3.1 ADT^A01) and ACK reading.

ITI TF-2a §3.8.4.1: the feed is HL7 v2.3.1 (what the NIST toolkit sends); PID-3 carries the
patient id with the affinity domain's assigning authority, PID-5 the name with name type L
(NIST issue #260).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Ack", "adt_a01", "read_ack"]


def _hl7_escape(text: str) -> str:
    # HL7 v2.3.1 §2.9: the delimiters inside data are written as escape sequences.
    return (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
    )


def adt_a01(
    patient_id: str,
    *,
    control_id: str,
    family: str = "CONFORMANCE",
    given: str = "TEST",
    birth_date: str = "19700101",
    sex: str = "F",
    now: datetime | None = None,
) -> bytes:
    """An ADT^A01 (admit) for ``patient_id``, a CX ``ID^^^&OID&ISO`` (ITI TF-2a §3.8.4.1.2)."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    local, _, authority = patient_id.partition("^^^")
    if not local or not authority:
        raise ValueError(f"{patient_id!r} is not a CX with an assigning authority (ID^^^&OID&ISO)")
    segments = [
        # MSH-9 ADT^A01 and MSH-12 2.3.1 (ITI TF-2a §3.8.4.1.2).
        f"MSH|^~\\&|XDSCONFORMANCE|IMAGESHARE|XDSREGISTRY|IMAGESHARE|{moment}||ADT^A01|{control_id}|P|2.3.1",
        f"EVN|A01|{moment}",
        f"PID|||{local}^^^{authority}||{_hl7_escape(family)}^{_hl7_escape(given)}^^^^^L||{birth_date}|{sex}",
        "PV1||O",
    ]
    return ("\r".join(segments) + "\r").encode("ascii")


@dataclass(frozen=True, slots=True)
class Ack:
    """The parts of an HL7 ACK the runner judges."""

    code: str  # MSA-1: AA/AE/AR (original mode) or CA/CE/CR (enhanced mode)
    control_id: str  # MSA-2: the MSH-10 of the acknowledged message
    text: str  # MSA-3 and any ERR segment, for the report

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")


def read_ack(message: bytes) -> Ack | None:
    """The MSA of an ACK, or None when there is none."""
    text = message.decode("latin-1")
    segments = [s for s in text.replace("\n", "\r").split("\r") if s]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 4:
        return None
    separator = segments[0][3]
    details = []
    msa: list[str] | None = None
    for segment in segments:
        fields = segment.split(separator)
        if fields[0] == "MSA":
            msa = fields
        elif fields[0] == "ERR":
            details.append(segment)
    if msa is None or len(msa) < 3:
        return None
    if len(msa) > 3 and msa[3]:
        details.insert(0, msa[3])
    return Ack(code=msa[1], control_id=msa[2], text="; ".join(details))
