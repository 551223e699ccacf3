"""The patients the registry knows from the Patient Identity Feed, and the store interface it feeds.

ITI TF-2a §3.8.4.1.3: the Document Registry keeps only the identifiers of the XDS Affinity
Domain's assigning authority; the feed hands it one :class:`Patient` per message, keyed by that
identifier in the ``id^^^&OID&ISO`` form that ITI-42 metadata carries (ITI TF-3 §4.2.3.2.16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


def cx_patient_id(id_number: str, universal_id: str) -> str:
    """The XDS form of a patient ID: only CX.1 and CX.4 (``&OID&ISO``) (ITI TF-3 §4.2.3.2.16)."""
    return f"{id_number}^^^&{universal_id}&ISO"


@dataclass(frozen=True, slots=True, repr=False)
class Patient:
    """One fed patient: the affinity-domain ID, the corroborating demographics, all PID-3 IDs.

    ``birth_date`` is HL7 DT text as precise as it was sent (``YYYY[MM[DD]]``). ``identifiers``
    holds every PID-3 repetition as CX text in the standard encoding. The ``repr`` shows only the
    ID, so a logged patient never carries a name or a birth date.
    """

    patient_id: str
    family_name: str | None = None
    given_name: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    identifiers: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Patient(patient_id={self.patient_id!r})"


class UnknownPatientError(LookupError):
    """A merge named a patient ID the store has never been fed."""

    def __init__(self, patient_id: str) -> None:
        super().__init__(f"unknown patient id {patient_id}")
        self.patient_id = patient_id


@runtime_checkable
class PatientIdentitySink(Protocol):
    """What the feed needs from the registry store. Calls are synchronous (run off the event loop)."""

    def add_or_update(self, patient: Patient) -> bool:
        """Record the patient, or refresh its demographics; True if it was not known before."""
        ...

    def merge(self, *, surviving_id: str, merged_id: str) -> None:
        """Merge ``merged_id`` into ``surviving_id`` (ITI TF-2a §3.8.4.2).

        May raise :class:`UnknownPatientError` if the store refuses to merge an unknown ID.
        """
        ...

    def is_known(self, patient_id: str) -> bool:
        """True if ``patient_id`` (``id^^^&OID&ISO``) has been fed and not merged away."""
        ...
