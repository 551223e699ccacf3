"""Layered settings: defaults < TOML file < XDS_<SECTION>_* environment < flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from xds.settings import SettingsError, load_settings


@dataclass(frozen=True, kw_only=True)
class Example:
    host: str = "127.0.0.1"
    port: int = 8010
    codes: Path | None = None
    verbose: bool = False
    names: tuple[str, ...] = ()


def test_defaults() -> None:
    assert load_settings(Example, section="example", environ={}) == Example()


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    config = tmp_path / "xds.toml"
    config.write_text('[example]\nhost = "0.0.0.0"\nport = 9000\nverbose = true\nnames = ["a", "b"]\n')
    from_file = load_settings(Example, section="example", config_file=config, environ={})
    assert (from_file.host, from_file.port, from_file.verbose, from_file.names) == ("0.0.0.0", 9000, True, ("a", "b"))
    env = {"XDS_EXAMPLE_PORT": "9100", "XDS_EXAMPLE_CODES": "/tmp/codes.xml"}
    from_env = load_settings(Example, section="example", config_file=config, environ=env)
    assert (from_env.host, from_env.port, from_env.codes) == ("0.0.0.0", 9100, Path("/tmp/codes.xml"))
    from_flags = load_settings(Example, section="example", config_file=config, environ=env, overrides={"port": 9200, "host": None})
    assert (from_flags.host, from_flags.port) == ("0.0.0.0", 9200)


def test_other_sections_are_ignored(tmp_path: Path) -> None:
    config = tmp_path / "xds.toml"
    config.write_text('[other]\nport = 1\n[example]\nport = 2\n')
    assert load_settings(Example, section="example", config_file=config, environ={}).port == 2


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('[example]\nprot = 1\n', {}, "unknown setting 'prot'"),
        ('[example]\nport = "eighty"\n', {}, "not an integer"),
        ("[example\n", {}, "xds.toml"),
        ("", {"XDS_EXAMPLE_VERBOSE": "perhaps"}, "XDS_EXAMPLE_VERBOSE"),
    ],
)
def test_bad_values_name_their_source(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    config = tmp_path / "xds.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_settings(Example, section="example", config_file=config, environ=env)
