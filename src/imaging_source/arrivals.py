"""Arrivals per study: the C-STORE SCP records each stored instance, and a C-MOVE retrieval
waits on them with an inactivity timeout (rsna-image-share §2.4: asynchronous senders go on
after the C-MOVE response)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["ArrivalBoard"]


class ArrivalBoard:
    """Per-study arrival counts and times, shared by the C-STORE SCP and retrievals waiting on it.

    Thread-safe (the SCP stores in its association threads). ``clock`` is injectable for tests.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._counts: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def record(self, study_uid: str) -> None:
        """Note one arrival for ``study_uid`` and wake the waiters."""
        with self._cond:
            self._counts[study_uid] = self._counts.get(study_uid, 0) + 1
            self._last[study_uid] = self._clock()
            self._cond.notify_all()

    def count(self, study_uid: str) -> int:
        with self._cond:
            return self._counts.get(study_uid, 0)

    def wait(
        self,
        study_uid: str,
        *,
        until: Callable[[], bool],
        inactivity_timeout: float,
        since: float | None = None,
    ) -> bool:
        """Block until ``until()`` holds (True) or no instance of the study arrived for
        ``inactivity_timeout`` seconds (False). Each arrival restarts the timeout
        (rsna-image-share §2.4: the C-MOVE wait resets whenever an image arrives)."""
        start = self._clock() if since is None else since
        with self._cond:
            while True:
                if until():
                    return True
                last = max(start, self._last.get(study_uid, start))
                remaining = last + inactivity_timeout - self._clock()
                if remaining <= 0:
                    return until()
                self._cond.wait(timeout=min(remaining, 1.0))

    def forget(self, study_uid: str) -> None:
        with self._cond:
            self._counts.pop(study_uid, None)
            self._last.pop(study_uid, None)
