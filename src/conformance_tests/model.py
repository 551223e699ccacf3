"""Test plans, suites, cases, steps and expected outcomes; and the results of running them.

A :class:`TestPlan` belongs to one actor and holds :class:`Suite` objects; a suite holds
:class:`TestCase` objects, each naming its Technical Framework section, the Connectathon test it
mirrors, its steps and, per step, the expected outcome (status, error codes, exact counts). Steps
are data plus small functions that build a request from the case's state and read values back
out of a response; the runner does all I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lxml import etree

from xds.vocabulary import ResponseStatus

if TYPE_CHECKING:
    from conformance_tests.evidence import Exchange
    from conformance_tests.response import ResponseView
    from conformance_tests.state import CaseState
    from conformance_tests.transport import HttpAnswer

__all__ = [
    "ActionStep",
    "CaseResult",
    "Check",
    "Counts",
    "EnvelopeVariant",
    "Expectation",
    "HttpGetStep",
    "HttpVerifier",
    "PatientStep",
    "PauseStep",
    "Performer",
    "RequestPackaging",
    "RunResult",
    "SoapStep",
    "Step",
    "StepResult",
    "Suite",
    "TestCase",
    "TestPlan",
    "Transaction",
    "Verdict",
    "failure",
    "soap_fault",
    "success",
]


class Verdict(str, enum.Enum):
    """The outcome of a step, a case or a run."""

    PASSED = "passed"
    FAILED = "failed"  # the peer did not do what the TF requires
    ERROR = "error"  # the runner could not carry out the test (peer unreachable, bad setup)
    SKIPPED = "skipped"  # not run: a prerequisite did not pass
    #: not run: the case belongs to an option the peer does not declare (never counted as passed)
    NOT_APPLICABLE = "n/a"

    @property
    def css(self) -> str:
        """A CSS class name for the verdict (``n/a`` is no valid class)."""
        return self.name.lower()


class Transaction(str, enum.Enum):
    """The transactions a step can exercise."""

    ITI8 = "ITI-8"
    ITI18 = "ITI-18"
    ITI41 = "ITI-41"
    ITI42 = "ITI-42"
    ITI43 = "ITI-43"
    ITI51 = "ITI-51"
    ITI57 = "ITI-57"
    ITI61 = "ITI-61"
    ITI62 = "ITI-62"
    ITI86 = "ITI-86"
    ITI92 = "ITI-92"
    RAD55 = "RAD-55"
    RAD68 = "RAD-68"
    RAD69 = "RAD-69"
    DICOM_STORE = "C-STORE"


@dataclass(frozen=True, slots=True)
class Check:
    """One judged assertion: what was checked, whether it held, and what was seen."""

    name: str
    passed: bool
    detail: str = ""
    rule: str = ""


# -- expected outcomes ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Counts:
    """Exact numbers of objects a response must hold (None: not checked)."""

    documents: int | None = None
    submission_sets: int | None = None
    folders: int | None = None
    associations: int | None = None
    object_refs: int | None = None

    def items(self) -> list[tuple[str, int]]:
        """(label, expected count) for every count that is checked."""
        labels = (
            ("DocumentEntry", self.documents),
            ("SubmissionSet", self.submission_sets),
            ("Folder", self.folders),
            ("Association", self.associations),
            ("ObjectRef", self.object_refs),
        )
        return [(label, value) for label, value in labels if value is not None]

    def describe(self) -> str:
        return ", ".join(f"{value} {label}" for label, value in self.items())


_STATUS_NAMES: Mapping[str, str] = {
    ResponseStatus.SUCCESS: "Success",
    ResponseStatus.FAILURE: "Failure",
    ResponseStatus.PARTIAL_SUCCESS: "PartialSuccess",
}


def status_name(status: str | None) -> str:
    """The short name of a ResponseStatusType URN (or the text itself when unknown)."""
    if status is None:
        return "(none)"
    return _STATUS_NAMES.get(status, status)


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation:
    """What a response must be: a status with errors, warnings and counts, or a SOAP fault.

    ``errors`` are codes that must each appear with Error severity; a Failure with no codes
    listed still needs a non-empty RegistryErrorList. A Success may carry no Error-severity
    RegistryError; warnings are allowed unless ``warnings`` names ones that must appear.
    ``note`` says in words what the step's own checks verify besides.
    """

    status: str | None = None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    counts: Counts | None = None
    fault: str | None = None
    fault_subcode: str | None = None
    note: str = ""

    def describe(self) -> str:
        """One line for plans, listings and reports."""
        if self.fault is not None:
            text = f"SOAP 1.2 Fault env:{self.fault}"
            if self.fault_subcode:
                text += f" ({self.fault_subcode})"
        else:
            text = status_name(self.status)
            if self.errors:
                text += " " + ", ".join(self.errors)
            if self.warnings:
                text += " with warning " + ", ".join(self.warnings)
            if self.counts is not None and self.counts.items():
                text += "; " + self.counts.describe()
        if self.note:
            text += "; " + self.note
        return text


def success(counts: Counts | None = None, *, warnings: Iterable[str] = (), note: str = "") -> Expectation:
    """Expect status Success (optionally with exact counts and required warnings)."""
    return Expectation(status=ResponseStatus.SUCCESS, counts=counts, warnings=tuple(warnings), note=note)


def failure(*codes: str, note: str = "") -> Expectation:
    """Expect status Failure with each of ``codes`` (or, with none, any error) and no objects."""
    return Expectation(status=ResponseStatus.FAILURE, errors=codes, note=note)


def soap_fault(code: str, *, subcode: str | None = None, note: str = "") -> Expectation:
    """Expect a SOAP 1.2 Fault with this env:Code value (``Sender``, ``MustUnderstand`` ...)."""
    return Expectation(fault=code, fault_subcode=subcode, note=note)


# -- steps ---------------------------------------------------------------------------------------
RequestBuilder = Callable[["CaseState"], etree._Element]
Verifier = Callable[["CaseState", "ResponseView"], Iterable[Check]]
Keeper = Callable[["CaseState", "ResponseView"], None]
#: A context around a step's request (e.g. a simulator told to refuse, or stopped); what it
#: yields is a list it fills with the exchanges a simulator saw meanwhile, for the evidence.
Around = Callable[["CaseState"], AbstractContextManager[list["Exchange"]]]


class RequestPackaging(str, enum.Enum):
    """How a request travels (ITI TF-2x Appendix V; xds-notes §1.4).

    Request builders put binary content in ``xds:Document`` as base64 text (the XOP infoset);
    the transport decides the packaging.
    """

    SIMPLE = "simple"  # application/soap+xml, base64 inline
    MTOM = "mtom"  # multipart/related; every xds:Document becomes an xop:Include of a MIME part
    MTOM_INLINE = "mtom-inline"  # multipart/related, but the base64 stays inline (legal XOP)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeVariant:
    """How a request deviates from a correct SOAP 1.2 request (for SOAP-level negative tests)."""

    action: str | None = None  # the wsa:Action sent instead of the transaction's
    soap11: bool = False  # send a SOAP 1.1 envelope as text/xml
    unknown_must_understand: bool = False  # add a header block the peer cannot understand

    @property
    def is_default(self) -> bool:
        return self.action is None and not self.soap11 and not self.unknown_must_understand


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One step of a test case."""

    name: str
    purpose: str

    @property
    def transaction_label(self) -> str:
        return ""

    def expected(self) -> str:
        return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SoapStep(Step):
    """Send one SOAP request built from the case state and judge the response."""

    transaction: Transaction
    request: RequestBuilder
    expect: Expectation
    verify: tuple[Verifier, ...] = ()
    keep: Keeper | None = None
    envelope: EnvelopeVariant = field(default_factory=EnvelopeVariant)
    packaging: RequestPackaging = RequestPackaging.SIMPLE
    around: Around | None = None
    #: Seconds during which the step is sent again while its checks fail (a peer that makes
    #: loaded data available asynchronously); 0: sent once.
    settle: float = 0.0

    @property
    def transaction_label(self) -> str:
        return self.transaction.value

    def expected(self) -> str:
        return self.expect.describe()


#: What an :class:`ActionStep` does: the exchanges it made and the checks on them.
Performer = Callable[["CaseState"], tuple[list["Exchange"], list[Check]]]
HttpVerifier = Callable[["CaseState", "HttpAnswer"], Iterable[Check]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionStep(Step):
    """A step that is no SOAP request, carried out by a function (e.g. loading DICOM test
    instances into the peer by C-STORE or a command). A failed check with an unreachable peer
    (an exchange with an error) is a runner ERROR, otherwise a FAILED step."""

    transaction: Transaction
    perform: Performer
    outcome: str

    @property
    def transaction_label(self) -> str:
        return self.transaction.value

    def expected(self) -> str:
        return self.outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpGetStep(Step):
    """One HTTP GET (e.g. a RAD-55 WADO-URI request) whose status and body are judged."""

    transaction: Transaction
    url: Callable[["CaseState"], str]
    status: int
    verify: tuple[HttpVerifier, ...] = ()
    note: str = ""

    @property
    def transaction_label(self) -> str:
        return self.transaction.value

    def expected(self) -> str:
        return f"HTTP {self.status}" + (f"; {self.note}" if self.note else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientStep(Step):
    """Make a test patient known to the peer (ITI-8 feed, a pre-load command or a given list)."""

    role: str

    @property
    def transaction_label(self) -> str:
        return Transaction.ITI8.value

    def expected(self) -> str:
        return "patient known to the peer (ITI-8: ACK with MSA-1 = AA or CA)"


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseStep(Step):
    """Wait until the wall clock reaches the next whole second.

    Registry timestamps are DTM to the second (ITI TF-3 §4.2.3.1.3); a test that must see a time
    change waits so that two events cannot fall within one second.
    """

    def expected(self) -> str:
        return "the next second has begun"


# -- cases, suites, plans ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class TestCase:
    """A test: its TF section, the Connectathon test it mirrors, its steps and dependencies."""

    __test__ = False  # not a pytest class

    id: str
    title: str
    tf: str
    steps: tuple[Step, ...]
    reference: str = ""
    description: str = ""
    requires: tuple[str, ...] = ()
    option: str | None = None
    independent_steps: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    """A named group of test cases (e.g. ``register``, ``query``)."""

    name: str
    title: str
    cases: tuple[TestCase, ...]
    patient_roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TestPlan:
    """Every suite for one actor, and the test patients the suites use."""

    __test__ = False

    actor: str
    title: str
    suites: tuple[Suite, ...]
    patient_roles: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    fed_roles: tuple[str, ...] = ()
    #: Simulated peers the actor under test talks to during the run (e.g. ``registry`` for a
    #: repository, which sends ITI-42); whoever runs the plan starts them.
    simulators: tuple[str, ...] = ()

    def suite(self, name: str) -> Suite:
        for suite in self.suites:
            if suite.name == name:
                return suite
        raise KeyError(f"no suite {name!r} in the {self.actor} plan (have: {', '.join(s.name for s in self.suites)})")

    def all_cases(self) -> list[tuple[Suite, TestCase]]:
        return [(suite, case) for suite in self.suites for case in suite.cases]

    def select(
        self,
        *,
        suites: Sequence[str] = (),
        cases: Sequence[str] = (),
    ) -> list[tuple[Suite, TestCase]]:
        """The cases to run, in plan order: the named suites and cases plus what they require."""
        every = self.all_cases()
        by_id = {case.id: (suite, case) for suite, case in every}
        for name in suites:
            self.suite(name)  # raises for an unknown suite
        unknown = [c for c in cases if c not in by_id]
        if unknown:
            raise KeyError(f"no test case {', '.join(unknown)} in the {self.actor} plan")
        if not suites and not cases:
            wanted = {case.id for _, case in every}
        else:
            wanted = {case.id for suite, case in every if suite.name in suites} | set(cases)
        pending = list(wanted)
        while pending:
            for needed in by_id[pending.pop()][1].requires:
                if needed not in wanted:
                    wanted.add(needed)
                    pending.append(needed)
        return [(suite, case) for suite, case in every if case.id in wanted]


# -- results -------------------------------------------------------------------------------------
@dataclass(slots=True, kw_only=True)
class StepResult:
    """What happened in one step: its verdict, the checks, and the messages exchanged."""

    step: Step
    verdict: Verdict
    checks: list[Check] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


@dataclass(slots=True, kw_only=True)
class CaseResult:
    """What happened in one test case."""

    suite: Suite
    case: TestCase
    verdict: Verdict
    steps: list[StepResult] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0

    def summary(self) -> str:
        """The reason for the verdict, in one or a few lines."""
        if self.message:
            return self.message
        lines = []
        for result in self.steps:
            if result.verdict in (Verdict.FAILED, Verdict.ERROR):
                failed = "; ".join(f"{c.name}: {c.detail}" for c in result.failed_checks) or result.message
                lines.append(f"step {result.step.name}: {failed}")
        return "\n".join(lines)


@dataclass(slots=True, kw_only=True)
class RunResult:
    """A whole run: the plan, the peer, the settings shown in reports, and every case result."""

    plan: TestPlan
    endpoint: str
    started: str
    settings: dict[str, str] = field(default_factory=dict)
    cases: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def tally(self) -> dict[Verdict, int]:
        counts = {verdict: 0 for verdict in Verdict}
        for result in self.cases:
            counts[result.verdict] += 1
        return counts

    @property
    def passed(self) -> bool:
        """True when no case failed or erred (skipped and not-applicable cases do not count
        against a run)."""
        return all(r.verdict in (Verdict.PASSED, Verdict.SKIPPED, Verdict.NOT_APPLICABLE) for r in self.cases)
