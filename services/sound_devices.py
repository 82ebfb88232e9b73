"""The local sound card for `voxwire speak` and `voxwire mic`: sounddevice, loaded only
when a device is used, so files and --no-playback work without PortAudio."""

from __future__ import annotations

from typing import Any

from voxwire.engine.errors import LocalError


class SoundDeviceUnavailable(LocalError, code="sound_device_unavailable"):
    """PortAudio (libportaudio2) is not installed."""


def import_sounddevice(hint: str) -> Any:
    """The sounddevice module, or one error ending in `hint` when PortAudio is missing."""
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library itself is missing
        raise SoundDeviceUnavailable(f"sound devices are unavailable ({exc}); {hint}") from None
    return sounddevice


def parse_device(device: str | None) -> int | str | None:
    """A sounddevice device: an index when the option is a number, else a name."""
    if device is None or not device.strip():
        return None
    return int(device) if device.strip().isdigit() else device.strip()
