"""Reports of a run: JUnit XML a CI server reads, a self-contained HTML report, evidence files."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from lxml import etree

from conformance_tests.evidence import Exchange, write_evidence
from conformance_tests.model import (
    CaseResult,
    Check,
    PauseStep,
    RunResult,
    StepResult,
    Suite,
    TestCase,
    TestPlan,
    Verdict,
)
from conformance_tests.report import html_report, junit_xml, write_html, write_junit

REQUEST = (
    b'<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
    b"<s:Body><q>&lt;script src='http://evil.example/x.js'&gt;</q></s:Body></s:Envelope>"
)


def _run() -> RunResult:
    step = PauseStep(name="step_one", purpose="do a thing <b>bold</b>")
    cases = {
        verdict: TestCase(id=f"T-{verdict.value}", title=f"a {verdict.value} case", tf="ITI TF-2a §3.18", steps=(step,))
        for verdict in Verdict
    }
    suite = Suite(name="demo", title="Demo suite", cases=tuple(cases.values()))
    plan = TestPlan(actor="registry", title="Demo plan", suites=(suite,))
    exchange = Exchange(
        label="ITI-18 step_one",
        protocol="HTTP",
        target="POST http://peer.example/registry",
        started="2025-01-01T00:00:00Z",
        request_headers=[("content-type", "application/soap+xml")],
        request_body=REQUEST,
        response_status="HTTP 200",
        response_body=b"<reply>see https://peer.example/help</reply>",
    )
    results = []
    for verdict, case in cases.items():
        checks = [Check("status", verdict is not Verdict.FAILED, "expected Success, got Failure", "ITI TF-3 §4.2.4")]
        step_result = StepResult(step=step, verdict=verdict, checks=checks, exchanges=[exchange])
        message = {
            Verdict.SKIPPED: "not run: prerequisite T-failed did not pass",
            Verdict.NOT_APPLICABLE: "not applicable: option 'x' not declared (--option x)",
        }.get(verdict, "")
        if verdict is Verdict.ERROR:
            step_result.message = "runner error: boom"
        results.append(
            CaseResult(suite=suite, case=case, verdict=verdict, steps=[step_result], message=message, seconds=0.5)
        )
    return RunResult(plan=plan, endpoint="http://peer.example/registry", started="2025-01-01T00:00:00Z",
                     settings={"actor": "registry"}, cases=results, seconds=2.0)  # fmt: skip


def test_junit_xml_has_one_testcase_per_case_with_the_verdict() -> None:
    root = etree.fromstring(junit_xml(_run()))
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "5", "failures": "1", "errors": "1", "skipped": "2"
    }  # fmt: skip
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "registry.demo"
    cases = {tc.get("name").split()[0]: tc for tc in suite.findall("testcase")}
    assert set(cases) == {"T-passed", "T-failed", "T-error", "T-skipped", "T-n/a"}
    assert [child.tag for child in cases["T-passed"]] == ["system-out"]
    failure = cases["T-failed"].find("failure")
    assert failure is not None and "status: expected Success, got Failure" in failure.get("message")
    assert cases["T-error"].find("error") is not None
    assert cases["T-skipped"].find("skipped").get("message") == "not run: prerequisite T-failed did not pass"
    # JUnit has no "not applicable": a skip that says so, never a pass.
    not_applicable = cases["T-n/a"].find("skipped")
    assert not_applicable.get("type") == "not-applicable"
    assert not_applicable.get("message") == "not applicable: option 'x' not declared (--option x)"
    assert "ITI TF-2a §3.18" in cases["T-passed"].findtext("system-out")
    assert {p.get("name"): p.get("value") for p in suite.iter("property")}["endpoint"] == "http://peer.example/registry"


class _Resources(HTMLParser):
    """Collects everything in an HTML document that would make a browser fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.fetches: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "data", "action") and value and not value.startswith("#"):
                self.fetches.append(f"<{tag} {name}={value}>")
        if tag in ("link", "script", "iframe", "img", "object", "embed"):
            self.fetches.append(f"<{tag}>")
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def test_the_html_report_is_self_contained_and_escapes_messages(tmp_path: Path) -> None:
    run = _run()
    text = html_report(run)
    parser = _Resources()
    parser.feed(text)
    assert parser.fetches == []
    assert parser.styles and not any(re.search(r"url\(|@import", css) for css in parser.styles)
    # Message content is shown, escaped: it cannot become markup.
    assert "&amp;lt;script src=&#x27;http://evil.example/x.js&#x27;&amp;gt;" in text
    assert "<script" not in text
    assert "do a thing &lt;b&gt;bold&lt;/b&gt;" in text
    for verdict in ("PASSED", "FAILED", "ERROR", "SKIPPED", "N/A"):
        assert verdict in text
    assert 'class="case not_applicable"' in text
    path = tmp_path / "out" / "report.html"
    write_html(run, path)
    assert path.read_text(encoding="utf-8") == text


def test_write_junit_and_evidence_files(tmp_path: Path) -> None:
    run = _run()
    write_junit(run, tmp_path / "junit.xml")
    assert etree.parse(str(tmp_path / "junit.xml")).getroot().get("tests") == "5"
    written = write_evidence(run, tmp_path / "evidence")
    assert len(written) == 10  # a request and a response file for each of the 5 cases
    request = next(p for p in written if p.name.endswith("request.txt") and "T-failed" in str(p))
    content = request.read_bytes()
    assert content.startswith(b"HTTP POST http://peer.example/registry\ncontent-type: application/soap+xml\n\n")
    assert content.endswith(REQUEST)


def test_a_run_passes_only_when_nothing_failed_or_erred() -> None:
    run = _run()
    assert not run.passed
    run.cases = [r for r in run.cases if r.verdict in (Verdict.PASSED, Verdict.SKIPPED, Verdict.NOT_APPLICABLE)]
    assert run.passed
    assert run.tally() == {
        Verdict.PASSED: 1, Verdict.FAILED: 0, Verdict.ERROR: 0, Verdict.SKIPPED: 1, Verdict.NOT_APPLICABLE: 1
    }  # fmt: skip
