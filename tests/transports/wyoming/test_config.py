"""`[server] wyoming` in the configuration file and its checks."""

from __future__ import annotations

import pytest

from voxwire.transports.cli.config import ConfigError, parse_config, resolve


def test_wyoming_listeners_from_the_file() -> None:
    config = parse_config(
        {
            "server": {
                "wyoming": ["tcp://0.0.0.0:10300", "unix:///run/voxwire.sock"],
                "wyoming_max_connections": 4,
            }
        },
        "test.toml",
    )
    settings = resolve(config).settings
    assert settings.wyoming == ("tcp://0.0.0.0:10300", "unix:///run/voxwire.sock")
    assert settings.wyoming_max_connections == 4
    assert resolve(None).settings.wyoming == ()


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:10300", "tcp://127.0.0.1", "unix://", "stdio://"]
)
def test_unusable_uris_are_refused(uri: str) -> None:
    with pytest.raises(ConfigError, match=r"server\.wyoming"):
        parse_config({"server": {"wyoming": [uri]}}, "test.toml")
