"""Parsing client events and applying session.update, without sockets."""

from __future__ import annotations

import pytest

from voxwire.engine.turns import SemanticTurnOptions
from voxwire.transports.realtime.protocol import (
    AudioAppend,
    ModelCatalogue,
    ProtocolError,
    SessionConfig,
    SessionSettings,
    TurnDetectionConfig,
    apply_update,
    decode_base64_audio,
    parse_client_event,
)

CATALOGUE = ModelCatalogue(asr_name="whisper-tiny.en", multilingual=False)
BASE = SessionConfig(type="transcription", session_id="sess_x", model="whisper-tiny.en")


def update(audio_input: dict[str, object]) -> SessionConfig:
    settings = SessionSettings.model_validate({"audio": {"input": audio_input}})
    return apply_update(BASE, settings, CATALOGUE)


def test_parse_append() -> None:
    event = parse_client_event('{"type": "input_audio_buffer.append", "audio": "AAA="}')
    assert isinstance(event, AudioAppend)
    assert decode_base64_audio(event.audio) == b"\x00\x00"


def test_unknown_fields_are_ignored_as_the_sdk_sends_many() -> None:
    config = update({"noise_reduction": {"type": "near_field"}, "format": {"rate": 16000}})
    assert config.input_rate == 16000


def test_partial_update_keeps_the_rest() -> None:
    config = update({"turn_detection": {"type": "server_vad", "silence_duration_ms": 800}})
    assert config.turn_detection == TurnDetectionConfig(silence_duration_ms=800)
    assert config.input_rate == 24000
    again = apply_update(
        config,
        SessionSettings.model_validate(
            {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.7}}}}
        ),
        CATALOGUE,
    )
    assert again.turn_detection == TurnDetectionConfig(threshold=0.7, silence_duration_ms=800)


def test_semantic_vad_maps_eagerness_to_the_engine_and_back() -> None:
    config = update({"turn_detection": {"type": "semantic_vad", "eagerness": "high"}})
    options = config.session_options()
    assert options.server_vad
    assert options.semantic_turn == SemanticTurnOptions.for_eagerness("high")
    assert options.semantic_turn.max_wait_ms == 2000
    wire = config.to_wire()["audio"]["input"]["turn_detection"]
    assert wire == {
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": True,
        "interrupt_response": True,
    }
    # Without a type the update keeps semantic_vad; server_vad starts from its defaults.
    kept = apply_update(
        config,
        SessionSettings.model_validate(
            {"audio": {"input": {"turn_detection": {"eagerness": "low"}}}}
        ),
        CATALOGUE,
    )
    assert kept.session_options().semantic_turn == SemanticTurnOptions.for_eagerness("low")
    back = apply_update(
        kept,
        SessionSettings.model_validate(
            {"audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
        ),
        CATALOGUE,
    )
    assert back.turn_detection == TurnDetectionConfig()
    assert back.session_options().semantic_turn is None


def test_null_turn_detection_switches_server_vad_off_and_absent_keeps_it() -> None:
    off = update({"turn_detection": None})
    assert off.turn_detection is None
    assert not off.session_options().server_vad
    assert update({"format": {"rate": 16000}}).session_options().server_vad


def test_options_reach_the_engine() -> None:
    config = update(
        {
            "format": {"type": "audio/pcm", "rate": 48000},
            "transcription": {"model": "whisper-1", "language": "en", "prompt": "voxwire"},
            "turn_detection": {"type": "server_vad", "threshold": 0.6, "prefix_padding_ms": 200},
        }
    )
    options = config.session_options()
    assert options.input_rate == 48000
    assert options.language == "en"
    assert options.prompt == "voxwire"
    assert options.segmenter.threshold == 0.6
    assert options.segmenter.prefix_padding_ms == 200
    wire = config.to_wire()["audio"]["input"]
    assert wire["format"] == {"type": "audio/pcm", "rate": 48000}
    assert wire["turn_detection"]["threshold"] == 0.6


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("nope", "invalid_json"),
        ("3", "invalid_json"),
        ('{"type": 7}', "missing_required_parameter"),
        ('{"type": "response.explode"}', "invalid_value"),
        ('{"type": "input_audio_buffer.append", "audio": 5}', "invalid_value"),
    ],
)
def test_parse_errors_say_what_is_wrong(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_client_event(text)
    assert raised.value.code == code
    assert raised.value.message


def test_multilingual_models_take_other_languages() -> None:
    settings = SessionSettings.model_validate(
        {"audio": {"input": {"transcription": {"language": "de"}}}}
    )
    config = apply_update(BASE, settings, ModelCatalogue("whisper-small", multilingual=True))
    assert config.language == "de"
