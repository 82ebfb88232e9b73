"""What `voxwire serve` is told (command line or configuration file), in one frozen
dataclass. It sits apart from the app so that the configuration reader and the services
can name it without importing the app; each API's router takes only the values it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxwire.services.chat import ChatLimits
from voxwire.services.media import AudioLimits
from voxwire.services.reply_openai_chat import ChatSettings
from voxwire.transports.realtime.websocket import RealtimeLimits
from voxwire.transports.webrtc.ice import IceServer

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """What `voxwire serve` is told (command line or configuration file)."""

    realtime: RealtimeLimits = field(default_factory=RealtimeLimits)
    ping_interval_s: float | None = 20.0
    """Keepalive pings on every WebSocket; None sends none."""
    ping_timeout_s: float = 20.0
    """A peer that does not answer a ping within this is disconnected (half-open TCP)."""
    max_upload_bytes: int = 25 * MiB
    """Larger request bodies get 413 without being read whole."""
    max_workflow_input_bytes: int = 20 * MiB
    audio_limits: AudioLimits = field(
        default_factory=lambda: AudioLimits(max_seconds=25 * 60.0, max_decode_seconds=30.0)
    )
    """What one uploaded or fetched audio input may decode to (OpenAI, Hugging Face and
    workflow inputs, URLs included): 25 minutes, as OpenAI's ~25 MB uploads; 1-384 kHz;
    32 channels; 30 s of decoding. Checked from the header, then while decoding (413/400)."""
    data_dir: Path = field(default_factory=lambda: Path("voxwire-data"))
    """Where workflows (SQLite) and other state persist."""
    allow_url_inputs: bool = False
    """Whether workflow inputs may be URLs the server fetches (never private addresses)."""
    url_fetch_timeout_s: float = 10.0
    api_keys: tuple[str, ...] = ()
    """Bearer keys; empty means no authentication."""
    public_metrics: bool = False
    """Serve /metrics without an API key even when keys are set (/health always is)."""
    result_cache_entries: int = 256
    """Hugging Face endpoint result cache (x-use-cache)."""
    assistant: str = "echo"
    """The reply handler of realtime sessions: echo, openai-chat or module:function."""
    chat: ChatSettings = field(default_factory=ChatSettings)
    """Where the openai-chat handler asks (base URL, model, key, timeout)."""
    chat_limits: ChatLimits = field(default_factory=ChatLimits)
    """Bounds of /v1/chat/completions (answer tokens, audio seconds and parts)."""
    ice_servers: tuple[IceServer, ...] = ()
    """STUN/TURN servers for WebRTC calls; none: host candidates only (no STUN lookup)."""
    webrtc_media_timeout_s: float = 10.0
    """A WebRTC call whose microphone track sends nothing this long is ended."""
    wyoming: tuple[str, ...] = ()
    """Where to serve Home Assistant's Wyoming protocol beside HTTP (tcp://HOST:PORT,
    unix:///PATH); none: not served."""
    wyoming_max_connections: int = 32
    """Wyoming connections at once."""

    def uvicorn_options(self) -> dict[str, Any]:
        """The uvicorn.Config keywords that carry these settings."""
        return {
            "ws": "websockets-sansio",
            "ws_max_size": self.realtime.max_message_bytes,
            "ws_ping_interval": self.ping_interval_s,
            "ws_ping_timeout": self.ping_timeout_s,
        }
