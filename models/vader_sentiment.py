"""Sentiment of a text with VADER: positive / negative / neutral."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_SHARPNESS = 6.0
"""How strongly the compound score separates the labels' logits."""

NEUTRAL_BAND = 0.05
"""VADER's own convention: |compound| below this is neutral."""


class VaderSentiment:
    """VADER's rule-based sentiment, as logits over (positive, negative, neutral).

    With VADER's compound score c in [-1, 1] the logits are ``k*c``, ``-k*c`` and
    ``k*0.05``: the top label is VADER's own reading (c >= 0.05 positive,
    c <= -0.05 negative, else neutral) and its softmax probability grows with |c|.
    """

    labels = ("positive", "negative", "neutral")

    def __init__(self, name: str = "vader") -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.name = name
        self._analyzer = SentimentIntensityAnalyzer()

    def compound(self, text: str) -> float:
        return float(self._analyzer.polarity_scores(text)["compound"])

    def logits(self, text: str) -> npt.NDArray[np.float32]:
        c = self.compound(text)
        return np.array(
            [_SHARPNESS * c, -_SHARPNESS * c, _SHARPNESS * NEUTRAL_BAND], dtype=np.float32
        )
