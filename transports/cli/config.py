"""`voxwire serve --config FILE`: the TOML configuration file.

```toml
[server]                      # every key optional; see examples/voxwire.toml
port = 8000
api_keys = ["sk-local-1"]

[models.whisper-small]        # a model the server offers (or replaces an embedded id)
task = "automatic-speech-recognition"
backend = "transformers"
source = "openai/whisper-small"
preload = true

[defaults]                    # the model each task uses when a request names none
asr = "whisper-small"

[assistant]                   # who writes the spoken replies of realtime sessions
handler = "openai-chat"       # echo (default), local, openai-chat or module:function
base_url = "http://127.0.0.1:8080/v1"
model = "llama-3.2-1b-instruct"
```

The file is read with tomllib and checked by pydantic models that forbid
unknown keys; every problem is reported as one line naming the file and the
key. :func:`resolve` turns the file (or no file) plus command-line overrides
into a :class:`ServeConfig`: the :class:`ServerSettings`, the model catalogue
(the embedded models with the file's models added or replacing them) and the
default model per task.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from voxwire.engine.errors import VoxwireError
from voxwire.models.errors import ModelError
from voxwire.models.registry import (
    BACKENDS,
    EMBEDDED_MODELS,
    ModelSpec,
    Task,
    chat_model_spec,
)
from voxwire.services.reply_openai_chat import ChatSettings
from voxwire.services.runtime import DEFAULT_MODEL_WAIT_S
from voxwire.transports.http.settings import MiB, ServerSettings
from voxwire.transports.realtime.websocket import RealtimeLimits
from voxwire.transports.webrtc.ice import IceServer

_SETTINGS = ServerSettings()
_LIMITS = _SETTINGS.realtime
_AUDIO = _SETTINGS.audio_limits

TASK_ALIASES: dict[str, Task] = {
    "asr": "automatic-speech-recognition",
    "vad": "voice-activity-detection",
    "tts": "text-to-speech",
    "audio_classification": "audio-classification",
    "text_classification": "text-classification",
    "speaker": "speaker-embedding",
    "speaker_embedding": "speaker-embedding",
    "chat": "text-generation",
    "text_generation": "text-generation",
    "audio_text_to_text": "audio-text-to-text",
}
"""Short names of the tasks, as `[defaults]` keys and as a model's `task`."""
CHAT_TASK: Task = "text-generation"
AUDIO_CHAT_TASK: Task = "audio-text-to-text"


class ConfigError(VoxwireError, code="invalid_config"):
    """A configuration file that cannot be read or does not validate."""


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class IceServerTable(_Table):
    """One entry of `[server] ice_servers`: a STUN or TURN server for WebRTC calls."""

    urls: str | list[str]
    username: str | None = None
    credential: str | None = None

    @model_validator(mode="after")
    def _usable(self) -> Self:
        self.server()  # raises ValueError naming the URL
        return self

    def server(self) -> IceServer:
        urls = (self.urls,) if isinstance(self.urls, str) else tuple(self.urls)
        return IceServer(urls, self.username, self.credential)


class ServerTable(_Table):
    """`[server]`: how the server listens and what it allows."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_sessions: int = Field(_LIMITS.max_sessions, ge=1)
    max_message_mb: float = Field(_LIMITS.max_message_bytes / MiB, gt=0)
    max_queued_events: int = Field(_LIMITS.max_queued_events, ge=1)
    send_timeout: float = Field(_LIMITS.send_timeout_s, gt=0)
    """Seconds a Realtime send may wait for a client that does not read; then abort."""
    ping_interval: float = Field(_SETTINGS.ping_interval_s or 0.0, ge=0)
    """Seconds between keepalive pings; 0 sends none."""
    ping_timeout: float = Field(_SETTINGS.ping_timeout_s, gt=0)
    max_upload_mb: float = Field(_SETTINGS.max_upload_bytes / MiB, gt=0)
    max_workflow_input_mb: float = Field(_SETTINGS.max_workflow_input_bytes / MiB, gt=0)
    max_audio_minutes: float = Field(_AUDIO.max_seconds / 60, gt=0)
    """Longest decoded audio of one HTTP or workflow input (longer: 413)."""
    max_decode_seconds: float = Field(_AUDIO.max_decode_seconds or 0.0, gt=0)
    """Wall-clock time decoding one input may take (longer: 413)."""
    data_dir: str = str(_SETTINGS.data_dir)
    allow_url_inputs: bool = _SETTINGS.allow_url_inputs
    url_fetch_timeout: float = Field(_SETTINGS.url_fetch_timeout_s, gt=0)
    api_keys: list[str] = Field(default_factory=list)
    public_metrics: bool = _SETTINGS.public_metrics
    result_cache_entries: int = Field(_SETTINGS.result_cache_entries, ge=0)
    ice_servers: list[IceServerTable] = Field(default_factory=list)
    """STUN/TURN servers for WebRTC; none: host candidates only."""
    webrtc_media_timeout: float = Field(_SETTINGS.webrtc_media_timeout_s, gt=0)
    """Seconds without microphone audio after which a WebRTC call ends."""
    wyoming: list[str] = Field(default_factory=list)
    """Wyoming listeners beside HTTP: tcp://HOST:PORT or unix:///PATH."""
    wyoming_max_connections: int = Field(_SETTINGS.wyoming_max_connections, ge=1)
    model_wait: float = Field(DEFAULT_MODEL_WAIT_S, gt=0)
    """Seconds a request that needs a model still loading waits for it, then 503."""

    @field_validator("wyoming")
    @classmethod
    def _wyoming_uris(cls, uris: list[str]) -> list[str]:
        from voxwire.transports.wyoming.server import check_uri

        for uri in uris:
            check_uri(uri)
            if uri.startswith("stdio:"):
                raise ValueError("stdio:// is for `voxwire wyoming` alone")
        return uris

    @field_validator("api_keys")
    @classmethod
    def _keys_are_usable(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not key or any(c.isspace() for c in key) or not key.isprintable():
                raise ValueError("a key must be non-empty printable text without spaces")
        return keys

    def settings(self) -> ServerSettings:
        """These values as the app's :class:`ServerSettings`."""
        return ServerSettings(
            realtime=RealtimeLimits(
                max_sessions=self.max_sessions,
                max_message_bytes=int(self.max_message_mb * MiB),
                max_queued_events=self.max_queued_events,
                send_timeout_s=self.send_timeout,
            ),
            ping_interval_s=self.ping_interval or None,
            ping_timeout_s=self.ping_timeout,
            max_upload_bytes=int(self.max_upload_mb * MiB),
            max_workflow_input_bytes=int(self.max_workflow_input_mb * MiB),
            audio_limits=replace(
                _AUDIO,
                max_seconds=self.max_audio_minutes * 60,
                max_decode_seconds=self.max_decode_seconds,
            ),
            data_dir=Path(self.data_dir).expanduser(),
            allow_url_inputs=self.allow_url_inputs,
            url_fetch_timeout_s=self.url_fetch_timeout,
            api_keys=tuple(dict.fromkeys(self.api_keys)),
            public_metrics=self.public_metrics,
            result_cache_entries=self.result_cache_entries,
            ice_servers=tuple(table.server() for table in self.ice_servers),
            webrtc_media_timeout_s=self.webrtc_media_timeout,
            wyoming=tuple(dict.fromkeys(self.wyoming)),
            wyoming_max_connections=self.wyoming_max_connections,
        )


class ModelTable(_Table):
    """`[models.<id>]`: one model of the catalogue."""

    task: Task
    backend: str | None = None
    """Default: the first backend that does the task (e.g. faster-whisper for ASR)."""
    source: str | None = None
    """A local path or a hub id; none for the backend's embedded model."""
    device: str = "auto"
    preload: bool = False
    """Load at start-up rather than on first use."""
    description: str = ""
    licence: str = ""

    @model_validator(mode="before")
    @classmethod
    def _short_task_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("task") in TASK_ALIASES:
            return {**data, "task": TASK_ALIASES[data["task"]]}
        return data

    @model_validator(mode="after")
    def _backend_does_the_task(self) -> Self:
        offered = BACKENDS[self.task]
        if self.backend is not None and self.backend not in offered:
            raise ValueError(
                f"backend {self.backend!r} does not do {self.task}; "
                f"choose one of {', '.join(offered)}"
            )
        return self

    def spec(self, model_id: str) -> ModelSpec:
        """This table as the catalogue's :class:`ModelSpec`."""
        return ModelSpec(
            model_id,
            self.task,
            self.backend or BACKENDS[self.task][0],
            source=self.source,
            device=self.device,
            description=self.description,
            licence=self.licence,
        )


def _task_field(short: str) -> Any:
    return Field(None, validation_alias=AliasChoices(short, TASK_ALIASES[short]))


class DefaultsTable(_Table):
    """`[defaults]`: the model id each task uses when a request names none."""

    asr: str | None = _task_field("asr")
    vad: str | None = _task_field("vad")
    tts: str | None = _task_field("tts")
    audio_classification: str | None = _task_field("audio_classification")
    text_classification: str | None = _task_field("text_classification")
    speaker: str | None = _task_field("speaker")
    chat: str | None = _task_field("chat")
    """The chat model: a text model (the cascade) or a native audio LLM."""

    def by_task(self) -> dict[str, str]:
        """The defaults that are set, keyed by task."""
        return {
            TASK_ALIASES[name]: value
            for name, value in self.model_dump().items()
            if value is not None
        }


_CHAT = ChatSettings()


class AssistantTable(_Table):
    """`[assistant]`: what writes the spoken replies of realtime sessions."""

    handler: str = _SETTINGS.assistant
    """echo, local, openai-chat or module:function."""
    base_url: str = _CHAT.base_url
    """openai-chat: the OpenAI-compatible API's base URL (ending in /v1)."""
    model: str = _CHAT.model
    api_key: str | None = None
    timeout: float = Field(_CHAT.timeout_s, gt=0)
    """Seconds to wait to connect and between two streamed chunks."""
    max_history: int = Field(_CHAT.max_history, ge=0)
    temperature: float | None = Field(None, ge=0, le=2)

    @field_validator("handler")
    @classmethod
    def _known_form(cls, value: str) -> str:
        if value not in ("echo", "local", "openai-chat") and ":" not in value:
            raise ValueError(f"{value!r}: expected echo, local, openai-chat or module:function")
        return value

    def chat(self) -> ChatSettings:
        return ChatSettings(
            base_url=self.base_url,
            model=self.model,
            api_key=self.api_key,
            timeout_s=self.timeout,
            max_history=self.max_history,
            temperature=self.temperature,
        )


class ConfigFile(_Table):
    """The whole file; every table is optional."""

    server: ServerTable = Field(default_factory=ServerTable)
    assistant: AssistantTable = Field(default_factory=AssistantTable)
    models: dict[str, ModelTable] = Field(default_factory=dict)
    defaults: DefaultsTable = Field(default_factory=DefaultsTable)


@dataclass(frozen=True)
class ServeConfig:
    """Everything `voxwire serve` needs besides the command line's model option."""

    host: str
    port: int
    settings: ServerSettings
    specs: tuple[ModelSpec, ...]
    """The catalogue: embedded models, replaced or extended by the file's."""
    defaults: dict[str, str]
    """Default model id per task, as the file set them."""
    preload: tuple[str, ...]
    """Model ids to load at start-up."""
    source: str = "built-in defaults"
    """Where the configuration came from, for messages."""
    model_wait_s: float = DEFAULT_MODEL_WAIT_S
    """How long a request waits for a model still loading before a 503."""


def read_config(path: Path) -> ConfigFile:
    """Read and validate a configuration file; :class:`ConfigError` names file and key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.__class__.__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, str(path))


def parse_config(data: Mapping[str, Any], source: str) -> ConfigFile:
    """Validate already parsed TOML; `source` names it in errors."""
    for model_id in data.get("models", {}) if isinstance(data.get("models"), dict) else {}:
        if not model_id or model_id != model_id.strip() or "/" in model_id:
            raise ConfigError(f"{source}: models.{model_id!r}: not a usable model id")
    try:
        return ConfigFile.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(describe_validation(exc, source)) from None


def describe_validation(error: ValidationError, source: str) -> str:
    """One line naming `source`, each offending key and what is wrong with it."""
    problems = []
    for item in error.errors(include_url=False):
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{key}: {message}")
    return f"{source}: " + "; ".join(problems)


def resolve(
    config: ConfigFile | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
    assistant: Mapping[str, Any] | None = None,
) -> ServeConfig:
    """The file's values (or the defaults) with `overrides` ([server] keys from the
    command line) and `assistant` ([assistant] keys) on top, checked against the
    catalogue."""
    config = config or ConfigFile()
    label = source or "built-in defaults"
    server = _merged(config.server, overrides)
    replies = _merged(config.assistant, assistant)
    specs = {spec.id: spec for spec in EMBEDDED_MODELS}
    for model_id, table in config.models.items():
        specs[model_id] = table.spec(model_id)
    defaults = config.defaults.by_task()
    for task, model_id in defaults.items():
        short = next(name for name, full in TASK_ALIASES.items() if full == task)
        spec = specs.get(model_id)
        if spec is None:
            offered = ", ".join(s.id for s in specs.values() if s.task == task) or "none"
            raise ConfigError(
                f"{label}: defaults.{short}: unknown model {model_id!r} (offered: {offered})"
            )
        if spec.task != task and not (task == CHAT_TASK and spec.task == AUDIO_CHAT_TASK):
            raise ConfigError(
                f"{label}: defaults.{short}: model {model_id!r} does {spec.task}, not {task}"
            )
    return ServeConfig(
        host=server.host,
        port=server.port,
        settings=replace(server.settings(), assistant=replies.handler, chat=replies.chat()),
        specs=tuple(specs.values()),
        defaults=defaults,
        preload=tuple(model_id for model_id, table in config.models.items() if table.preload),
        source=label,
        model_wait_s=server.model_wait,
    )


TableT = TypeVar("TableT", bound=_Table)


def _merged(table: TableT, overrides: Mapping[str, Any] | None) -> TableT:
    """`table` with command-line values on top (validated as the file is)."""
    if not overrides:
        return table
    merged = {**table.model_dump(exclude_unset=True), **overrides}
    try:
        return type(table).model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(describe_validation(exc, "command line")) from None


def with_chat_model(plan: ServeConfig, source: str | None) -> ServeConfig:
    """`plan` whose default chat model is `--chat-model SOURCE` (a .gguf file, or a model
    directory or cached hub id: a native audio LLM or a text chat model), preloaded."""
    if source is None:
        return plan
    try:
        spec = chat_model_spec(source)
    except ModelError as exc:
        raise ConfigError(f"--chat-model: {exc}") from None
    specs = {s.id: s for s in plan.specs}
    specs[spec.id] = spec
    return replace(
        plan,
        specs=tuple(specs.values()),
        defaults={**plan.defaults, CHAT_TASK: spec.id},
        preload=(*plan.preload, spec.id),
    )


def load(path: Path | None, overrides: Mapping[str, Any] | None = None) -> ServeConfig:
    """`resolve` on the file at `path` (None: no file)."""
    if path is None:
        return resolve(None, overrides)
    return resolve(read_config(path), overrides, source=str(path))
