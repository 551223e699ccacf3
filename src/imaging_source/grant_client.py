"""A client of the registry's grant API (DESIGN §4): the Edge Server enrols patients, puts their
shared exams on their grants, resets PINs and revokes grants.

The API is the registry's ``/consent/grants`` (``registry.consent_http``): JSON bodies, bearer API
key, times in ISO 8601 with a zone. Errors are precise: :class:`GrantApiUnavailable` when the
registry cannot be reached or answers 5xx (try again later), :class:`GrantNotFound` for an unknown
grant, :class:`GrantApiRefused` for any other refusal (its ``status`` and the registry's message).
A PIN or an access code never appears in an exception, a ``repr`` or a log line.

Public API::

    GrantClient(base_url, api_key, *, timeout=30.0, transport=None)
        .create(*, patient_id, pin, expires, exams=()) -> IssuedGrant   # pin None: PIN-pending grant
        .get(grant_id) -> dict
        .put_exam(grant_id, study_uid, *, manifest_unique_id, report_unique_ids=(), release_time) -> dict
        .set_release_time(grant_id, study_uid, release_time) -> dict
        .withdraw_exam(grant_id, study_uid) -> dict
        .reset_pin(grant_id, pin) -> None
        .revoke(grant_id) -> int
        .close()
    ExamOnGrant(study_uid, manifest_unique_id, report_unique_ids, release_time)
    IssuedGrant(grant_id, patient_id, expires, access_code, access_code_display)
    GrantApiError, GrantApiUnavailable, GrantNotFound, GrantApiRefused
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import httpx

__all__ = [
    "ExamOnGrant",
    "GrantApiError",
    "GrantApiRefused",
    "GrantApiUnavailable",
    "GrantClient",
    "GrantNotFound",
    "IssuedGrant",
]

_MAX_MESSAGE: Final = 300


class GrantApiError(Exception):
    """The grant API did not do what was asked; ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GrantApiUnavailable(GrantApiError):
    """The registry cannot be reached, or failed (5xx): worth trying again later."""


class GrantNotFound(GrantApiError):
    """The registry knows no such grant (404)."""


class GrantApiRefused(GrantApiError):
    """The registry refused the request (4xx other than 404): trying again will not help."""


@dataclass(frozen=True, slots=True)
class ExamOnGrant:
    """One shared exam as the grant API takes it."""

    study_uid: str
    manifest_unique_id: str | None
    report_unique_ids: tuple[str, ...] = ()
    release_time: dt.datetime | None = None

    def body(self) -> dict[str, Any]:
        return {
            "manifest_unique_id": self.manifest_unique_id,
            "report_unique_ids": list(self.report_unique_ids),
            "release_time": _iso(self.release_time),
        }


@dataclass(frozen=True, slots=True)
class IssuedGrant:
    """A new grant and its access code (shown to the patient once, never stored by the Edge)."""

    grant_id: str
    patient_id: str
    expires: dt.datetime | None
    access_code: str = field(repr=False)
    access_code_display: str = field(repr=False)


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("grant API times must carry a time zone")
    return moment.isoformat()


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class GrantClient:
    """The grant API at ``base_url`` (e.g. ``http://registry:8010/consent``), bearer ``api_key``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("the grant API needs an API key (grant_api_key)")
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"authorization": f"Bearer {api_key}", "accept": "application/json"},
        )

    def __repr__(self) -> str:  # the key stays out of reprs
        return f"GrantClient({self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GrantClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        what = f"{method} {path}"
        try:
            response = self._client.request(method, self.base_url + path, json=body)
        except httpx.HTTPError as exc:
            # The request is not echoed: its body may carry a PIN.
            raise GrantApiUnavailable(f"grant API not reachable ({what}): {type(exc).__name__}") from None
        if response.status_code < 300:
            return response
        message = _message(response)
        status = response.status_code
        if status >= 500:
            raise GrantApiUnavailable(f"grant API failed ({what}): {status} {message}", status=status)
        if status == 404:
            raise GrantNotFound(f"grant API: {message}", status=status)
        raise GrantApiRefused(f"grant API refused {what}: {status} {message}", status=status)

    def _grant(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise GrantApiUnavailable("grant API answered something that is not JSON", status=response.status_code) from None
        grant = data.get("grant") if isinstance(data, dict) else None
        if not isinstance(grant, dict):
            raise GrantApiUnavailable("grant API answered without a grant", status=response.status_code)
        return grant

    @staticmethod
    def _path(grant_id: str, *rest: str) -> str:
        return "/grants/" + "/".join(quote(part, safe="") for part in (grant_id, *rest))

    # -- operations ------------------------------------------------------------------------------
    def create(
        self, *, patient_id: str, pin: str | None, expires: dt.datetime, exams: Iterable[ExamOnGrant] = ()
    ) -> IssuedGrant:
        """Enrol: a new grant for the affinity-domain ``patient_id``, with its code.

        ``pin`` None asks for a PIN-pending grant (the patient sets the PIN later in the portal):
        the body then carries no ``pin`` member at all."""
        body: dict[str, Any] = {
            "patient_id": patient_id,
            "expires": _iso(expires),
            "exams": [{"study_uid": e.study_uid, **e.body()} for e in exams],
        }
        if pin is not None:
            body["pin"] = pin
        response = self._call("POST", "/grants", body)
        grant = self._grant(response)
        data = response.json()
        code, display = data.get("access_code"), data.get("access_code_display")
        if not isinstance(code, str) or not isinstance(display, str) or not isinstance(grant.get("grant_id"), str):
            raise GrantApiUnavailable("grant API answered without an access code", status=response.status_code)
        return IssuedGrant(
            grant_id=grant["grant_id"],
            patient_id=str(grant.get("patient_id", patient_id)),
            expires=_parse_time(grant.get("expires")),
            access_code=code,
            access_code_display=display,
        )

    def get(self, grant_id: str) -> dict[str, Any]:
        return self._grant(self._call("GET", self._path(grant_id)))

    def put_exam(
        self,
        grant_id: str,
        study_uid: str,
        *,
        manifest_unique_id: str | None,
        report_unique_ids: Sequence[str] = (),
        release_time: dt.datetime | None,
    ) -> dict[str, Any]:
        """Add the exam to the grant, or replace what the grant says of it."""
        exam = ExamOnGrant(study_uid, manifest_unique_id, tuple(report_unique_ids), release_time)
        return self._grant(self._call("PUT", self._path(grant_id, "exams", study_uid), exam.body()))

    def set_release_time(self, grant_id: str, study_uid: str, release_time: dt.datetime | None) -> dict[str, Any]:
        body = {"release_time": _iso(release_time)}
        return self._grant(self._call("PUT", self._path(grant_id, "exams", study_uid, "release"), body))

    def withdraw_exam(self, grant_id: str, study_uid: str) -> dict[str, Any]:
        return self._grant(self._call("DELETE", self._path(grant_id, "exams", study_uid)))

    def reset_pin(self, grant_id: str, pin: str) -> None:
        self._call("POST", self._path(grant_id, "pin"), {"pin": pin})

    def revoke(self, grant_id: str) -> int:
        """Revoke the grant and the shares made from it; how many grants were revoked."""
        response = self._call("POST", self._path(grant_id, "revoke"))
        try:
            return int(response.json().get("revoked", 0))
        except (ValueError, AttributeError, TypeError):
            return 0


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
        text = str(data.get("error", "")) if isinstance(data, dict) else ""
    except ValueError:
        text = ""
    return (text or response.reason_phrase or "no message")[:_MAX_MESSAGE]
