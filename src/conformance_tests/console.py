"""Live progress in the terminal while a plan runs, and the summary table at the end (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from conformance_tests.model import CaseResult, RunResult, StepResult, Suite, TestCase, TestPlan, Verdict

__all__ = ["ConsoleListener", "summary_table"]

STYLES = {
    Verdict.PASSED: "green",
    Verdict.FAILED: "bold red",
    Verdict.ERROR: "bold magenta",
    Verdict.SKIPPED: "yellow",
    Verdict.NOT_APPLICABLE: "dim",
}


class ConsoleListener:
    """A :class:`~conformance_tests.runner.RunListener` that draws a progress bar and one line per case."""

    def __init__(self, console: Console, *, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}"),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None

    def run_started(self, plan: TestPlan, total: int) -> None:
        self.progress.start()
        self._task = self.progress.add_task(plan.actor, total=total, current="")

    def case_started(self, suite: Suite, case: TestCase) -> None:
        if self._task is not None:
            self.progress.update(self._task, current=f"{case.id} {case.title}")

    def step_finished(self, case: TestCase, result: StepResult) -> None:
        if self._task is not None:
            self.progress.update(self._task, current=f"{case.id} / {result.step.name}")
        if self.verbose and result.verdict is not Verdict.PASSED:
            for check in result.failed_checks:
                self.console.print(
                    f"    [dim]{case.id}/{result.step.name}[/] {check.name}: {check.detail}",
                    markup=True,
                    highlight=False,
                )

    def case_finished(self, result: CaseResult) -> None:
        style = STYLES[result.verdict]
        line = f"[{style}]{result.verdict.value.upper():7}[/] {result.suite.name:9} {result.case.id:20} {result.case.title}"
        self.console.print(line, highlight=False)
        if result.verdict in (Verdict.FAILED, Verdict.ERROR):
            for reason in result.summary().splitlines()[:6]:
                self.console.print(f"          [dim]{_escape(reason)}[/]", highlight=False)
        if self._task is not None:
            self.progress.advance(self._task)

    def stop(self) -> None:
        self.progress.stop()


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def summary_table(run: RunResult) -> Table:
    """Verdicts per suite, and the run total."""
    table = Table(title=f"{run.plan.title}\n{run.endpoint}", show_lines=False)
    table.add_column("suite")
    for verdict in Verdict:
        table.add_column(verdict.value, justify="right", style=STYLES[verdict])
    table.add_column("cases", justify="right")
    suites: dict[str, dict[Verdict, int]] = {}
    for result in run.cases:
        counts = suites.setdefault(result.suite.name, {v: 0 for v in Verdict})
        counts[result.verdict] += 1
    for name, counts in suites.items():
        table.add_row(name, *(str(counts[v]) for v in Verdict), str(sum(counts.values())))
    total = run.tally()
    table.add_row("[bold]total", *(f"[bold]{total[v]}" for v in Verdict), f"[bold]{sum(total.values())}")
    return table
