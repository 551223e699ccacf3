"""Runs a test plan against a peer: patients first, then every selected case, step by step.

The runner owns all I/O (through :mod:`conformance_tests.transport` and the patient source) and
judges each reply with :mod:`conformance_tests.assertions`. A case whose prerequisite did not pass,
or whose option is not enabled, is skipped with the reason; a step that fails stops its case
unless the case declares its steps independent (a battery of unrelated queries).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import httpx
from lxml import etree

from conformance_tests import assertions as a
from conformance_tests.data.ids import DEFAULT_ASSIGNING_AUTHORITY, IdFactory
from conformance_tests.evidence import Exchange
from conformance_tests.model import (
    ActionStep,
    CaseResult,
    Check,
    HttpGetStep,
    PatientStep,
    PauseStep,
    RunResult,
    SoapStep,
    Step,
    StepResult,
    Suite,
    TestCase,
    TestPlan,
    Transaction,
    Verdict,
)
from conformance_tests.patients import PatientSource
from conformance_tests.response import ResponseView
from conformance_tests.mu import (
    ITI57_ACTION,
    ITI57_RESPONSE_ACTION,
    ITI61_ACTION,
    ITI61_RESPONSE_ACTION,
    ITI92_ACTION,
    ITI92_RESPONSE_ACTION,
)
from conformance_tests.rmd import ITI62_ACTION, ITI62_RESPONSE_ACTION, ITI86_ACTION, ITI86_RESPONSE_ACTION
from conformance_tests.schemas import SchemaSet
from conformance_tests.state import CaseState, RunData
from conformance_tests.transport import SoapTransport
from xds.vocabulary import ITI51_ACTION, ITI51_RESPONSE_ACTION, NS_QUERY, NS_RS, NS_XDS, Action

__all__ = ["RunConfig", "RunListener", "Runner", "SETUP_CASE_ID"]

SETUP_CASE_ID: Final = "patients"


@dataclass(frozen=True, slots=True)
class _Wire:
    request_action: str
    response_action: str
    response_body: str
    is_query: bool


_WIRE: Final = {
    Transaction.ITI18: _Wire(Action.ITI18, Action.ITI18_RESPONSE, f"{{{NS_QUERY}}}AdhocQueryResponse", True),
    Transaction.ITI51: _Wire(ITI51_ACTION, ITI51_RESPONSE_ACTION, f"{{{NS_QUERY}}}AdhocQueryResponse", True),
    Transaction.ITI42: _Wire(Action.ITI42, Action.ITI42_RESPONSE, f"{{{NS_RS}}}RegistryResponse", False),
    Transaction.ITI41: _Wire(Action.ITI41, Action.ITI41_RESPONSE, f"{{{NS_RS}}}RegistryResponse", False),
    Transaction.ITI43: _Wire(
        Action.ITI43, Action.ITI43_RESPONSE, f"{{{NS_XDS}}}RetrieveDocumentSetResponse", False
    ),
    # ITI TF-2b §3.86.4.2 (RMD): the ITI-86 response is a RegistryResponse.
    Transaction.ITI86: _Wire(ITI86_ACTION, ITI86_RESPONSE_ACTION, f"{{{NS_RS}}}RegistryResponse", False),
    # ITI TF-2b §3.57.4.2, §3.61.4.2, §3.62.4.2, §3.92.4.2: each answers with a RegistryResponse.
    Transaction.ITI57: _Wire(ITI57_ACTION, ITI57_RESPONSE_ACTION, f"{{{NS_RS}}}RegistryResponse", False),
    Transaction.ITI61: _Wire(ITI61_ACTION, ITI61_RESPONSE_ACTION, f"{{{NS_RS}}}RegistryResponse", False),
    Transaction.ITI62: _Wire(ITI62_ACTION, ITI62_RESPONSE_ACTION, f"{{{NS_RS}}}RegistryResponse", False),
    Transaction.ITI92: _Wire(ITI92_ACTION, ITI92_RESPONSE_ACTION, f"{{{NS_RS}}}RegistryResponse", False),
    # RAD TF-3 §4.69.4.2: the RAD-69 response is an ITI-43 response (xds-notes §1.1).
    Transaction.RAD69: _Wire(
        Action.RAD69, Action.RAD69_RESPONSE, f"{{{NS_XDS}}}RetrieveDocumentSetResponse", False
    ),
}
#: The rule a failed TLS handshake breaks.
TLS_RULE: Final = (
    "ITI TF-2a §3.19 (Authenticate Node [ITI-19]: TLS with X.509 certificates); ITI TF-1 §9 (ATNA)"
)
#: Pause between the attempts of a step with ``settle`` time.
SETTLE_INTERVAL: Final = 0.25


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """Where the peer is and how to treat it."""

    endpoint: str
    schemas: SchemaSet
    patients: PatientSource
    timeout: float = 60.0
    options: frozenset[str] = frozenset()
    assigning_authority: str = DEFAULT_ASSIGNING_AUTHORITY
    #: True / False, or a PEM file of the CAs to trust for an https:// peer.
    verify_tls: bool | str = True
    #: Our client certificate (PEM) and its key, for a peer that asks for one (mutual TLS).
    client_cert: str | None = None
    client_key: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    #: Values every case can read from its state (e.g. the simulators the plan needs, by name).
    context: Mapping[str, Any] = field(default_factory=dict)


class RunListener(Protocol):
    """Progress hooks (the console shows live progress through them)."""

    def run_started(self, plan: TestPlan, total: int) -> None: ...

    def case_started(self, suite: Suite, case: TestCase) -> None: ...

    def step_finished(self, case: TestCase, result: StepResult) -> None: ...

    def case_finished(self, result: CaseResult) -> None: ...


class _Silent:
    def run_started(self, plan: TestPlan, total: int) -> None:
        pass

    def case_started(self, suite: Suite, case: TestCase) -> None:
        pass

    def step_finished(self, case: TestCase, result: StepResult) -> None:
        pass

    def case_finished(self, result: CaseResult) -> None:
        pass


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _is_leaf_class(body: etree._Element) -> bool:
    option = body.find(f"{{{NS_QUERY}}}ResponseOption")
    return option is not None and option.get("returnType") == "LeafClass"


def _guard(checks: list[Check], name: str, action: Callable[[], object]) -> object:
    """Run a step's own function; an exception becomes a failed check rather than a crash."""
    try:
        return action()
    except Exception as exc:  # a step function met a reply it cannot read
        checks.append(Check(name, False, f"{type(exc).__name__}: {exc}", "test step"))
        return None


class Runner:
    """Executes a :class:`TestPlan` against one peer."""

    def __init__(
        self,
        plan: TestPlan,
        config: RunConfig,
        *,
        listener: RunListener | None = None,
        http_transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.plan = plan
        self.config = config
        self.listener: RunListener = listener or _Silent()
        self._http_transport = http_transport
        self._sleep = sleep

    def run(self, *, suites: Sequence[str] = (), cases: Sequence[str] = ()) -> RunResult:
        """Run the selected suites and cases (everything when neither is given)."""
        selected = self.plan.select(suites=suites, cases=cases)
        run = RunData(
            ids=IdFactory(assigning_authority=self.config.assigning_authority), shared=dict(self.config.context)
        )
        roles: list[str] = []
        for suite in {s.name: s for s, _ in selected}.values():
            roles += [r for r in suite.patient_roles if r not in roles]
        fed = [r for r in roles if r in self.plan.fed_roles]
        self.config.patients.assign(run, fed)
        setup = self._setup_case(fed)
        result = RunResult(
            plan=self.plan,
            endpoint=self.config.endpoint,
            started=_utc_now(),
            settings={
                **self.config.settings,
                "patients": self.config.patients.describe(),
                "run OID root": run.ids.root,
            },
        )
        began = time.monotonic()
        self.listener.run_started(self.plan, len(selected) + (1 if setup else 0))
        verdicts: dict[str, Verdict] = {}
        with SoapTransport(
            self.config.endpoint,
            timeout=self.config.timeout,
            verify=self.config.verify_tls,
            client_cert=self.config.client_cert,
            client_key=self.config.client_key,
            transport=self._http_transport,
        ) as transport:
            work = ([setup] if setup else []) + selected
            for suite, case in work:
                case_result = self._run_case(suite, case, run, transport, verdicts)
                verdicts[case.id] = case_result.verdict
                result.cases.append(case_result)
                self.listener.case_finished(case_result)
        result.seconds = time.monotonic() - began
        result.extra["patients"] = dict(run.patients)
        return result

    # -- cases -----------------------------------------------------------------------------------
    def _setup_case(self, roles: list[str]) -> tuple[Suite, TestCase] | None:
        if not roles:
            return None
        steps = tuple(
            PatientStep(name=f"patient {role}", purpose=self.plan.patient_roles.get(role, role), role=role)
            for role in roles
        )
        case = TestCase(
            id=SETUP_CASE_ID,
            title="Make the test patients known to the peer",
            tf="ITI TF-2a §3.8 (Patient Identity Feed)",
            reference="setup",
            description="Every run uses fresh patients, so that Stored Query counts are exact.",
            steps=steps,
        )
        return Suite(name="setup", title="Setup", cases=(case,)), case

    def _skip_reason(self, case: TestCase, verdicts: dict[str, Verdict]) -> str:
        if case.option is not None and case.option not in self.config.options:
            hint = self.plan.options.get(case.option, "")
            how = hint.split(":")[0] if hint.startswith("--") else f"--option {case.option}"
            return f"not applicable: option {case.option!r} not declared ({how})"
        needed = ([SETUP_CASE_ID] if SETUP_CASE_ID in verdicts and case.id != SETUP_CASE_ID else []) + list(
            case.requires
        )
        missing = [n for n in needed if verdicts.get(n) != Verdict.PASSED]
        if missing:
            return f"not run: prerequisite {', '.join(missing)} did not pass"
        return ""

    def _run_case(
        self,
        suite: Suite,
        case: TestCase,
        run: RunData,
        transport: SoapTransport,
        verdicts: dict[str, Verdict],
    ) -> CaseResult:
        self.listener.case_started(suite, case)
        reason = self._skip_reason(case, verdicts)
        if reason:
            # A case of an option the peer does not declare is not applicable, not passed.
            verdict = Verdict.NOT_APPLICABLE if reason.startswith("not applicable") else Verdict.SKIPPED
            return CaseResult(suite=suite, case=case, verdict=verdict, message=reason)
        state = CaseState(run)
        result = CaseResult(suite=suite, case=case, verdict=Verdict.PASSED)
        began = time.monotonic()
        stopped = False
        for step in case.steps:
            if stopped:
                result.steps.append(
                    StepResult(step=step, verdict=Verdict.SKIPPED, message="not run: an earlier step failed")
                )
                continue
            step_result = self._run_step(step, state, transport)
            result.steps.append(step_result)
            self.listener.step_finished(case, step_result)
            if step_result.verdict is Verdict.ERROR:
                result.verdict = Verdict.ERROR
            elif step_result.verdict is Verdict.FAILED and result.verdict is Verdict.PASSED:
                result.verdict = Verdict.FAILED
            if step_result.verdict in (Verdict.FAILED, Verdict.ERROR) and not case.independent_steps:
                stopped = True
        result.seconds = time.monotonic() - began
        return result

    # -- steps -----------------------------------------------------------------------------------
    def _run_step(self, step: Step, state: CaseState, transport: SoapTransport) -> StepResult:
        began = time.monotonic()
        try:
            if isinstance(step, SoapStep):
                result = self._settled_soap_step(step, state, transport)
            elif isinstance(step, ActionStep):
                result = self._action_step(step, state)
            elif isinstance(step, HttpGetStep):
                result = self._get_step(step, state, transport)
            elif isinstance(step, PatientStep):
                result = self._patient_step(step, state)
            elif isinstance(step, PauseStep):
                # Wait past a whole second: the peer's DTM timestamps are to the second.
                self._sleep(1.1)
                result = StepResult(step=step, verdict=Verdict.PASSED, message="waited 1.1 s")
            else:
                raise TypeError(f"unknown step type {type(step).__name__}")
        except Exception as exc:  # a defect in a plan must not end the run
            result = StepResult(
                step=step,
                verdict=Verdict.ERROR,
                message=f"runner error: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}",
            )
        result.seconds = time.monotonic() - began
        return result

    def _patient_step(self, step: PatientStep, state: CaseState) -> StepResult:
        patient_id = state.patient(step.role)
        exchanges, checks = self.config.patients.load(patient_id, role=step.role)
        failed = [c for c in checks if not c.passed]
        unreachable = any(e.error for e in exchanges)
        verdict = Verdict.PASSED if not failed else (Verdict.ERROR if unreachable else Verdict.FAILED)
        return StepResult(step=step, verdict=verdict, checks=checks, exchanges=exchanges, message=patient_id)

    def _action_step(self, step: ActionStep, state: CaseState) -> StepResult:
        exchanges, checks = step.perform(state)
        failed = [c for c in checks if not c.passed]
        unreachable = any(e.error for e in exchanges)
        verdict = Verdict.PASSED if not failed else (Verdict.ERROR if unreachable else Verdict.FAILED)
        return StepResult(step=step, verdict=verdict, checks=list(checks), exchanges=list(exchanges))

    def _get_step(self, step: HttpGetStep, state: CaseState, transport: SoapTransport) -> StepResult:
        checks: list[Check] = []
        url = _guard(checks, "build request", lambda: step.url(state))
        if not isinstance(url, str):
            return StepResult(step=step, verdict=Verdict.ERROR, checks=checks, message="the URL could not be built")
        answer = transport.get(url, label=f"{step.transaction.value} {step.name}")
        if answer.exchange.error:
            checks.append(Check("reply", False, answer.exchange.error, "peer reachable"))
            return StepResult(step=step, verdict=Verdict.ERROR, checks=checks, exchanges=[answer.exchange])
        checks.append(
            Check(
                "HTTP status",
                answer.status == step.status,
                f"expected {step.status}, got {answer.status}",
                "RFC 9110 §15 (status codes); the step's TF rule",
            )
        )
        for verify in step.verify:
            found = _guard(checks, "step check", lambda v=verify: list(v(state, answer)))  # type: ignore[misc]
            if isinstance(found, list):
                checks += found
        verdict = Verdict.PASSED if all(c.passed for c in checks) else Verdict.FAILED
        return StepResult(step=step, verdict=verdict, checks=checks, exchanges=[answer.exchange])

    def _settled_soap_step(self, step: SoapStep, state: CaseState, transport: SoapTransport) -> StepResult:
        """A SOAP step, sent again while it fails for up to ``step.settle`` seconds."""
        deadline = time.monotonic() + step.settle
        attempts = 1
        result = self._soap_step(step, state, transport)
        while result.verdict is not Verdict.PASSED and time.monotonic() < deadline:
            self._sleep(SETTLE_INTERVAL)
            attempts += 1
            result = self._soap_step(step, state, transport)
        if attempts > 1:
            result.message = (result.message + "; " if result.message else "") + f"{attempts} attempts"
        return result

    def _soap_step(self, step: SoapStep, state: CaseState, transport: SoapTransport) -> StepResult:
        wire = _WIRE[step.transaction]
        checks: list[Check] = []
        body = _guard(checks, "build request", lambda: step.request(state))
        if not isinstance(body, etree._Element):
            return StepResult(step=step, verdict=Verdict.ERROR, checks=checks, message="the request could not be built")
        leaf_class = wire.is_query and _is_leaf_class(body)
        observed: list[Exchange] = []
        context = step.around(state) if step.around is not None else nullcontext(observed)
        with context as observed:
            answer = transport.send(
                wire.request_action,
                body,
                label=f"{step.transaction.value} {step.name}",
                variant=step.envelope,
                packaging=step.packaging,
            )
        exchanges = [answer.exchange, *observed]
        view = ResponseView(answer)
        if answer.tls_problem:
            # The peer answered, but its TLS handshake failed (an untrusted or wrong certificate,
            # or no TLS at all on an https:// endpoint): the peer's fault, not the runner's.
            checks.append(Check("TLS handshake", False, answer.tls_problem, TLS_RULE))
            return StepResult(step=step, verdict=Verdict.FAILED, checks=checks, exchanges=exchanges)
        if answer.exchange.error:
            checks.append(Check("reply", False, answer.problem, "peer reachable"))
            return StepResult(step=step, verdict=Verdict.ERROR, checks=checks, exchanges=exchanges)
        expect = step.expect
        if expect.fault is not None:
            checks += a.check_fault(view, expect, accept_soap11=step.envelope.soap11)
        else:
            checks += a.check_envelope(view, expected_action=wire.response_action, expected_body=wire.response_body)
            if view.body_tag == wire.response_body:
                checks.append(a.check_schema(view, self.config.schemas))
                checks += a.check_expectation(view, expect, is_query=wire.is_query)
                if leaf_class and view.status == expect.status:
                    checks += a.check_leaf_class(view)
        if view.body is not None:
            for verify in step.verify:
                found = _guard(checks, "step check", lambda v=verify: list(v(state, view)))  # type: ignore[misc]
                if isinstance(found, list):
                    checks += found
        passed = all(c.passed for c in checks)
        if passed and step.keep is not None:
            _guard(checks, "read values for later steps", lambda: step.keep(state, view))  # type: ignore[misc]
            passed = all(c.passed for c in checks)
        return StepResult(
            step=step,
            verdict=Verdict.PASSED if passed else Verdict.FAILED,
            checks=checks,
            exchanges=exchanges,
        )
