"""How the DICOM test instances reach the Imaging Document Source before the tests use them.

Three ways, chosen by the operator (like :mod:`conformance_tests.patients` for patients):

* :class:`StoreInstances` sends every instance by C-STORE (DICOM PS3.4 Annex B, PS3.7 §9.1.1)
  over one association to the source's Storage SCP, proposing each instance's own transfer
  syntax, and requires a Success (or Warning) status for each;
* :class:`CommandInstances` writes each instance as a Part 10 file and runs a pre-load command
  per file, e.g. ``storescu host 11112 {file}``; the fields ``{file}``, ``{sop_uid}``,
  ``{series_uid}``, ``{study_uid}`` and ``{sop_class_uid}`` are filled in, and the command must
  exit 0;
* :class:`PreloadedInstances` trusts the operator to have loaded the files
  ``xds conformance dicom-data DIR`` writes (the UIDs are the same on every run).

Public API::

    InstanceSource (protocol): describe() -> str; load(instances) -> (exchanges, checks)
    StoreInstances(host, port, *, called_ae, calling_ae="XDSCONFORMANCE", timeout=30.0)
    CommandInstances(template, directory, *, timeout=120.0)
    PreloadedInstances()
    CONTEXT_KEY
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

from pynetdicom import AE

from conformance_tests.data.dicom import TestInstance
from conformance_tests.evidence import Exchange
from conformance_tests.model import Check
from conformance_tests.transport import run_command

__all__ = ["CONTEXT_KEY", "CommandInstances", "InstanceSource", "PreloadedInstances", "StoreInstances"]

#: The key under which a run's context holds the instance source.
CONTEXT_KEY: Final = "instance-source"
DEFAULT_CALLING_AE: Final = "XDSCONFORMANCE"
_STORE_RULE: Final = "DICOM PS3.4 §B.2.3 (C-STORE status); PS3.7 §9.1.1; documented pre-load step"
# PS3.4 Table B.2-1: Success 0x0000; Warning 0x0001, 0xB000, 0xB006, 0xB007.
_ACCEPTED: Final = frozenset({0x0000, 0x0001, 0xB000, 0xB006, 0xB007})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _describe(item: TestInstance) -> bytes:
    return (
        f"SOP Class {item.sop_class_uid}\nSOP Instance {item.sop_uid}\nSeries {item.series_uid}\n"
        f"Study {item.study_uid}\nTransfer Syntax {item.transfer_syntax}\n{len(item.dataset_bytes)} dataset bytes\n"
    ).encode()


class InstanceSource(Protocol):
    """Something that makes the test instances available at the source under test."""

    def describe(self) -> str: ...

    def load(self, instances: Sequence[TestInstance]) -> tuple[list[Exchange], list[Check]]:
        """Load ``instances``; return what was exchanged and the checks on it."""


@dataclass(frozen=True, slots=True)
class StoreInstances:
    """C-STORE SCU to the source's Storage SCP."""

    host: str
    port: int
    called_ae: str
    calling_ae: str = DEFAULT_CALLING_AE
    timeout: float = 30.0

    def describe(self) -> str:
        return f"C-STORE from {self.calling_ae} to {self.called_ae}@{self.host}:{self.port}"

    def load(self, instances: Sequence[TestInstance]) -> tuple[list[Exchange], list[Check]]:
        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        # PS3.7 §D.3.3.2 (presentation contexts): each SOP Class in the syntax it is encoded in,
        # so the SCP receives the very bytes of the test data.
        for sop_class, syntax in dict.fromkeys((i.sop_class_uid, i.transfer_syntax) for i in instances):
            ae.add_requested_context(sop_class, syntax)
        target = f"{self.called_ae}@{self.host}:{self.port}"
        opened = Exchange(label="A-ASSOCIATE", protocol="DICOM", target=target, started=_now())
        began = time.monotonic()
        assoc = ae.associate(self.host, self.port, ae_title=self.called_ae)
        opened.seconds = time.monotonic() - began
        if not assoc.is_established:
            opened.error = "association rejected or aborted" if (assoc.is_rejected or assoc.is_aborted) else "no association"
            opened.response_status = "not established"
            return [opened], [Check("association", False, f"{target}: {opened.error}", _STORE_RULE)]
        opened.response_status = "established"
        exchanges = [opened]
        checks = [Check("association", True, f"{target} accepted {len(assoc.accepted_contexts)} context(s)", _STORE_RULE)]
        try:
            for number, item in enumerate(instances, start=1):
                exchange = Exchange(
                    label=f"C-STORE {item.key}",
                    protocol="DICOM",
                    target=target,
                    started=_now(),
                    request_body=_describe(item),
                )
                began = time.monotonic()
                try:
                    status = assoc.send_c_store(item.dataset(), msg_id=number)
                except (RuntimeError, ValueError) as exc:  # no accepted context for the instance
                    exchange.error = f"{type(exc).__name__}: {exc}"
                    status = None
                exchange.seconds = time.monotonic() - began
                code = int(status.Status) if status is not None and "Status" in status else None
                if code is None and not exchange.error:
                    exchange.error = "no C-STORE response (timeout or abort)"
                exchange.response_status = "no response" if code is None else f"status 0x{code:04X}"
                exchanges.append(exchange)
                detail = exchange.error if code is None else f"status 0x{code:04X}"
                checks.append(Check(f"C-STORE {item.key}", code in _ACCEPTED, detail, _STORE_RULE))
        finally:
            if assoc.is_established:
                assoc.release()
        return exchanges, checks


@dataclass(frozen=True, slots=True)
class CommandInstances:
    """A pre-load command run once per instance file (written into ``directory``)."""

    template: str
    directory: Path
    timeout: float = 120.0

    def describe(self) -> str:
        return f"pre-load command per DICOM file: {self.template}"

    def load(self, instances: Sequence[TestInstance]) -> tuple[list[Exchange], list[Check]]:
        self.directory.mkdir(parents=True, exist_ok=True)
        exchanges, checks = [], []
        for item in instances:
            path = self.directory / item.file_name
            path.write_bytes(item.data)
            outcome = run_command(
                self.template,
                values={
                    "file": str(path),
                    "sop_uid": item.sop_uid,
                    "series_uid": item.series_uid,
                    "study_uid": item.study_uid,
                    "sop_class_uid": item.sop_class_uid,
                },
                label=f"pre-load {item.key}",
                timeout=self.timeout,
            )
            exchanges.append(outcome.exchange)
            detail = outcome.exchange.error or f"exit {outcome.returncode}"
            checks.append(Check(f"pre-load {item.key}", outcome.returncode == 0, detail, "documented pre-load step"))
        return exchanges, checks


@dataclass(frozen=True, slots=True)
class PreloadedInstances:
    """The operator loaded the test data before the run."""

    def describe(self) -> str:
        return "test instances loaded by the operator beforehand (xds conformance dicom-data)"

    def load(self, instances: Sequence[TestInstance]) -> tuple[list[Exchange], list[Check]]:
        return [], [
            Check("preloaded", True, f"{len(instances)} instances given as loaded by the operator", "documented pre-load step")
        ]
