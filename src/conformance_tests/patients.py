"""How test patients become known to the peer before the tests use them.

Three ways, chosen by the operator:

* :class:`FeedPatients` sends an ITI-8 ADT^A01 (HL7 v2.3.1) over MLLP per patient and requires an
  accepting ACK (MSA-1 AA or CA) for that message;
* :class:`CommandPatients` runs a pre-load command per patient, e.g.
  ``xds registry patient add {pid} --db sqlite:///registry.sqlite``; the fields ``{pid}`` (the CX),
  ``{id}`` (its id part) and ``{authority}`` (the assigning authority OID) are filled in, and the
  command must exit 0;
* :class:`GivenPatients` uses ids the operator registered beforehand, one per role, in order.
  Stored Query counts assume patients with no earlier data, so such a list serves one run.

A :class:`FeedPatients` source also leaves itself in the run's shared values (:data:`FEED_KEY`),
so that cases which need the feed itself (an ADT^A40 merge) can send through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

from conformance_tests.data.hl7 import adt_a01, read_ack
from conformance_tests.evidence import Exchange
from conformance_tests.model import Check
from conformance_tests.state import RunData
from conformance_tests.transport import mllp_exchange, run_command

__all__ = ["FEED_KEY", "CommandPatients", "FeedPatients", "GivenPatients", "PatientSource", "adt_a40"]

ITI8_RULE = "ITI TF-2a §3.8 (Patient Identity Feed, HL7 v2.3.1 ADT^A01)"
MERGE_RULE: Final = "ITI TF-2a §3.8 (Patient Identity Feed, HL7 v2.3.1 ADT^A40); each message is acknowledged (ACK)"
#: Where a :class:`FeedPatients` source leaves itself in the run's shared values.
FEED_KEY: Final = "patients:iti8-feed"


def _split_cx(patient_id: str) -> tuple[str, str]:
    local, _, authority = patient_id.partition("^^^")
    if not local or not authority:
        raise ValueError(f"{patient_id!r} is not a CX with an assigning authority (ID^^^&OID&ISO)")
    return local, authority


def adt_a40(surviving_id: str, merged_id: str, *, control_id: str, now: datetime | None = None) -> bytes:
    """An ADT^A40 Merge Patient - Patient Identifier List (HL7 v2.3.1 §3.3.40): PID-3 is the
    surviving patient id, MRG-1 the id that is merged into it (subsumed); both CX ``ID^^^&OID&ISO``.

    Segments MSH EVN PID MRG, the ADT_A39 structure of HL7 v2.3.1 with one patient (ITI TF-2a §3.8).
    """
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    surviving, surviving_authority = _split_cx(surviving_id)
    merged, merged_authority = _split_cx(merged_id)
    segments = [
        # MSH-9 ADT^A40 and MSH-12 2.3.1 (ITI TF-2a §3.8: the feed is HL7 v2.3.1).
        f"MSH|^~\\&|XDSCONFORMANCE|IMAGESHARE|XDSREGISTRY|IMAGESHARE|{moment}||ADT^A40|{control_id}|P|2.3.1",
        f"EVN|A40|{moment}",
        f"PID|||{surviving}^^^{surviving_authority}||CONFORMANCE^TEST^^^^^L",
        f"MRG|{merged}^^^{merged_authority}",
    ]
    return ("\r".join(segments) + "\r").encode("ascii")


def _judge_ack(exchange: Exchange, reply: bytes | None, control_id: str, rule: str) -> list[Check]:
    """The checks on an HL7 ACK: an accepting MSA-1 (AA or CA) echoing our MSH-10 in MSA-2."""
    if reply is None:
        return [Check("ACK", False, exchange.error, rule)]
    ack = read_ack(reply)
    if ack is None:
        exchange.response_status = "no MSA"
        return [Check("ACK", False, "the reply has no MSA segment", rule)]
    exchange.response_status = f"ACK {ack.code}"
    return [
        Check("ACK code", ack.accepted, f"MSA-1 {ack.code}" + (f": {ack.text}" if ack.text else ""), rule),
        Check(
            "ACK control id",
            ack.control_id == control_id,
            f"MSA-2 {ack.control_id!r}, sent MSH-10 {control_id!r}",
            "HL7 v2.3.1 §2.15.8 (MSA-2 echoes MSH-10)",
        ),
    ]


class PatientSource(Protocol):
    """Something that makes a patient id known to the peer."""

    def describe(self) -> str: ...

    def assign(self, run: RunData, roles: Sequence[str]) -> None:
        """Choose the patient id of each role before the run (default: fresh ids)."""

    def load(self, patient_id: str, *, role: str) -> tuple[list[Exchange], list[Check]]:
        """Make ``patient_id`` known; return what was exchanged and the checks on it."""


@dataclass(slots=True)
class FeedPatients:
    """ITI-8 over MLLP."""

    host: str
    port: int
    timeout: float = 30.0
    _serial: int = 0

    def describe(self) -> str:
        return f"ITI-8 ADT^A01 over MLLP to {self.host}:{self.port}"

    def assign(self, run: RunData, roles: Sequence[str]) -> None:
        for role in roles:
            run.patient(role)
        run.shared[FEED_KEY] = self

    def load(self, patient_id: str, *, role: str) -> tuple[list[Exchange], list[Check]]:
        self._serial += 1
        control_id = f"CT{self._serial:04d}{role.upper()}"[:20]
        message = adt_a01(patient_id, control_id=control_id)
        exchange, reply = mllp_exchange(
            self.host, self.port, message, label=f"ITI-8 ADT^A01 {patient_id}", timeout=self.timeout
        )
        return [exchange], _judge_ack(exchange, reply, control_id, ITI8_RULE)

    def merge(self, *, surviving_id: str, merged_id: str) -> tuple[list[Exchange], list[Check]]:
        """Send an ADT^A40 merging ``merged_id`` (MRG-1) into ``surviving_id`` (PID-3)."""
        self._serial += 1
        control_id = f"CT{self._serial:04d}A40"
        message = adt_a40(surviving_id, merged_id, control_id=control_id)
        exchange, reply = mllp_exchange(
            self.host, self.port, message, label=f"ITI-8 ADT^A40 {merged_id} -> {surviving_id}", timeout=self.timeout
        )
        return [exchange], _judge_ack(exchange, reply, control_id, MERGE_RULE)


@dataclass(slots=True)
class CommandPatients:
    """A pre-load command run once per patient."""

    template: str
    timeout: float = 120.0

    def describe(self) -> str:
        return f"pre-load command: {self.template}"

    def assign(self, run: RunData, roles: Sequence[str]) -> None:
        for role in roles:
            run.patient(role)

    def load(self, patient_id: str, *, role: str) -> tuple[list[Exchange], list[Check]]:
        local, _, rest = patient_id.partition("^^^")
        authority = rest.strip("&").split("&")[0] if rest else ""
        outcome = run_command(
            self.template,
            values={"pid": patient_id, "id": local, "authority": authority},
            label=f"pre-load {patient_id}",
            timeout=self.timeout,
        )
        detail = outcome.exchange.error or f"exit {outcome.returncode}"
        return [outcome.exchange], [
            Check("pre-load command", outcome.returncode == 0, detail, "documented pre-load step")
        ]


@dataclass(slots=True)
class GivenPatients:
    """Patient ids registered at the peer beforehand, taken in order."""

    patient_ids: Sequence[str]
    _used: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"{len(self.patient_ids)} pre-registered patient ids"

    def assign(self, run: RunData, roles: Sequence[str]) -> None:
        if len(self.patient_ids) < len(roles):
            raise ValueError(
                f"{len(roles)} pre-registered patient ids are needed ({', '.join(roles)}), "
                f"{len(self.patient_ids)} given"
            )
        for role, patient_id in zip(roles, self.patient_ids, strict=False):
            run.patients[role] = patient_id

    def load(self, patient_id: str, *, role: str) -> tuple[list[Exchange], list[Check]]:
        return [], [Check("pre-registered", True, f"{patient_id} given by the operator", "documented pre-load step")]
