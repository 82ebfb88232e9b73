"""Any Hugging Face Whisper or CTC speech-recognition model through transformers.

``TransformersAsr("openai/whisper-small")`` or ``TransformersAsr("/models/my-w2v2")``.
A local directory (or ``HF_HUB_OFFLINE=1``) loads with ``local_files_only``;
nothing here downloads when the hub is unreachable, it raises
:class:`~voxwire.models.errors.ModelNotFoundError` instead.

torch and transformers are imported lazily, on construction. Audio arrives as
float32 16 kHz numpy already, so no torchaudio or ffmpeg is needed.

Whisper models: :meth:`TransformersAsr.decode` builds the decoder start
sequence itself (``<|startofprev|>`` + prompt, ``<|startoftranscript|>``,
language, task, ``<|notimestamps|>``, then the forced ``prefix`` tokens) and
runs plain sequence-to-sequence generation, so both ``prompt`` and ``prefix``
are honoured. Requests with the same start-sequence length are batched.
:meth:`TransformersAsr.transcribe` decodes consecutive 30 s chunks, each
conditioned on the previous chunk's text, one segment per chunk (no
timestamps inside a chunk, no word timings).

CTC models: ``prompt`` is ignored and ``prefix`` cannot be forced (a CTC
model has no decoder); the result is the model's own hypothesis. Word timings
come from the CTC alignment and are returned when ``word_timestamps`` is asked for.

Thread-safety: one instance is used from one worker thread at a time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from voxwire.models.errors import ModelLoadFailed, ModelNotFoundError
from voxwire.models.interfaces import (
    SAMPLE_RATE,
    AudioArray,
    DecodeRequest,
    DecodeResult,
    Segment,
    TranscribeOptions,
    Transcription,
    Word,
    flat_float32,
)

CHUNK_SECONDS = 30
"""Long audio is transcribed in chunks of this many seconds."""

MAX_TOKENS_PER_SECOND = 8.0
MAX_TOKENS_SLACK = 10
PROMPT_MAX_TOKENS = 64
WHISPER_MAX_TARGET_POSITIONS = 448

Kind = Literal["whisper", "ctc"]


def _is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


class TransformersAsr:
    """:class:`~voxwire.models.interfaces.AsrModel` on a transformers Whisper or CTC model."""

    supports_batching: bool = True
    max_batch_size: int = 8
    max_concurrency: int = 1

    def __init__(
        self,
        model_id_or_path: str | Path,
        device: str = "auto",
        *,
        name: str | None = None,
    ) -> None:
        import torch
        import transformers

        source = str(model_id_or_path)
        local = Path(source).expanduser()
        local_only = local.is_dir() or _is_offline()
        if local.is_dir():
            source = str(local)
        self.name = name if name is not None else source
        self.source = source
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self._torch = torch

        try:
            config = transformers.AutoConfig.from_pretrained(source, local_files_only=local_only)
        except (OSError, ValueError) as exc:
            where = "local directory" if local.is_dir() else "model id"
            hint = (
                ""
                if local.is_dir()
                else " (the hub is not used offline; pass a local directory instead)"
            )
            raise ModelNotFoundError(
                f"cannot find a transformers speech model at {where} {source!r}{hint}: {exc}"
            ) from exc
        self.kind: Kind = self._kind_of(config)
        try:
            processor_cls: Any = transformers.AutoProcessor
            self.processor: Any = processor_cls.from_pretrained(source, local_files_only=local_only)
            model_cls: Any = (
                transformers.AutoModelForSpeechSeq2Seq
                if self.kind == "whisper"
                else transformers.AutoModelForCTC
            )
            dtype = torch.float16 if device.startswith("cuda") else torch.float32
            self.model: Any = model_cls.from_pretrained(
                source, local_files_only=local_only, dtype=dtype
            )
        except OSError as exc:
            raise ModelNotFoundError(f"incomplete model files for {source!r}: {exc}") from exc
        except Exception as exc:
            raise ModelLoadFailed(f"cannot load {source!r}: {exc}") from exc
        self.model.to(device)
        self.model.eval()
        self._dtype = dtype
        self.tokenizer: Any = self.processor.tokenizer
        self.feature_extractor: Any = self.processor.feature_extractor
        if self.kind == "whisper":
            self._init_whisper()

    @staticmethod
    def _kind_of(config: Any) -> Kind:
        model_type = str(getattr(config, "model_type", ""))
        architectures = [str(a) for a in (getattr(config, "architectures", None) or [])]
        if model_type == "whisper" or any("Whisper" in a for a in architectures):
            return "whisper"
        if any(a.endswith("ForCTC") for a in architectures) or model_type in {
            "wav2vec2",
            "hubert",
            "wavlm",
            "data2vec-audio",
            "sew",
            "sew-d",
            "unispeech",
            "unispeech-sat",
            "wav2vec2-conformer",
            "mctct",
        }:
            return "ctc"
        raise ModelLoadFailed(
            f"model type {model_type!r} ({', '.join(architectures) or 'no architectures'}) "
            "is neither Whisper nor CTC speech recognition"
        )

    # ------------------------------------------------------------------ whisper

    def _init_whisper(self) -> None:
        tok = self.tokenizer

        def special(token: str) -> int | None:
            ids = tok.convert_tokens_to_ids(token)
            if ids is None or tok.convert_ids_to_tokens(int(ids)) != token:
                return None
            return int(ids)

        sot = special("<|startoftranscript|>")
        eot = special("<|endoftext|>")
        if sot is None or eot is None:
            raise ModelLoadFailed(f"{self.source!r}: tokenizer lacks Whisper special tokens")
        self._sot = sot
        self._eot = eot
        self._sot_prev = special("<|startofprev|>")
        self._no_timestamps = special("<|notimestamps|>")
        self._transcribe = special("<|transcribe|>")
        self._translate = special("<|translate|>")
        vocab_size = int(getattr(self.model.config, "vocab_size", 0))
        self.multilingual = vocab_size >= 51865 and special("<|en|>") is not None
        self._special = special
        self._max_length = int(
            getattr(self.model.config, "max_target_positions", WHISPER_MAX_TARGET_POSITIONS)
        )

    def _whisper_start(self, prompt: str, language: str | None, task: str) -> list[int]:
        ids: list[int] = []
        if prompt.strip() and self._sot_prev is not None:
            previous = self.tokenizer.encode(" " + prompt.strip(), add_special_tokens=False)
            ids += [self._sot_prev, *previous[-PROMPT_MAX_TOKENS:]]
        ids.append(self._sot)
        if self.multilingual:
            lang = self._special(f"<|{language or 'en'}|>")
            if lang is not None:
                ids.append(lang)
            task_id = self._translate if task == "translate" else self._transcribe
            if task_id is not None:
                ids.append(task_id)
        if self._no_timestamps is not None:
            ids.append(self._no_timestamps)
        return ids

    def _whisper_features(self, clips: Sequence[AudioArray]) -> Any:
        feats = self.feature_extractor(
            [np.asarray(c, dtype=np.float32) for c in clips],
            sampling_rate=SAMPLE_RATE,
            return_tensors="pt",
        ).input_features
        return feats.to(self.device, dtype=self._dtype)

    def _whisper_generate(
        self,
        clips: Sequence[AudioArray],
        starts: Sequence[list[int]],
        prefixes: Sequence[list[int]],
        beam_size: int,
    ) -> list[list[int]]:
        """Generate for rows whose start+prefix sequences have equal length."""
        from transformers import GenerationMixin

        torch = self._torch
        features = self._whisper_features(clips)
        decoder_ids = torch.tensor(
            [s + p for s, p in zip(starts, prefixes, strict=True)],
            dtype=torch.long,
            device=self.device,
        )
        longest = max(len(c) for c in clips) / SAMPLE_RATE
        budget = int(np.ceil(MAX_TOKENS_PER_SECOND * longest)) + MAX_TOKENS_SLACK
        budget = max(1, min(budget, self._max_length - decoder_ids.shape[1]))
        with torch.inference_mode():
            out = GenerationMixin.generate(
                self.model,
                input_features=features,
                decoder_input_ids=decoder_ids,
                max_new_tokens=budget,
                num_beams=max(1, beam_size),
                do_sample=False,
                eos_token_id=self._eot,
                pad_token_id=self._eot,
                forced_decoder_ids=None,
                begin_suppress_tokens=None,
            )
        sequences = out.sequences if hasattr(out, "sequences") else out
        result: list[list[int]] = []
        for row, start in enumerate(starts):
            tokens = [int(t) for t in sequences[row, len(start) :].tolist()]
            text_tokens: list[int] = []
            for t in tokens:
                if t == self._eot:
                    break
                if t < self._eot:
                    text_tokens.append(t)
            result.append(text_tokens)
        return result

    def _whisper_decode(self, requests: Sequence[DecodeRequest]) -> list[DecodeResult]:
        results: list[DecodeResult | None] = [None] * len(requests)
        groups: dict[tuple[int, int], list[int]] = {}
        starts: list[list[int]] = []
        prefixes: list[list[int]] = []
        for i, req in enumerate(requests):
            start = self._whisper_start(req.prompt, req.language, "transcribe")
            prefix = (
                self.tokenizer.encode(" " + req.prefix.strip(), add_special_tokens=False)
                if req.prefix.strip()
                else []
            )
            starts.append(start)
            prefixes.append(prefix)
            groups.setdefault((len(start) + len(prefix), req.beam_size), []).append(i)
        for (_, beam), indices in groups.items():
            for b in range(0, len(indices), self.max_batch_size):
                chunk = indices[b : b + self.max_batch_size]
                began = time.perf_counter()
                tokens = self._whisper_generate(
                    [flat_float32(requests[i].audio) for i in chunk],
                    [starts[i] for i in chunk],
                    [prefixes[i] for i in chunk],
                    beam,
                )
                share = (time.perf_counter() - began) / len(chunk)
                for i, toks in zip(chunk, tokens, strict=True):
                    text = self.tokenizer.decode(prefixes[i] + toks, skip_special_tokens=True)
                    results[i] = DecodeResult(
                        text=str(text).strip(),
                        compute_seconds=share,
                        audio_seconds=len(requests[i].audio) / SAMPLE_RATE,
                    )
        return [r if r is not None else DecodeResult(text="") for r in results]

    # ---------------------------------------------------------------------- ctc

    def _ctc_run(
        self, clips: Sequence[AudioArray], with_words: bool
    ) -> list[tuple[str, tuple[Word, ...]]]:
        torch = self._torch
        inputs = self.feature_extractor(
            [np.asarray(c, dtype=np.float32) for c in clips],
            sampling_rate=SAMPLE_RATE,
            return_tensors="pt",
            padding=True,
        )
        values = inputs.input_values.to(self.device, dtype=self._dtype)
        with torch.inference_mode():
            logits = self.model(values).logits
        ids = torch.argmax(logits, dim=-1).cpu().numpy()
        ratio = float(getattr(self.model.config, "inputs_to_logits_ratio", 320))
        out: list[tuple[str, tuple[Word, ...]]] = []
        for row, clip in enumerate(clips):
            duration = len(clip) / SAMPLE_RATE
            frames = max(1, int(np.ceil(len(clip) / ratio)))
            row_ids = ids[row, :frames].tolist()
            if with_words:
                decoded = self.tokenizer.decode(
                    row_ids, output_word_offsets=True, skip_special_tokens=True
                )
                text = str(decoded.text)
                words = tuple(
                    Word(
                        word=str(w["word"]),
                        start=min(duration, float(w["start_offset"]) * ratio / SAMPLE_RATE),
                        end=min(duration, float(w["end_offset"]) * ratio / SAMPLE_RATE),
                    )
                    for w in (decoded.word_offsets or [])
                )
            else:
                text = str(self.tokenizer.decode(row_ids, skip_special_tokens=True))
                words = ()
            out.append((text.strip(), words))
        return out

    def _ctc_decode(self, requests: Sequence[DecodeRequest]) -> list[DecodeResult]:
        results: list[DecodeResult] = []
        for b in range(0, len(requests), self.max_batch_size):
            chunk = requests[b : b + self.max_batch_size]
            began = time.perf_counter()
            decoded = self._ctc_run(
                [flat_float32(r.audio) for r in chunk], any(r.word_timestamps for r in chunk)
            )
            share = (time.perf_counter() - began) / len(chunk)
            for req, (text, words) in zip(chunk, decoded, strict=True):
                results.append(
                    DecodeResult(
                        text=text,
                        words=words if req.word_timestamps else (),
                        compute_seconds=share,
                        audio_seconds=len(req.audio) / SAMPLE_RATE,
                    )
                )
        return results

    # --------------------------------------------------------------- interface

    def decode(self, requests: Sequence[DecodeRequest]) -> list[DecodeResult]:
        """Decode short clips (each at most 30 s), batched."""
        if not requests:
            return []
        for req in requests:
            if len(req.audio) > CHUNK_SECONDS * SAMPLE_RATE:
                raise ValueError(f"decode() takes clips of at most {CHUNK_SECONDS} s")
        if self.kind == "whisper":
            return self._whisper_decode(requests)
        return self._ctc_decode(requests)

    def transcribe(self, audio: AudioArray, options: TranscribeOptions) -> Transcription:
        """Transcribe audio of any length in consecutive 30 s chunks, one segment each."""
        segments = tuple(self.transcribe_segments(audio, options))
        return Transcription(
            text=" ".join(s.text for s in segments),
            language=options.language or "en",
            duration=len(flat_float32(audio)) / SAMPLE_RATE,
            segments=segments,
        )

    def transcribe_segments(
        self, audio: AudioArray, options: TranscribeOptions
    ) -> Iterator[Segment]:
        """The segments of :meth:`transcribe`, one 30 s chunk decoded per segment asked for."""
        samples = flat_float32(audio)
        duration = len(samples) / SAMPLE_RATE
        step = CHUNK_SECONDS * SAMPLE_RATE
        previous = options.initial_prompt or ""
        language = options.language or "en"
        count = 0
        for offset in range(0, max(len(samples), 1), step):
            piece = samples[offset : offset + step]
            if len(piece) == 0:
                break
            start_s = offset / SAMPLE_RATE
            end_s = min(duration, start_s + len(piece) / SAMPLE_RATE)
            words: tuple[Word, ...] = ()
            if self.kind == "whisper":
                start = self._whisper_start(previous, language, options.task)
                tokens = self._whisper_generate([piece], [start], [[]], options.beam_size)[0]
                text = str(self.tokenizer.decode(tokens, skip_special_tokens=True)).strip()
                token_tuple = tuple(tokens)
            else:
                text, rel_words = self._ctc_run([piece], options.word_timestamps)[0]
                words = tuple(
                    Word(w.word, w.start + start_s, w.end + start_s, w.probability)
                    for w in rel_words
                )
                token_tuple = ()
            previous = text
            if text:
                yield Segment(
                    id=count,
                    start=start_s,
                    end=end_s,
                    text=text,
                    words=words,
                    tokens=token_tuple,
                    temperature=options.temperature,
                )
                count += 1
