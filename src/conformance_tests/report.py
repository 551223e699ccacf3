"""Reports of a run: JUnit XML for CI, and one self-contained HTML file a tester can send to a peer.

The HTML report has its styles inline and loads nothing (no scripts, fonts, images or links to
other sites); every exchanged message is embedded, escaped, in collapsible sections.
"""

from __future__ import annotations

import html
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from lxml import etree

from conformance_tests.evidence import Exchange
from conformance_tests.model import CaseResult, Check, RunResult, StepResult, Verdict

__all__ = ["html_report", "junit_xml", "write_html", "write_junit"]


# -- JUnit XML -----------------------------------------------------------------------------------
def _step_log(result: CaseResult) -> str:
    lines = []
    for step in result.steps:
        lines.append(f"[{step.verdict.value}] {step.step.name}: {step.step.purpose}")
        lines.append(f"    expected: {step.step.expected()}")
        for check in step.checks:
            mark = "ok  " if check.passed else "FAIL"
            lines.append(
                f"    {mark} {check.name}: {check.detail}"
                + (f"  ({check.rule})" if check.rule and not check.passed else "")
            )
        if step.message:
            lines.append(f"    {step.message}")
    return "\n".join(lines)


def junit_xml(run: RunResult) -> bytes:
    """The run as JUnit XML: one testsuite per suite, one testcase per test case."""
    tally = run.tally()
    root = etree.Element(
        "testsuites",
        name=f"conformance {run.plan.actor}",
        tests=str(len(run.cases)),
        failures=str(tally[Verdict.FAILED]),
        errors=str(tally[Verdict.ERROR]),
        skipped=str(tally[Verdict.SKIPPED] + tally[Verdict.NOT_APPLICABLE]),
        time=f"{run.seconds:.3f}",
    )
    by_suite: dict[str, list[CaseResult]] = {}
    for result in run.cases:
        by_suite.setdefault(result.suite.name, []).append(result)
    for name, results in by_suite.items():
        counts = {v: sum(1 for r in results if r.verdict is v) for v in Verdict}
        suite = etree.SubElement(
            root,
            "testsuite",
            name=f"{run.plan.actor}.{name}",
            tests=str(len(results)),
            failures=str(counts[Verdict.FAILED]),
            errors=str(counts[Verdict.ERROR]),
            skipped=str(counts[Verdict.SKIPPED] + counts[Verdict.NOT_APPLICABLE]),
            time=f"{sum(r.seconds for r in results):.3f}",
            timestamp=run.started,
            hostname=platform.node() or "localhost",
        )
        properties = etree.SubElement(suite, "properties")
        for key, value in {"endpoint": run.endpoint, **run.settings}.items():
            etree.SubElement(properties, "property", name=key, value=str(value))
        for result in results:
            case = etree.SubElement(
                suite,
                "testcase",
                classname=f"conformance.{run.plan.actor}.{name}",
                name=f"{result.case.id} {result.case.title}",
                time=f"{result.seconds:.3f}",
            )
            summary = result.summary()
            if result.verdict is Verdict.FAILED:
                failure = etree.SubElement(
                    case, "failure", message=summary.splitlines()[0] if summary else "failed", type="conformance"
                )
                failure.text = summary
            elif result.verdict is Verdict.ERROR:
                error = etree.SubElement(
                    case, "error", message=summary.splitlines()[0] if summary else "error", type="runner"
                )
                error.text = summary
            elif result.verdict is Verdict.SKIPPED:
                etree.SubElement(case, "skipped", message=result.message or "skipped")
            elif result.verdict is Verdict.NOT_APPLICABLE:
                # JUnit has no "not applicable": a skip whose message says why.
                etree.SubElement(case, "skipped", type="not-applicable", message=result.message or "not applicable")
            out = etree.SubElement(case, "system-out")
            out.text = f"{result.case.tf}\n{result.case.reference}\n{_step_log(result)}"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def write_junit(run: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_xml(run))


# -- HTML ----------------------------------------------------------------------------------------
_CSS: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em;color:#222;max-width:1400px}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin:.2em 0}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.passed{color:#17702a}.failed{color:#b00020;font-weight:bold}.error{color:#8a1c8a;font-weight:bold}.skipped{color:#8a6d00}.not_applicable{color:#666}
.case{border:1px solid #ddd;border-radius:4px;padding:.6em .9em;margin:.8em 0}
.case.failed,.case.error{border-color:#b00020;background:#fff7f7}
.meta{color:#555;font-size:.9em}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.5em;overflow-x:auto;font-size:.8em;white-space:pre-wrap;word-break:break-all}
details{margin:.2em 0}summary{cursor:pointer}
ul.checks{margin:.2em 0;padding-left:1.2em;font-size:.9em}
.fail-check{color:#b00020}.ok-check{color:#17702a}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _verdict(verdict: Verdict) -> str:
    return f'<span class="{verdict.css}">{verdict.value.upper()}</span>'


def _checks(checks: Iterable[Check]) -> str:
    items = []
    for check in checks:
        css = "ok-check" if check.passed else "fail-check"
        mark = "&#10003;" if check.passed else "&#10007;"
        rule = f' <span class="meta">({_e(check.rule)})</span>' if check.rule else ""
        items.append(f'<li class="{css}">{mark} <b>{_e(check.name)}</b>: {_e(check.detail)}{rule}</li>')
    return f'<ul class="checks">{"".join(items)}</ul>' if items else ""


def _headers(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"{_e(k)}: {_e(v)}\n" for k, v in pairs)


def _exchange(exchange: Exchange) -> str:
    status = exchange.response_status or ("no reply" if exchange.error else "")
    request = f"{_e(exchange.target)}\n{_headers(exchange.request_headers)}\n{_e(exchange.request_text())}"
    response = f"{_e(status)}\n{_headers(exchange.response_headers)}"
    if exchange.error:
        response += f"error: {_e(exchange.error)}\n"
    response += f"\n{_e(exchange.response_text())}"
    return (
        f"<details><summary>{_e(exchange.protocol)} {_e(exchange.label)} &mdash; {_e(status)} "
        f'<span class="meta">{_e(exchange.started)}, {exchange.seconds * 1000:.0f} ms</span></summary>'
        f"<b>request</b><pre>{request}</pre><b>response</b><pre>{response}</pre></details>"
    )


def _step_row(number: int, result: StepResult) -> str:
    step = result.step
    failed = [c for c in result.checks if not c.passed]
    shown = _checks(failed) if failed else ""
    message = f"<pre>{_e(result.message)}</pre>" if result.message and result.verdict is not Verdict.PASSED else ""
    details = ""
    if result.checks:
        details += f"<details><summary>{len(result.checks)} checks</summary>{_checks(result.checks)}</details>"
    details += "".join(_exchange(x) for x in result.exchanges)
    return (
        f"<tr><td>{number}</td><td><b>{_e(step.name)}</b><br>{_e(step.purpose)}</td>"
        f"<td>{_e(step.transaction_label)}</td><td>{_e(step.expected())}</td>"
        f"<td>{_verdict(result.verdict)}{shown}{message}{details}</td></tr>"
    )


def _case(result: CaseResult) -> str:
    case = result.case
    rows = "".join(_step_row(n, step) for n, step in enumerate(result.steps, start=1))
    steps = (
        f"<table><tr><th>#</th><th>step</th><th>tx</th><th>expected</th><th>result</th></tr>{rows}</table>"
        if rows
        else f"<p>{_e(result.message)}</p>"
    )
    description = f"<p>{_e(case.description)}</p>" if case.description else ""
    return (
        f'<div class="case {result.verdict.css}" id="{_e(result.suite.name)}-{_e(case.id)}">'
        f"<h3>{_verdict(result.verdict)} {_e(case.id)} &mdash; {_e(case.title)}</h3>"
        f'<div class="meta">{_e(case.tf)}'
        + (f" &middot; {_e(case.reference)}" if case.reference else "")
        + f" &middot; {result.seconds:.2f} s</div>{description}{steps}</div>"
    )


def html_report(run: RunResult) -> str:
    """The whole run as one HTML document with no external resources."""
    tally = run.tally()
    settings = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
        for k, v in {
            "endpoint": run.endpoint,
            "started": run.started,
            "duration": f"{run.seconds:.1f} s",
            **run.settings,
        }.items()
    )
    patients = run.extra.get("patients") or {}
    patient_rows = "".join(
        f"<tr><th>{_e(role)}</th><td>{_e(pid)}</td><td>{_e(run.plan.patient_roles.get(role, ''))}</td></tr>"
        for role, pid in patients.items()
    )
    suites: dict[str, list[CaseResult]] = {}
    for result in run.cases:
        suites.setdefault(result.suite.name, []).append(result)
    overview = "".join(
        f"<tr><td>{_e(name)}</td>"
        + "".join(f"<td>{sum(1 for r in results if r.verdict is v)}</td>" for v in Verdict)
        + "</tr>"
        for name, results in suites.items()
    )
    index = "".join(
        f'<tr><td><a href="#{_e(r.suite.name)}-{_e(r.case.id)}">{_e(r.case.id)}</a></td><td>{_e(r.suite.name)}</td>'
        f"<td>{_e(r.case.title)}</td><td>{_verdict(r.verdict)}</td></tr>"
        for r in run.cases
    )
    body = "".join(
        f"<h2>{_e(results[0].suite.title)} ({_e(name)})</h2>" + "".join(_case(r) for r in results)
        for name, results in suites.items()
    )
    verdict = "PASSED" if run.passed else "FAILED"
    headline = ", ".join(f"{tally[v]} {v.value}" for v in Verdict)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Conformance {_e(run.plan.actor)}: {verdict}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(run.plan.title)}</h1>"
        f'<p class="{"passed" if run.passed else "failed"}">{verdict}: {_e(headline)}</p>'
        f"<table>{settings}</table>"
        + (f"<h2>Test patients</h2><table>{patient_rows}</table>" if patient_rows else "")
        + "<h2>Summary</h2><table><tr><th>suite</th>"
        + "".join(f"<th>{v.value}</th>" for v in Verdict)
        + f"</tr>{overview}</table>"
        f"<table><tr><th>test</th><th>suite</th><th>title</th><th>verdict</th></tr>{index}</table>"
        f"{body}</body></html>\n"
    )


def write_html(run: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_report(run), encoding="utf-8")
