"""The TOML configuration file: parsing, errors naming file and key, overrides, and
`voxwire serve --config` as a user runs it (preloads, a failing model, keys)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.e2e.console import VOXWIRE, run
from tests.e2e.test_cli_serve import free_port, wait_for_health
from voxwire.models.registry import EMBEDDED_MODELS, TASKS
from voxwire.transports.cli.config import (
    TASK_ALIASES,
    ConfigError,
    ServeConfig,
    load,
    parse_config,
    read_config,
    resolve,
    with_chat_model,
)
from voxwire.transports.cli.serve import start_runtime
from voxwire.transports.http.settings import MiB, ServerSettings

EXAMPLE = Path(__file__).parents[3] / "examples" / "voxwire.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "voxwire.toml"
    path.write_text(text)
    return path


def test_no_file_gives_the_built_in_defaults() -> None:
    plan = load(None)
    assert isinstance(plan, ServeConfig)
    assert (plan.host, plan.port) == ("127.0.0.1", 8000)
    assert plan.settings == ServerSettings()
    assert plan.specs == EMBEDDED_MODELS
    assert plan.defaults == {} and plan.preload == ()
    assert set(TASK_ALIASES.values()) == set(TASKS)


def test_the_example_file_parses(tmp_path: Path) -> None:
    plan = load(EXAMPLE)
    ids = [spec.id for spec in plan.specs]
    assert ids[: len(EMBEDDED_MODELS)] == [spec.id for spec in EMBEDDED_MODELS]
    assert {"whisper-small", "joe"} <= set(ids)
    small = next(spec for spec in plan.specs if spec.id == "whisper-small")
    assert (small.task, small.backend, small.source) == (
        "automatic-speech-recognition",
        "transformers",
        "openai/whisper-small",
    )
    assert plan.defaults == {
        "automatic-speech-recognition": "whisper-tiny.en",
        "text-to-speech": "joe",
    }
    assert plan.preload == ("joe",)
    assert plan.settings == ServerSettings()  # the example shows the defaults


def test_server_table_becomes_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[server]
host = "0.0.0.0"
port = 9001
max_sessions = 3
max_message_mb = 1
ping_interval = 0
max_upload_mb = 0.5
data_dir = "/tmp/vw"
allow_url_inputs = true
api_keys = ["a", "b", "a"]
public_metrics = true
""",
    )
    plan = load(path)
    s = plan.settings
    assert (plan.host, plan.port) == ("0.0.0.0", 9001)
    assert s.realtime.max_sessions == 3 and s.realtime.max_message_bytes == MiB
    assert s.ping_interval_s is None
    assert s.max_upload_bytes == MiB // 2
    assert s.data_dir == Path("/tmp/vw") and s.allow_url_inputs
    assert s.api_keys == ("a", "b") and s.public_metrics


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9001\nmax_sessions = 3\napi_keys = ['file']\n")
    plan = load(path, {"port": 9100, "api_keys": ["cli"]})
    assert plan.port == 9100
    assert plan.settings.realtime.max_sessions == 3
    assert plan.settings.api_keys == ("cli",)


def test_model_wait_from_the_file_and_the_command_line_reaches_the_runtime(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "[server]\nmodel_wait = 5\n")
    assert resolve().model_wait_s == 30.0
    assert load(path).model_wait_s == 5.0
    plan = load(path, {"model_wait": 2.5})
    assert plan.model_wait_s == 2.5
    runtime = start_runtime(plan, None)
    try:
        assert runtime.model_wait_s == 2.5
    finally:
        runtime.close()
    with pytest.raises(ConfigError, match=r"command line: model_wait: "):
        load(path, {"model_wait": 0})


def test_a_config_model_replaces_an_embedded_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[models.piper-joe]
task = "text-to-speech"
source = "/voices/other.onnx"
[models."my.vad"]
task = "vad"
""",
    )
    plan = load(path)
    ids = [spec.id for spec in plan.specs]
    assert ids.count("piper-joe") == 1 and "my.vad" in ids
    joe = next(spec for spec in plan.specs if spec.id == "piper-joe")
    assert (joe.backend, joe.source) == ("piper", "/voices/other.onnx")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nprot = 1\n", "server.prot: unknown key"),
        ("[server]\nport = 'x'\n", "server.port: Input should be a valid integer"),
        ("[server]\nport = 70000\n", "server.port: Input should be less than or equal to 65535"),
        ("[server]\napi_keys = ['has space']\n", "server.api_keys: a key must be non-empty"),
        ("[serve]\nport = 1\n", "serve: unknown key"),
        ("[models.x]\nbackend = 'piper'\n", "models.x.task: required key is missing"),
        ("[models.x]\ntask = 'tts'\nbackend = 'vader'\n", "models.x: backend 'vader' does not"),
        ("[models.x]\ntask = 'dance'\n", "models.x.task: Input should be"),
        ("[models.x]\ntask = 'tts'\npreload = 'yes'\n", "models.x.preload: Input should be"),
        ("[defaults]\nstt = 'x'\n", "defaults.stt: unknown key"),
        ("[defaults]\ntts = 'nope'\n", "defaults.tts: unknown model 'nope' (offered: piper-joe)"),
        ("[defaults]\nasr = 'vader'\n", "defaults.asr: model 'vader' does text-classification"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = caught.value.message
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
    assert "\n" not in message


def test_missing_file_and_bad_model_ids(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        read_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not a usable model id"):
        parse_config({"models": {"a/b": {"task": "tts"}}}, "f.toml")
    with pytest.raises(ConfigError, match="command line: max_sessions"):
        resolve(None, {"max_sessions": 0})


def test_full_task_names_work_as_defaults_keys(tmp_path: Path) -> None:
    path = write(tmp_path, '[defaults]\n"text-to-speech" = "piper-joe"\n')
    assert load(path).defaults == {"text-to-speech": "piper-joe"}


def test_a_native_audio_llm_can_be_the_default_chat_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[models.qwen2-audio]
task = "audio_text_to_text"
source = "/models/Qwen2-Audio-7B-Instruct"
[defaults]
chat = "qwen2-audio"
""",
    )
    plan = load(path)
    qwen = next(spec for spec in plan.specs if spec.id == "qwen2-audio")
    assert (qwen.task, qwen.backend) == ("audio-text-to-text", "transformers")
    assert plan.defaults == {"text-generation": "qwen2-audio"}
    path = write(tmp_path, '[defaults]\nchat = "vader"\n')
    with pytest.raises(ConfigError, match=r"defaults.chat: model .vader. does text-classification"):
        load(path)


def test_chat_model_option_reads_the_model_config(tmp_path: Path) -> None:
    from transformers.models.qwen2_audio import Qwen2AudioConfig

    Qwen2AudioConfig().save_pretrained(tmp_path / "qwen")
    plan = with_chat_model(resolve(), str(tmp_path / "qwen"))
    spec = next(spec for spec in plan.specs if spec.id == "qwen")
    assert spec.task == "audio-text-to-text" and spec.source == str(tmp_path / "qwen")
    assert plan.defaults["text-generation"] == "qwen" and "qwen" in plan.preload
    with pytest.raises(ConfigError, match=r"--chat-model: .*not in the local Hugging Face cache"):
        with_chat_model(resolve(), "voxwire-tests/not-cached")


# -- voxwire serve --config, as a user runs it ------------------------------------------------


@pytest.mark.slow
def test_serve_with_a_config_preloads_and_takes_command_line_overrides(tmp_path: Path) -> None:
    """The file sets the port (overridden), the session limit, a preloaded model and a
    key; VOXWIRE_API_KEYS replaces the file's key."""
    port = free_port()
    path = write(
        tmp_path,
        """
[server]
port = 1
max_sessions = 5
api_keys = ["file-key"]
[models.sentiment]
task = "text-classification"
backend = "vader"
preload = true
[defaults]
text_classification = "sentiment"
""",
    )
    process = subprocess.Popen(
        [str(VOXWIRE), "serve", "--config", str(path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "VOXWIRE_API_KEYS": "env-key-1,env-key-2"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        health = wait_for_health(url, process)
        assert health["realtime_sessions"]["max"] == 5
        metrics = url + "/metrics"
        assert httpx.get(metrics, headers={"Authorization": "Bearer env-key-2"}).status_code == 200
        assert httpx.get(metrics, headers={"Authorization": "Bearer file-key"}).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert "Traceback" not in err
    assert "loaded sentiment (text-classification) in" in err
    assert "2 API key(s) needed (/health open, /metrics needs a key)" in err


def test_serve_with_a_model_that_fails_to_preload_exits_in_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[models.broken]
task = "tts"
source = "/no/such/voice.onnx"
preload = true
""",
    )
    result = run("serve", "--config", path, "--port", str(free_port()))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if "error" in line]
    assert len(lines) == 1, result.stderr
    assert "model 'broken'" in lines[0] and "voice.onnx" in lines[0]


def test_wyoming_with_an_asr_model_that_fails_to_load_exits_in_one_line(tmp_path: Path) -> None:
    """The listener is up when the recogniser fails to load: the command stops anyway,
    with one error line and exit code 1, rather than serving without it."""
    broken = tmp_path / "broken-whisper"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"not a CTranslate2 model")
    path = write(
        tmp_path,
        f"""
[models.broken]
task = "asr"
source = "{broken}"
[defaults]
asr = "broken"
""",
    )
    result = run("wyoming", "--config", path, "--uri", f"tcp://127.0.0.1:{free_port()}")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if "error" in line]
    assert len(lines) == 1, result.stderr
    assert "model 'broken' failed to load" in lines[0]


def test_serve_with_a_bad_config_exits_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nmax_sesions = 4\n")
    result = run("serve", "--config", path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"voxwire: error: {path}: server.max_sesions: unknown key"


def test_assistant_table_and_command_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[assistant]
handler = "openai-chat"
base_url = "http://127.0.0.1:9/v1"
model = "tiny"
timeout = 2.5
""",
    )
    plan = resolve(read_config(path), assistant={"model": "other", "api_key": "sk-1"})
    assert plan.settings.assistant == "openai-chat"
    chat = plan.settings.chat
    assert (chat.base_url, chat.model, chat.api_key, chat.timeout_s) == (
        "http://127.0.0.1:9/v1",
        "other",
        "sk-1",
        2.5,
    )
    assert resolve(None, assistant={"handler": "tests.assistants:scripted"}).settings.assistant
    for bad in ['handler = "parrot"', "timeout = 0", "colour = 1"]:
        with pytest.raises(ConfigError, match="assistant"):
            read_config(write(tmp_path, f"[assistant]\n{bad}\n"))
    with pytest.raises(ConfigError, match="command line"):
        resolve(None, assistant={"handler": "parrot"})
