"""The answer to `describe`: what this server offers, as Wyoming `info`."""

from __future__ import annotations

import functools
from importlib import metadata
from typing import TypedDict

from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Info,
    TtsProgram,
    TtsVoice,
    WakeModel,
    WakeProgram,
)

from voxwire.transports.wyoming.service import ASR, WyomingService

VOXWIRE = Attribution(name="voxwire", url="https://pypi.org/project/voxwire/")

ATTRIBUTIONS: dict[str, Attribution] = {
    "faster-whisper": Attribution(name="OpenAI Whisper", url="https://github.com/openai/whisper"),
    "transformers": Attribution(name="Hugging Face", url="https://huggingface.co/"),
    "piper": Attribution(name="Piper (rhasspy)", url="https://github.com/rhasspy/piper"),
    "openwakeword": Attribution(
        name="openWakeWord (dscripka)", url="https://github.com/dscripka/openWakeWord"
    ),
}
"""Who made the models of each backend."""

PACKAGES = {
    "faster-whisper": "faster-whisper",
    "transformers": "transformers",
    "piper": "piper-tts",
    "openwakeword": "openwakeword",
}


@functools.cache
def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


class Provenance(TypedDict):
    """Who made a program or model and which version is installed (every one is)."""

    attribution: Attribution
    installed: bool
    version: str | None


def _ours(version: str | None) -> Provenance:
    """A voxwire program's provenance."""
    return Provenance(attribution=VOXWIRE, installed=True, version=version)


def _of_backend(backend: str) -> Provenance:
    """A model's provenance: its backend's makers and the version of its package."""
    version = package_version(PACKAGES.get(backend, backend))
    return Provenance(
        attribution=ATTRIBUTIONS.get(backend, VOXWIRE), installed=True, version=version
    )


def _languages(model: object) -> list[str]:
    """The recogniser's languages when it says (`languages`), else English: the
    embedded Whisper tiny.en knows no other."""
    languages = getattr(model, "languages", None)
    return [str(x) for x in languages] if languages else ["en"]


def build_info(service: WyomingService) -> Info:
    """asr (the streaming recogniser), tts (every voice) and wake (every wake word)."""
    runtime = service.runtime
    version = package_version("voxwire")
    asr_id = runtime.defaults[ASR]
    asr_entry = runtime.catalog.get(asr_id)
    backend = asr_entry.spec.backend if asr_entry is not None else "faster-whisper"
    description = asr_entry.spec.description if asr_entry is not None else runtime.asr_name
    asr = AsrProgram(
        name="voxwire-asr",
        **_ours(version),
        description="voxwire streaming speech recognition (Silero VAD + streaming policy)",
        models=[
            AsrModel(
                name=asr_id,
                description=description or runtime.asr_name,
                **_of_backend(backend),
                languages=_languages(runtime.asr),
            )
        ],
        supports_transcript_streaming=True,
    )
    voices: list[TtsVoice] = []
    for entry in service.tts_entries():
        for name in voice_names_of(service, entry.spec.id):
            if any(v.name == name for v in voices):
                continue  # two catalogue entries on one voice: the first answers to it
            voices.append(
                TtsVoice(
                    name=name,
                    description=entry.spec.description or name,
                    **_of_backend(entry.spec.backend),
                    languages=[_voice_language(name)],
                )
            )
    tts = TtsProgram(
        name="voxwire-tts",
        **_ours(version),
        description="voxwire text to speech (Piper), audio per sentence",
        voices=voices,
        supports_synthesize_streaming=True,
    )
    words = [
        WakeModel(
            name=word,
            description=f"{word} ({entry.spec.id}; {entry.spec.licence or 'see docs/models.md'})",
            **_of_backend(entry.spec.backend),
            languages=["en"],
            phrase=word.replace("_", " "),
        )
        for word, entry in service.wake_words().items()
    ]
    wake = WakeProgram(
        name="voxwire-wake",
        **_ours(version),
        description="voxwire wake-word detection (openWakeWord)",
        models=words,
    )
    return Info(asr=[asr], tts=[tts], wake=[wake] if words else [])


def voice_names_of(service: WyomingService, model_id: str) -> list[str]:
    entry = service.runtime.catalog[model_id]
    model = entry.model
    return list(model.voices) if model is not None else [model_id]


def _voice_language(name: str) -> str:
    """`en_US` from a Piper voice name such as `en_US-joe-medium`; else `en`."""
    head = name.split("-", 1)[0]
    return head if len(head) == 5 and head[2] == "_" else "en"
