"""Jinja2 for the front ends: autoescaping always on, templates from a package directory, and
message catalogues (plain dicts per locale, no gettext build step) chosen from the ``lang``
cookie or ``Accept-Language``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2
from starlette.requests import Request

__all__ = ["Catalogue", "pick_locale", "template_environment"]


def template_environment(directory: Path) -> jinja2.Environment:
    """An environment reading ``directory``, escaping every ``{{ }}``, failing on undefined names."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Messages per locale; the first locale is the fallback for a missing key."""

    messages: Mapping[str, Mapping[str, str]]

    @property
    def locales(self) -> tuple[str, ...]:
        return tuple(self.messages)

    def gettext(self, locale: str):  # type: ignore[no-untyped-def]
        """A ``_(key, **values)`` for templates: the message in ``locale``, formatted."""
        primary = self.messages.get(locale, {})
        fallback = self.messages[self.locales[0]]

        def _(key: str, **values: object) -> str:
            text = primary.get(key) or fallback.get(key) or key
            return text.format(**values) if values else text

        return _


def pick_locale(request: Request, locales: tuple[str, ...], *, cookie: str = "lang") -> str:
    """The ``lang`` cookie if it names a known locale, else the best ``Accept-Language`` match,
    else the first locale."""
    chosen = request.cookies.get(cookie)
    if chosen in locales:
        return chosen  # type: ignore[return-value]
    header = request.headers.get("accept-language", "")
    ranked: list[tuple[float, str]] = []
    for part in header.split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.strip().lower().split("-")[0]))
    for _quality, tag in sorted(ranked, key=lambda item: -item[0]):
        if tag in locales:
            return tag
    return locales[0]
