"""The transformers classification backends, on tiny random models built and saved here.

Real weights cannot be had offline; these exercise loading, labels, shapes and errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxwire.models.errors import ModelNotFoundError
from voxwire.models.interfaces import AudioClassifier, TextClassifier
from voxwire.models.registry import ModelSpec, load_model
from voxwire.models.transformers_classifiers import (
    TransformersAudioClassifier,
    TransformersTextClassifier,
)

SOUNDS = ("dog", "cat", "bird")
VOCAB = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "day", "the", "is", "a")


def _labels(labels: tuple[str, ...]) -> dict[str, object]:
    return {
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Wav2Vec2 and AST audio classifier and a tiny BERT text classifier."""
    import transformers as tf

    root = tmp_path_factory.mktemp("tiny-classifiers")
    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}
    w2v = tf.Wav2Vec2Config(
        **small,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        classifier_proj_size=8,
        vocab_size=8,
        **_labels(SOUNDS),
    )
    tf.Wav2Vec2ForSequenceClassification(w2v).save_pretrained(root / "w2v")
    tf.Wav2Vec2FeatureExtractor(sampling_rate=16_000).save_pretrained(root / "w2v")
    ast = tf.ASTConfig(
        **small,
        intermediate_size=32,
        num_mel_bins=16,
        max_length=64,
        frequency_stride=10,
        time_stride=10,
        problem_type="multi_label_classification",
        **_labels((*SOUNDS, "speech")),
    )
    tf.ASTForAudioClassification(ast).save_pretrained(root / "ast")
    tf.ASTFeatureExtractor(num_mel_bins=16, max_length=64).save_pretrained(root / "ast")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    tf.BertTokenizer(vocab_file=str(vocab)).save_pretrained(root / "bert")
    bert = tf.BertConfig(
        vocab_size=len(VOCAB),
        **small,
        intermediate_size=32,
        max_position_embeddings=32,
        **_labels(("negative", "positive")),
    )
    tf.BertForSequenceClassification(bert).save_pretrained(root / "bert")
    return root


@pytest.mark.parametrize(
    ("directory", "labels", "multi_label"),
    [("w2v", SOUNDS, False), ("ast", (*SOUNDS, "speech"), True)],
)
def test_audio_classifiers_load_through_the_registry(
    models_dir: Path, directory: str, labels: tuple[str, ...], multi_label: bool
) -> None:
    spec = ModelSpec("tiny", "audio-classification", "transformers", str(models_dir / directory))
    model = load_model(spec)
    assert isinstance(model, TransformersAudioClassifier) and isinstance(model, AudioClassifier)
    assert model.name == "tiny" and model.labels == labels
    assert model.multi_label is multi_label
    for seconds in (0.5, 3.0):
        audio = np.random.default_rng(0).standard_normal(int(16_000 * seconds))
        logits = model.logits((audio * 0.1).astype(np.float32))
        assert logits.dtype == np.float32 and logits.shape == (len(labels),)
        assert np.all(np.isfinite(logits))


def test_text_classifier_loads_through_the_registry(models_dir: Path) -> None:
    spec = ModelSpec("tiny-text", "text-classification", "transformers", str(models_dir / "bert"))
    model = load_model(spec)
    assert isinstance(model, TransformersTextClassifier) and isinstance(model, TextClassifier)
    assert model.labels == ("negative", "positive") and not model.multi_label
    assert model.logits("good day").shape == (2,)
    long = model.logits("the day is good " * 100)  # truncated to the 32 positions
    assert long.dtype == np.float32 and long.shape == (2,)


def test_missing_models_are_clear_errors(models_dir: Path, tmp_path: Path) -> None:
    audio = "audio-classification"
    with pytest.raises(ModelNotFoundError, match="no model directory at '/nowhere/model'"):
        load_model(ModelSpec("x", audio, "transformers", "/nowhere/model"))
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        load_model(ModelSpec("x", "text-classification", "transformers", "nobody/no-model"))
    with pytest.raises(ModelNotFoundError, match="needs a source"):
        load_model(ModelSpec("x", audio, "transformers"))
    with pytest.raises(ModelNotFoundError, match=f"directory '{tmp_path}'"):
        load_model(ModelSpec("x", audio, "transformers", str(tmp_path)))  # no config.json
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text((models_dir / "w2v" / "config.json").read_text())
    with pytest.raises(ModelNotFoundError, match="incomplete model files"):
        load_model(ModelSpec("x", audio, "transformers", str(half)))
    with pytest.raises(ModelNotFoundError, match="does not do text-classification"):
        load_model(ModelSpec("x", "text-classification", "openwakeword"))
