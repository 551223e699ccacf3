"""The patient portal: sign in with access code + PIN, the jacket, image preview, shares for the
care team (DESIGN §2, §4). A web consumer built on :mod:`consumer`'s library."""

from consumer.web.app import build_portal_app
from consumer.web.settings import PortalSettings

__all__ = ["PortalSettings", "build_portal_app"]
