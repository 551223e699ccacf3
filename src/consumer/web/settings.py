"""What the patient portal is told: where the registry, the repository and the Imaging Document
Sources are, where it may cache images, and how long sessions and shares last."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from xds.http.client import CertTypes, VerifyTypes

__all__ = ["PortalSettings"]


@dataclass(frozen=True, kw_only=True)
class PortalSettings:
    """The portal's configuration (one per app instance; no module-level state).

    ``registry_url`` is the registry's ITI-18 endpoint (``http://h:8010/registry``); the token
    and self-service URLs are derived from it (``http://h:8010/consent/...``).
    ``sources`` maps a KOS Retrieve Location UID to the RAD-69 endpoint of that Imaging Document
    Source. Images are fetched into a per-session directory under ``cache_dir``, deleted at sign
    out or when the session expires.
    """

    registry_url: str
    repository_url: str
    sources: Mapping[str, str] = field(default_factory=dict)
    cache_dir: Path = Path("data/portal-cache")
    #: OWASP Session Management: short idle limit, an absolute limit whatever the activity.
    session_idle_s: float = 15 * 60
    session_absolute_s: float = 4 * 3600
    #: A sign-in form (its pre-session) stays valid this long.
    signin_form_s: float = 15 * 60
    max_sessions: int = 10_000
    #: Default lifetime of a share for the care team, in days (the patient may pick another).
    share_days: int = 30
    #: The assertion is refreshed when it has fewer seconds than this left.
    token_refresh_margin_s: float = 60.0
    #: Network timeout of every registry, repository and RAD-69 call.
    timeout: float = 60.0
    verify: VerifyTypes = True
    cert: CertTypes = None
    #: Largest report text shown on the page (longer ones are cut, and offered as a download).
    max_report_chars: int = 100_000

    def __post_init__(self) -> None:
        if not self.registry_url.startswith(("http://", "https://")):
            raise ValueError("registry_url must be an http(s) URL")
        if not self.repository_url.startswith(("http://", "https://")):
            raise ValueError("repository_url must be an http(s) URL")
        if self.session_idle_s <= 0 or self.session_absolute_s <= 0 or self.signin_form_s <= 0:
            raise ValueError("session limits must be positive")
        if self.share_days < 1:
            raise ValueError("share_days is at least 1")
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        object.__setattr__(self, "cache_dir", Path(self.cache_dir))
