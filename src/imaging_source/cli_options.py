"""What every ``xds source`` command shares: its settings (defaults < TOML ``[source]`` <
``XDS_SOURCE_*`` < flags) and the options that locate the Edge Server's data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from imaging_source.config import SourceSettings
from xds.settings import SettingsError, load_settings

__all__ = ["STORE_OPTION", "source_options", "source_settings"]

STORE_OPTION = click.option(
    "--store", type=click.Path(file_okay=False, path_type=Path), help="DICOM store directory [default: <data-dir>/dicom]"
)
_BASE = (
    click.option("--db", help="SQLAlchemy URL of the index [default: SQLite in the data directory]"),
    click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Data directory [default: ./data]"),
    click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TOML file with a [source] section"),
)


def source_settings(config: Path | None, **flags: object) -> SourceSettings:
    """The layered settings; a bad value is a usage error naming it."""
    try:
        return load_settings(SourceSettings, section="source", config_file=config, overrides=flags)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def source_options(*extra: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A decorator adding ``extra`` options, then ``--db``, ``--data-dir`` and ``--config``."""

    def decorate(function: Any) -> Any:
        for option in reversed((*extra, *_BASE)):
            function = option(function)
        return function

    return decorate
