"""`voxwire speak "text"`: synthesise speech locally with the embedded Piper voice.

With `-o FILE` the audio is written in the format of FILE's extension (wav, mp3,
flac, ogg/opus, aac, pcm; `--format` overrides, `-o -` writes to stdout) by the
same sentence-by-sentence encoder as `/v1/audio/speech`, at 24 kHz mono. Without
`-o` it is played on the default sound device (sounddevice), each sentence as soon
as it is synthesised. TEXT `-` reads the text from stdin. Failures are one
`voxwire: error: ...` line and exit code 1.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Final

import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from voxwire.engine.audio import StreamResampler
from voxwire.engine.errors import VoxwireError
from voxwire.models.errors import ModelError
from voxwire.services.audio_encoding import AudioFormat
from voxwire.services.sound_devices import import_sounddevice, parse_device
from voxwire.services.speech import speech_chunks
from voxwire.transports.cli.main import fail, notice
from voxwire.transports.cli.options import SoundDevice

if TYPE_CHECKING:
    from voxwire.models.interfaces import AudioArray, SpeechSynthesizer
    from voxwire.services.speech import SpeechJob

EXTENSIONS: Final[dict[str, AudioFormat]] = {
    ".wav": AudioFormat.WAV,
    ".wave": AudioFormat.WAV,
    ".mp3": AudioFormat.MP3,
    ".flac": AudioFormat.FLAC,
    ".ogg": AudioFormat.OPUS,
    ".oga": AudioFormat.OPUS,
    ".opus": AudioFormat.OPUS,
    ".aac": AudioFormat.AAC,
    ".adts": AudioFormat.AAC,
    ".pcm": AudioFormat.PCM,
    ".raw": AudioFormat.PCM,
}
"""Output formats by file extension."""

MAX_TEXT_BYTES: Final = 1 << 20
"""Longest text read from stdin (1 MiB)."""

PROGRESS_MIN_CHARS: Final = 200
"""Texts at least this long get a progress line on stderr (when stderr is a terminal)."""

_WAV_HEADER_BYTES: Final = 44
"""The size of the streaming WAV header that StreamingEncoder writes."""


PORTAUDIO_HINT: Final = "install PortAudio (libportaudio2), or pass -o FILE to write a file"


def register(app: typer.Typer) -> None:
    """Add the `speak` command to `app`."""
    app.command("speak")(speak)


def speak(
    text: Annotated[
        str, typer.Argument(help='The text to speak; "-" reads it from stdin.', show_default=False)
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the audio to this file (format from its extension; - is stdout) "
            "instead of playing it.",
        ),
    ] = None,
    audio_format: Annotated[
        AudioFormat | None,
        typer.Option("--format", "-f", help="Output format (default: from the extension)."),
    ] = None,
    voice: Annotated[
        str | None,
        typer.Option(
            "--voice",
            help="A voice of the embedded model (or an OpenAI voice name, which selects the "
            "default), or the path of a Piper .onnx voice with its .onnx.json beside it.",
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", min=0.25, max=4.0, help="2.0 speaks twice as fast.")
    ] = 1.0,
    device: SoundDevice = None,
) -> None:
    """Speak TEXT with the embedded Piper voice: write it to a file (-o) or play it."""
    content = _read_text(text)
    fmt = None
    if output is None:
        _check_output_device(parse_device(device))
    else:
        _check_writable(output)
        fmt = _output_format(output, audio_format)
    model, voice_name = _load_voice(voice)
    console = Console(stderr=True)
    with _progress(console, len(content), "Speaking" if fmt is None else "Synthesising") as step:
        if output is None:
            seconds = play(model, content, voice_name, speed, device, step)
        else:
            assert fmt is not None
            seconds = _write(output, fmt, model, content, voice_name, speed, step)
    if output is not None and str(output) != "-":
        notice(f"wrote {output} ({fmt}, {seconds:.2f} s)")


# -- input ---------------------------------------------------------------------------------


def _read_text(text: str) -> str:
    if text == "-":
        data = sys.stdin.buffer.read(MAX_TEXT_BYTES + 1)
        if len(data) > MAX_TEXT_BYTES:
            fail(f"the text on stdin is longer than {MAX_TEXT_BYTES} bytes")
        text = data.decode("utf-8", errors="replace")
    if not text.strip():
        fail("no text to speak")
    return text


def _output_format(output: Path, chosen: AudioFormat | None) -> AudioFormat:
    if chosen is not None:
        return chosen
    if str(output) == "-":
        return AudioFormat.WAV
    fmt = EXTENSIONS.get(output.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted({ext.lstrip(".") for ext in EXTENSIONS}))
        fail(f"{output}: cannot tell the audio format from the name; use {known} or --format")
    return fmt


def _check_writable(output: Path) -> None:
    """Fail before any work when `output` clearly cannot be written."""
    if str(output) == "-":
        return
    if output.is_dir():
        fail(f"{output}: is a directory")
    parent = output.parent
    if not parent.is_dir():
        fail(f"cannot write {output}: no such directory {parent}")
    target = output if output.exists() else parent
    if not os.access(target, os.W_OK):
        fail(f"cannot write {output}: permission denied")


def _load_voice(voice: str | None) -> tuple[SpeechSynthesizer, str | None]:
    """The synthesiser and the voice to ask it for (None: its default)."""
    from voxwire.models.interfaces import SpeechSynthesizer
    from voxwire.models.registry import DEFAULT_TTS, EMBEDDED_MODELS, ModelSpec, load_model
    from voxwire.services.voices import model_voice

    path = None if voice is None else Path(voice).expanduser()
    if path is not None and (path.suffix == ".onnx" or path.is_file()):
        if not path.is_file():
            fail(f"no Piper voice at {path}")
        spec = ModelSpec(path.stem, "text-to-speech", "piper", source=str(path))
    else:
        spec = next(s for s in EMBEDDED_MODELS if s.id == DEFAULT_TTS)
    try:
        model = load_model(spec)
    except (ModelError, VoxwireError) as exc:
        fail(f"cannot load the voice {voice or spec.id}: {_message(exc)}")
    if not isinstance(model, SpeechSynthesizer):
        fail(f"{spec.id} is not a text-to-speech model")
    if path is not None and spec.source is not None:
        return model, None
    try:
        return model, model_voice(voice, model.voices)
    except VoxwireError as exc:
        fail(exc.message)


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, VoxwireError) else str(exc) or type(exc).__name__


# -- progress ------------------------------------------------------------------------------


class _Step:
    """Counts sentences and seconds of audio for the progress line."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task = (
            progress.add_task("", total=None, info="starting") if progress is not None else None
        )
        self.sentences = 0
        self.seconds = 0.0

    def __call__(self, seconds: float) -> None:
        self.sentences += 1
        self.seconds += seconds
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task,
                completed=self.sentences,
                info=f"{self.sentences} sentences, {self.seconds:.1f} s of audio",
            )


@contextlib.contextmanager
def _progress(console: Console, chars: int, verb: str) -> Iterator[_Step]:
    """A transient progress line on stderr for long texts, only on a terminal."""
    if not console.is_terminal or chars < PROGRESS_MIN_CHARS:
        yield _Step(None)
        return
    columns = (
        SpinnerColumn(),
        TextColumn(f"{verb} {chars} characters:"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield _Step(progress)


# -- writing -------------------------------------------------------------------------------


def _write(
    output: Path,
    fmt: AudioFormat,
    model: SpeechSynthesizer,
    text: str,
    voice: str | None,
    speed: float,
    step: _Step,
) -> float:
    """Synthesise and encode into `output` sentence by sentence; the seconds of audio."""
    from voxwire.services.speech import SpeechJob

    job = SpeechJob(text, voice, speed, fmt)
    if str(output) == "-":
        _encode_into(job, model, sys.stdout.buffer, step)
        sys.stdout.buffer.flush()
        return job.audio_seconds
    try:
        file = output.open("wb")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    try:
        with file:
            _encode_into(job, model, file, step)
            if fmt is AudioFormat.WAV:
                _fix_wav_sizes(file)
    except BaseException as exc:
        output.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            fail(f"cannot write {output}: {exc.strerror or exc}")
        raise
    return job.audio_seconds


def _encode_into(job: SpeechJob, model: SpeechSynthesizer, file: IO[bytes], step: _Step) -> None:
    seconds = 0.0
    try:
        while (chunk := job.step(model)) is not None:
            file.write(chunk)
            if job.audio_seconds > seconds:
                step(job.audio_seconds - seconds)
                seconds = job.audio_seconds
    except (ValueError, ModelError) as exc:
        fail(f"speech synthesis failed: {_message(exc)}")


def _fix_wav_sizes(file: IO[bytes]) -> None:
    """Fill in the RIFF and data sizes the streaming header leaves unknown."""
    size = file.tell()
    file.seek(4)
    file.write(struct.pack("<I", size - 8))
    file.seek(_WAV_HEADER_BYTES - 4)
    file.write(struct.pack("<I", size - _WAV_HEADER_BYTES))


# -- playing -------------------------------------------------------------------------------


def play(
    model: SpeechSynthesizer,
    text: str,
    voice: str | None,
    speed: float,
    device: str | None,
    step: _Step,
) -> float:
    """Play the speech on a sound device as it is synthesised; the seconds played."""
    sd = import_sounddevice(PORTAUDIO_HINT)
    chosen = parse_device(device)
    rate = model.sample_rate
    try:
        stream_rate = _playable_rate(sd, chosen, rate)
        stream = sd.OutputStream(samplerate=stream_rate, channels=1, dtype="float32", device=chosen)
    except (sd.PortAudioError, ValueError) as exc:
        fail(
            f"cannot play audio: no usable sound output device ({exc}); "
            "pass -o FILE to write the speech to a file instead"
        )
    resampler = StreamResampler(rate, stream_rate, any_rate=True)
    total = 0.0
    try:
        with stream:
            for chunk in _sentences(model, text, voice, speed):
                seconds = chunk.size / rate
                step(seconds)
                total += seconds
                samples = resampler.process(chunk)
                stream.write(np.ascontiguousarray(samples, dtype=np.float32).reshape(-1, 1))
            tail = resampler.flush()
            if tail.size:
                stream.write(np.ascontiguousarray(tail, dtype=np.float32).reshape(-1, 1))
    except sd.PortAudioError as exc:
        fail(f"sound output failed: {exc}; pass -o FILE to write a file instead")
    return total


def _check_output_device(device: int | str | None) -> None:
    """Fail before any work when there is no sound output device to play on."""
    sd = import_sounddevice(PORTAUDIO_HINT)
    try:
        sd.query_devices(device, kind="output")
    except (sd.PortAudioError, ValueError) as exc:
        fail(
            f"cannot play audio: no sound output device ({exc}); "
            "pass -o FILE to write the speech to a file instead"
        )


def _sentences(
    model: SpeechSynthesizer, text: str, voice: str | None, speed: float
) -> Iterator[AudioArray]:
    try:
        yield from speech_chunks(model, text, voice=voice, speed=speed)
    except (ValueError, ModelError) as exc:
        fail(f"speech synthesis failed: {_message(exc)}")


def _playable_rate(sd: Any, device: int | str | None, rate: int) -> int:
    """`rate` if the device takes it, else the device's default rate (resampled to)."""
    try:
        sd.check_output_settings(device=device, samplerate=rate, channels=1, dtype="float32")
        return rate
    except sd.PortAudioError:
        info = sd.query_devices(device, kind="output")
        return int(info["default_samplerate"])
