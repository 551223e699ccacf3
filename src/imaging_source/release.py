"""Release policies: when a shared exam may go to the clearinghouse, and its release time.

The three send options of the RSNA Edge Server's share dialog (rsna-image-share §2.6; DESIGN §4
"Release policy"), chosen per share:

* ``routine``: the report is final, plus a delay (72 hours by default, configurable per site) "to
  allow your care team to communicate with you about the results";
* ``when-final``: as soon as the report is final;
* ``immediately``: now, even without a report.

A report counts as final when the RIS said so (:attr:`ExamReport.final`: OBR-25 ``F`` or ``C``).
Its time is the status-change time the RIS sent (OBR-22), else the time the Edge Server stored it
(RSNA counted the delay from ``reports.status_timestamp``, rsna-image-share §2.4).

Pure functions over an injected "now" (epoch seconds): no clock is read here.

Public API::

    ReleasePolicy.ROUTINE / .WHEN_FINAL / .IMMEDIATELY      (StrEnum, values as on the CLI)
    ReleaseDecision(ready, release_time, waiting_for, reason)
    decide(policy, report, *, shared_at, now, delay_hours) -> ReleaseDecision
    final_time(report) -> float
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

from imaging_source.model import ExamReport

__all__ = ["DEFAULT_DELAY_HOURS", "ReleaseDecision", "ReleasePolicy", "decide", "final_time"]

#: RSNA's ``job_sets.delay_in_hrs`` default (rsna-image-share §2.6).
DEFAULT_DELAY_HOURS: Final = 72.0


class ReleasePolicy(enum.StrEnum):
    """How long a shared exam waits before it is sent (rsna-image-share §2.6)."""

    ROUTINE = "routine"
    WHEN_FINAL = "when-final"
    IMMEDIATELY = "immediately"

    @property
    def needs_report(self) -> bool:
        return self is not ReleasePolicy.IMMEDIATELY


@dataclass(frozen=True, slots=True)
class ReleaseDecision:
    """Whether an exam may be sent now, when it is (or will be) released, and what it waits for.

    ``release_time`` is None while it cannot be known (no final report yet).
    """

    ready: bool
    release_time: float | None
    waiting_for: Literal["report", "release"] | None
    reason: str


def final_time(report: ExamReport) -> float:
    """The moment a final report became final: OBR-22 when sent, else when it was received."""
    return report.status_time if report.status_time is not None else report.received


def decide(
    policy: ReleasePolicy,
    report: ExamReport | None,
    *,
    shared_at: float,
    now: float,
    delay_hours: float = DEFAULT_DELAY_HOURS,
) -> ReleaseDecision:
    """Apply ``policy`` to the exam's current report at ``now``.

    ``shared_at`` is when the exam was shared (the release time of ``immediately``).
    """
    if delay_hours < 0:
        raise ValueError("the release delay cannot be negative")
    if policy is ReleasePolicy.IMMEDIATELY:
        # rsna-image-share §2.6: "Send now, even if no final report available".
        return ReleaseDecision(True, shared_at, None, "sent immediately, report or not")
    if report is None or not report.final:
        status = "no report" if report is None else f"report status {report.status or '?'}"
        return ReleaseDecision(False, None, "report", f"waiting for the final report ({status})")
    final = final_time(report)
    release = final if policy is ReleasePolicy.WHEN_FINAL else final + delay_hours * 3600.0
    if now >= release:
        return ReleaseDecision(True, release, None, "released")
    return ReleaseDecision(False, release, "release", "waiting for the release time")
