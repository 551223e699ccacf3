"""What test steps share: per run (identifiers, patients, loaded data) and per case."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance_tests.data.ids import IdFactory

__all__ = ["CaseState", "RunData"]


@dataclass(slots=True)
class RunData:
    """Per-run data: the identifier factory, the patient of each role, values shared by cases.

    ``shared`` holds what one case leaves for others (e.g. the entryUUIDs of the Stored Query
    test data loaded by the data-load case).
    """

    ids: IdFactory = field(default_factory=IdFactory)
    patients: dict[str, str] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    def patient(self, role: str) -> str:
        """The patient id of ``role``, created on first use."""
        if role not in self.patients:
            self.patients[role] = self.ids.patient_id(role)
        return self.patients[role]


@dataclass(slots=True)
class CaseState:
    """A case's view: its own values first, then the run's shared ones."""

    run: RunData
    local: dict[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> IdFactory:
        return self.run.ids

    def patient(self, role: str) -> str:
        return self.run.patient(role)

    def __getitem__(self, key: str) -> Any:
        if key in self.local:
            return self.local[key]
        if key in self.run.shared:
            return self.run.shared[key]
        raise KeyError(f"no value {key!r} recorded by an earlier step")

    def __contains__(self, key: object) -> bool:
        return key in self.local or key in self.run.shared

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def set(self, key: str, value: Any) -> None:
        """Record a value for later steps of this case."""
        self.local[key] = value

    def share(self, key: str, value: Any) -> None:
        """Record a value for later cases of the run."""
        self.run.shared[key] = value

    def once(self, key: str, make: Any) -> Any:
        """The case value ``key``, made by calling ``make()`` the first time it is asked for.

        Builders use it so that a value drawn at random (a uniqueId) stays the same between the
        step that submits an object and the steps that look it up.
        """
        if key not in self.local:
            self.local[key] = make()
        return self.local[key]

    def shared_once(self, key: str, make: Any) -> Any:
        """Like :meth:`once`, for a value later cases of the run read (e.g. loaded test data)."""
        if key not in self.run.shared:
            self.run.shared[key] = make()
        return self.run.shared[key]
