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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from conformance_tests.data.hl7 import adt_a01, read_ack
from conformance_tests.evidence import Exchange
from conformance_tests.model import Check
from conformance_tests.state import RunData
from conformance_tests.transport import mllp_exchange, run_command

__all__ = ["CommandPatients", "FeedPatients", "GivenPatients", "PatientSource"]

ITI8_RULE = "ITI TF-2a §3.8 (Patient Identity Feed, HL7 v2.3.1 ADT^A01)"


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

    def load(self, patient_id: str, *, role: str) -> tuple[list[Exchange], list[Check]]:
        self._serial += 1
        control_id = f"CT{self._serial:04d}{role.upper()}"[:20]
        message = adt_a01(patient_id, control_id=control_id)
        exchange, reply = mllp_exchange(
            self.host, self.port, message, label=f"ITI-8 ADT^A01 {patient_id}", timeout=self.timeout
        )
        if reply is None:
            return [exchange], [Check("ACK", False, exchange.error, ITI8_RULE)]
        ack = read_ack(reply)
        if ack is None:
            exchange.response_status = "no MSA"
            return [exchange], [Check("ACK", False, "the reply has no MSA segment", ITI8_RULE)]
        exchange.response_status = f"ACK {ack.code}"
        checks = [
            Check("ACK code", ack.accepted, f"MSA-1 {ack.code}" + (f": {ack.text}" if ack.text else ""), ITI8_RULE),
            Check(
                "ACK control id",
                ack.control_id == control_id,
                f"MSA-2 {ack.control_id!r}, sent MSH-10 {control_id!r}",
                "HL7 v2.3.1 §2.15.8 (MSA-2 echoes MSH-10)",
            ),
        ]
        return [exchange], checks


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
