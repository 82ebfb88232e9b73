"""Render a :class:`~voxwire.models.interfaces.Transcription` in OpenAI's response formats.

`text`, `json`, `verbose_json`, `srt` and `vtt`, as `/v1/audio/transcriptions`
returns them. Pure functions: no I/O, no models.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from voxwire.models.interfaces import Segment, Transcription


class ResponseFormat(StrEnum):
    """The output formats of the transcription endpoints and CLI."""

    TEXT = "text"
    JSON = "json"
    VERBOSE_JSON = "verbose_json"
    SRT = "srt"
    VTT = "vtt"


MEDIA_TYPES: dict[ResponseFormat, str] = {
    ResponseFormat.TEXT: "text/plain; charset=utf-8",
    ResponseFormat.JSON: "application/json",
    ResponseFormat.VERBOSE_JSON: "application/json",
    ResponseFormat.SRT: "application/x-subrip; charset=utf-8",
    ResponseFormat.VTT: "text/vtt; charset=utf-8",
}
"""The Content-Type of each format."""

# Whisper's language codes and the names OpenAI reports in verbose_json.
LANGUAGE_NAMES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian",
    "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian",
    "sw": "swahili", "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala",
    "km": "khmer", "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans",
    "oc": "occitan", "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi",
    "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
    "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan",
    "tl": "tagalog", "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian",
    "ln": "lingala", "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese",
    "yue": "cantonese",
}  # fmt: skip


def language_name(code: str) -> str:
    """OpenAI's language name for a Whisper code (`en` -> `english`); unknown codes pass."""
    return LANGUAGE_NAMES.get(code.lower(), code) if code else code


def render(
    transcription: Transcription,
    response_format: ResponseFormat | str,
    *,
    task: str = "transcribe",
    word_timestamps: bool = False,
) -> str:
    """The body of a response in `response_format`; text formats end with a newline."""
    fmt = ResponseFormat(response_format)
    if fmt is ResponseFormat.TEXT:
        return render_text(transcription)
    if fmt is ResponseFormat.JSON:
        return json.dumps({"text": transcription.text.strip()}, ensure_ascii=False)
    if fmt is ResponseFormat.VERBOSE_JSON:
        body = verbose_json(transcription, task=task, word_timestamps=word_timestamps)
        return json.dumps(body, ensure_ascii=False)
    if fmt is ResponseFormat.SRT:
        return render_srt(transcription.segments)
    return render_vtt(transcription.segments)


def render_text(transcription: Transcription) -> str:
    """The plain text, one trailing newline; empty when nothing was said."""
    text = transcription.text.strip()
    return f"{text}\n" if text else ""


def verbose_json(
    transcription: Transcription, *, task: str = "transcribe", word_timestamps: bool = False
) -> dict[str, Any]:
    """OpenAI's `verbose_json` object; `words` is present only when asked for."""
    body: dict[str, Any] = {
        "task": task,
        "language": language_name(transcription.language),
        "duration": round(transcription.duration, 3),
        "text": transcription.text.strip(),
        "segments": [_segment_json(s) for s in transcription.segments],
    }
    if word_timestamps:
        body["words"] = [
            {"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for w in transcription.words
        ]
    return body


def _segment_json(segment: Segment) -> dict[str, Any]:
    return {
        "id": segment.id,
        # Whisper's seek is the segment's window offset in 10 ms mel frames; the
        # interface does not carry the window, so the segment start stands in.
        "seek": max(0, round(segment.start * 100)),
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": segment.text,
        "tokens": list(segment.tokens),
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }


def format_timestamp(seconds: float, decimal_marker: str = ",") -> str:
    """`HH:MM:SS,mmm` (SRT) or, with `decimal_marker="."`, `HH:MM:SS.mmm` (WebVTT)."""
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def _cues(segments: tuple[Segment, ...]) -> list[tuple[float, float, str]]:
    """Segments with text, as (start, end, one-line text) with end >= start."""
    cues = []
    for s in segments:
        text = " ".join(s.text.split()).replace("-->", "->")
        if text:
            cues.append((s.start, max(s.start, s.end), text))
    return cues


def render_srt(segments: tuple[Segment, ...]) -> str:
    """SubRip: numbered cues from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, blank-line separated."""
    blocks = [
        f"{i}\n{format_timestamp(start)} --> {format_timestamp(end)}\n{text}\n"
        for i, (start, end, text) in enumerate(_cues(segments), start=1)
    ]
    return "\n".join(blocks)


def render_vtt(segments: tuple[Segment, ...]) -> str:
    """WebVTT: `WEBVTT` header, then numbered cues `HH:MM:SS.mmm --> HH:MM:SS.mmm`."""
    blocks = ["WEBVTT\n"]
    blocks += [
        f"{i}\n{format_timestamp(start, '.')} --> {format_timestamp(end, '.')}\n{text}\n"
        for i, (start, end, text) in enumerate(_cues(segments), start=1)
    ]
    return "\n".join(blocks)
