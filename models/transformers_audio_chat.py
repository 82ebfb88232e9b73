"""Native audio LLMs through transformers: the audio itself goes into the model.

:class:`TransformersAudioChat` loads a Qwen2-Audio (``Qwen2AudioForConditionalGeneration``)
or Voxtral (``VoxtralForConditionalGeneration``) model from a directory or a hub id in
the local cache (nothing is downloaded) and streams its answers like the text chat
models (:class:`~voxwire.models.transformers_chat.StreamingGenerator`).

How the prompt is built:

* Qwen2-Audio: its processor renders the chat template (an ``<|AUDIO|>`` placeholder
  per audio part), extracts the log-mel features (at most 30 s per part: the encoder's
  window) and expands each placeholder to the number of audio tokens the encoder yields.
* Voxtral: the tokenizer's chat template renders the messages, each audio part
  becoming ``[BEGIN_AUDIO]`` plus one audio token per embedding the encoder and
  projector yield (a part is padded to whole 30 s windows, as Voxtral's processor does);
  the feature extractor makes the log-mel features of each window. Checkpoints whose
  tokenizer is Mistral's own (``tekken.json``, no chat template) are not driven yet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxwire.models.errors import ModelLoadFailed
from voxwire.models.interfaces import ChatMessage
from voxwire.models.transformers_chat import (
    DEFAULT_MAX_PROMPT_TOKENS,
    StreamingGenerator,
    load_pretrained,
)
from voxwire.models.transformers_classifiers import resolve_source

SAMPLE_RATE = 16_000
WINDOW_SECONDS = 30
"""The Whisper-style audio encoders of both families read 30 s windows."""
NATIVE_AUDIO_TYPES = ("qwen2_audio", "voxtral")
"""``model_type`` values of the configs this backend loads."""


def native_audio_type(config: Any) -> str | None:
    """The family of a transformers config if it is a native audio LLM, else None."""
    model_type = getattr(config, "model_type", None)
    return model_type if model_type in NATIVE_AUDIO_TYPES else None


@dataclass(frozen=True)
class _Qwen2AudioPrompt:
    processor: Any

    def inputs(self, messages: Sequence[ChatMessage]) -> Mapping[str, Any]:
        chat: list[dict[str, Any]] = []
        audio: list[Any] = []
        for message in messages:
            parts: list[dict[str, Any]] = [{"type": "audio"} for _ in message.audio]
            audio.extend(message.audio)
            if message.text:
                parts.append({"type": "text", "text": message.text})
            chat.append({"role": message.role, "content": parts if message.audio else message.text})
        text = self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        extra: dict[str, Any] = {}
        if audio:
            extra = {"audio": list(audio), "sampling_rate": SAMPLE_RATE}
        encoded = self.processor(text=text, return_tensors="pt", **extra)
        return {k: v for k, v in encoded.items() if k != "num_audio_tokens"}


@dataclass(frozen=True)
class _VoxtralPrompt:
    tokenizer: Any
    feature_extractor: Any
    audio_token: str
    begin_audio: str
    tokens_per_window: int

    def inputs(self, messages: Sequence[ChatMessage]) -> Mapping[str, Any]:
        import torch

        chat = []
        features = []
        for message in messages:
            placeholders = ""
            for audio in message.audio:
                windows = max(1, math.ceil(len(audio) / (SAMPLE_RATE * WINDOW_SECONDS)))
                placeholders += self.begin_audio + self.audio_token * (
                    windows * self.tokens_per_window
                )
                features.append(self._features(audio))
            chat.append({"role": message.role, "content": placeholders + message.text})
        text = self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        encoded = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")
        out = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        if features:
            out["input_features"] = torch.cat(features)
        return out

    def _features(self, audio: Any) -> Any:
        """Log-mel features of `audio` padded to whole windows, one row per window."""
        window = SAMPLE_RATE * WINDOW_SECONDS
        mel = self.feature_extractor(
            audio,
            sampling_rate=SAMPLE_RATE,
            padding=True,
            truncation=False,
            pad_to_multiple_of=window,
            return_tensors="pt",
        )["input_features"]
        bins = self.feature_extractor.feature_size
        frames = self.feature_extractor.nb_max_frames
        return mel.reshape(bins, -1, frames).transpose(0, 1)


class TransformersAudioChat(StreamingGenerator):
    """:class:`~voxwire.models.interfaces.ChatModel` that hears: Qwen2-Audio or Voxtral."""

    accepts_audio = True

    def __init__(
        self,
        source: str | Path,
        *,
        name: str | None = None,
        device: str = "auto",
        max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
    ) -> None:
        from transformers.models.auto.configuration_auto import AutoConfig
        from transformers.models.auto.processing_auto import AutoProcessor

        from voxwire.models.transformers_classifiers import _device

        where = resolve_source(source)
        self.name = name if name is not None else str(source)
        self.max_prompt_tokens = max_prompt_tokens
        config = load_pretrained(AutoConfig, where, "config")
        family = native_audio_type(config)
        if family is None:
            raise ModelLoadFailed(
                f"{source!r} is a {getattr(config, 'model_type', 'unknown')!r} model, not a "
                f"native audio LLM ({', '.join(NATIVE_AUDIO_TYPES)})"
            )
        processor = load_pretrained(AutoProcessor, where, "processor")
        tokenizer = processor.tokenizer
        self.family = family
        model_class: Any
        if family == "qwen2_audio":
            from transformers.models.qwen2_audio.modeling_qwen2_audio import (
                Qwen2AudioForConditionalGeneration as model_class,
            )

            self.max_audio_seconds: float | None = float(WINDOW_SECONDS)
            self._prompt: _Qwen2AudioPrompt | _VoxtralPrompt = _Qwen2AudioPrompt(processor)
        else:
            from transformers.models.voxtral.modeling_voxtral import (
                VoxtralForConditionalGeneration as model_class,
            )

            self.max_audio_seconds = None
            self._prompt = _voxtral_prompt(config, processor, str(source))
        model = load_pretrained(model_class, where, "model")
        super().__init__(model, tokenizer, _device(device))

    def inputs(self, messages: Sequence[ChatMessage]) -> Mapping[str, Any]:
        return self._prompt.inputs(messages)


def _voxtral_prompt(config: Any, processor: Any, source: str) -> _VoxtralPrompt:
    tokenizer = processor.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise ModelLoadFailed(
            f"{source!r}: its tokenizer has no chat template (a Mistral tekken tokenizer); "
            "voxwire drives Voxtral through a transformers tokenizer with a chat template"
        )
    audio = config.audio_config
    per_window = audio.max_source_positions * audio.hidden_size // audio.intermediate_size
    begin = "[BEGIN_AUDIO]"
    if tokenizer.convert_tokens_to_ids(begin) in (None, tokenizer.unk_token_id):
        begin = ""
    return _VoxtralPrompt(
        tokenizer=tokenizer,
        feature_extractor=processor.feature_extractor,
        audio_token=tokenizer.convert_ids_to_tokens(config.audio_token_id),
        begin_audio=begin,
        tokens_per_window=per_window,
    )
