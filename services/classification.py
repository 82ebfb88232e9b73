"""Turning a classifier's logits into scored labels, as Hugging Face pipelines do.

`function_to_apply` is softmax (the pipelines' default for single-label models),
sigmoid (independent probabilities per label) or none (the raw logits); the
labels come back sorted by score, best first, at most `top_k` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

FunctionToApply = Literal["softmax", "sigmoid", "none"]

DEFAULT_TOP_K = 5


def default_function(model: object) -> FunctionToApply:
    """What a request that names no function gets, as Hugging Face pipelines: sigmoid for
    a multi-label model (independent scores, e.g. wake words), else softmax."""
    return "sigmoid" if getattr(model, "multi_label", False) else "softmax"


"""Hugging Face's default for audio classification."""


def apply_function(
    logits: npt.ArrayLike, function_to_apply: FunctionToApply = "softmax"
) -> npt.NDArray[np.float64]:
    """Scores from logits: softmax (sums to 1), sigmoid (each in [0, 1]) or the logits."""
    values = np.asarray(logits, dtype=np.float64).reshape(-1)
    if function_to_apply == "softmax":
        if values.size == 0:
            return values
        shifted = np.exp(values - np.max(values))
        scores: npt.NDArray[np.float64] = shifted / shifted.sum()
    elif function_to_apply == "sigmoid":
        scores = 1.0 / (1.0 + np.exp(-values))
    else:
        scores = values
    # JSON has no NaN or infinity; a model that produces them gets finite extremes.
    big = float(np.finfo(np.float64).max)
    return np.nan_to_num(scores, nan=0.0, posinf=big, neginf=-big)


def top_labels(
    labels: Sequence[str],
    logits: npt.ArrayLike,
    *,
    top_k: int | None = DEFAULT_TOP_K,
    function_to_apply: FunctionToApply = "softmax",
) -> list[tuple[str, float]]:
    """(label, score) pairs sorted by score (ties keep the labels' order), at most top_k."""
    scores = apply_function(logits, function_to_apply)
    if len(labels) != scores.size:
        raise ValueError(f"{scores.size} logits for {len(labels)} labels")
    order = sorted(range(len(labels)), key=lambda i: -scores[i])
    if top_k is not None:
        order = order[: max(0, top_k)]
    return [(labels[i], float(scores[i])) for i in order]


def label_scores(
    labels: Sequence[str],
    logits: npt.ArrayLike,
    *,
    top_k: int | None = DEFAULT_TOP_K,
    function_to_apply: FunctionToApply = "softmax",
) -> list[dict[str, str | float]]:
    """Hugging Face's answer shape: ``[{"label": ..., "score": ...}]``, best first."""
    return [
        {"label": label, "score": score}
        for label, score in top_labels(
            labels, logits, top_k=top_k, function_to_apply=function_to_apply
        )
    ]
