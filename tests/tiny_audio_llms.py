"""Tiny random Qwen2-Audio and Voxtral models, built offline and saved to a directory.

Their weights are random (their text means nothing); everything else is the real
thing: transformers' model classes from small configs, a byte-level BPE tokenizer
trained here with the `tokenizers` library (with the chat roles' and audio special
tokens), Whisper's log-mel feature extractor, and for Qwen2-Audio its processor. They
exercise voxwire's loading, prompt building, streaming and counting code end to end.

The saved generation config has no end-of-sequence token, so every answer runs to
its `max_tokens`: token counts are exact, whatever the random weights pick; and only
word pieces can be picked, so a voice can say the answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEXTS = [
    "hello world, what did the speaker say? ask not what your country can do for you.",
    "You are a helpful voice assistant. Answer in one or two short spoken sentences.",
]
QWEN_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
]
VOXTRAL_SPECIAL = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AUDIO]", "[BEGIN_AUDIO]"]
VOXTRAL_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}[SYSTEM_PROMPT]{{ m['content'] }}[/SYSTEM_PROMPT]"
    "{% elif m['role'] == 'user' %}[INST]{{ m['content'] }}[/INST]"
    "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)
TINY_TEXT = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 4096,
    "head_dim": 8,
}


def _tokenizer(special: list[str], **tokens: Any) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(TEXTS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, **tokens)


def _speakable(model: Any, tokenizer: Any) -> None:
    """Only words with a space before them can win: the output rows of every other
    token are zeroed, so the random answers are words a voice can say, and a streamer
    (which hands out text at word boundaries) hands them out one by one."""
    import torch

    head = model.get_output_embeddings().weight
    with torch.no_grad():
        for token_id in range(head.shape[0]):
            text = tokenizer.decode([token_id])
            if not (text.startswith(" ") and text[1:].isalpha()):
                head[token_id].zero_()


def _save(model: Any, directory: Path, *parts: Any) -> Path:
    model.generation_config.eos_token_id = None
    model.generation_config.bos_token_id = None
    model.save_pretrained(directory)
    for part in parts:
        part.save_pretrained(directory)
    return directory


def build_qwen2_audio(directory: Path) -> Path:
    """A tiny random Qwen2-Audio with its processor, saved in `directory`."""
    import torch
    from transformers import WhisperFeatureExtractor
    from transformers.models.qwen2_audio import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
    )

    tokenizer = _tokenizer(QWEN_SPECIAL, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tokenizer
    )
    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder",
            "d_model": 16,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "num_mel_bins": 128,
        },
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), **TINY_TEXT},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(config)
    _speakable(model, tokenizer)
    return _save(model, directory, processor)


def build_voxtral(directory: Path) -> Path:
    """A tiny random Voxtral with its tokenizer (a chat template) and feature extractor."""
    import torch
    from transformers import WhisperFeatureExtractor
    from transformers.models.voxtral import VoxtralConfig, VoxtralForConditionalGeneration

    tokenizer = _tokenizer(
        VOXTRAL_SPECIAL,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        chat_template=VOXTRAL_TEMPLATE,
    )
    config = VoxtralConfig(
        audio_config={
            "hidden_size": 16,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_mel_bins": 128,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "head_dim": 8,
            **TINY_TEXT,
        },
        audio_token_id=tokenizer.convert_tokens_to_ids("[AUDIO]"),
    )
    torch.manual_seed(0)
    model = VoxtralForConditionalGeneration(config)
    _speakable(model, tokenizer)
    return _save(model, directory, tokenizer, WhisperFeatureExtractor(feature_size=128))


BUILDERS = {"qwen2-audio": build_qwen2_audio, "voxtral": build_voxtral}
"""Tiny model name -> builder; the name is the model's catalogue id in the tests."""
