"""Layered configuration for every actor: defaults < TOML file < environment < command-line flags.

An actor declares its settings as a frozen dataclass; :func:`load_settings` fills it from a
``[section]`` of a TOML file, from ``XDS_<SECTION>_<FIELD>`` environment variables and from flags
the CLI passes explicitly (``None`` means "not given"). Values are converted to the field's type,
and an unknown key in the file is an error rather than a silent typo.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """A configuration value that cannot be used, with the source that gave it."""


def _convert(raw: Any, hint: Any, *, source: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if raw is None or raw == "":
            return None
        return _convert(raw, args[0], source=source)
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{source}: {raw!r} is not a boolean")
    if hint is int:
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{source}: {raw!r} is not an integer") from None
    if hint is float:
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{source}: {raw!r} is not a number") from None
    if hint is Path:
        return Path(str(raw)).expanduser()
    if origin is tuple:
        items = raw if isinstance(raw, list | tuple) else [x for x in str(raw).split(",") if x.strip()]
        return tuple(str(x).strip() for x in items)
    return raw if isinstance(raw, str) else str(raw)


def load_settings(
    cls: type[T],
    *,
    section: str,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Build ``cls`` from its defaults, the file's ``[section]``, ``XDS_<SECTION>_*`` variables
    and non-None ``overrides``, in that order of increasing precedence."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}

    if config_file is not None:
        try:
            document = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{config_file}: {exc}") from None
        table = document.get(section, {})
        for key, raw in table.items():
            name = key.replace("-", "_")
            if name not in names:
                raise SettingsError(f"{config_file}: [{section}] has an unknown setting {key!r}")
            values[name] = _convert(raw, hints[name], source=f"{config_file} [{section}] {key}")

    env = os.environ if environ is None else environ
    prefix = f"XDS_{section.upper()}_"
    for name in names:
        var = prefix + name.upper()
        if var in env:
            values[name] = _convert(env[var], hints[name], source=var)

    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in names:
            raise SettingsError(f"unknown setting {name!r}")
        values[name] = _convert(raw, hints[name], source=f"--{name.replace('_', '-')}")
    return cls(**values)
