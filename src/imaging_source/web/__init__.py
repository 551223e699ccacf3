"""The Edge Server's staff console (DESIGN §2 ``imaging_source/web``): staff sign in, find a
patient, enrol them (access code, PIN at a keypad or later in the portal, code sheet), share
exams from the jacket under a release policy, watch and retry share jobs, read the audit trail.

Public API::

    build_console_app(settings, *, engine=None, store=None, grant_client=None, sessions=None,
                      clock=time.time, password_params=DEFAULT_PARAMS) -> Starlette
"""

from imaging_source.web.app import build_console_app

__all__ = ["build_console_app"]
