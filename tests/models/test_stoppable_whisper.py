"""The stop checks around a CTranslate2 Whisper model's steps (no model needed: the
steps are plain callables, so a stop can be asked for deterministically mid-step)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from voxwire.models.errors import Cancelled
from voxwire.models.stoppable_whisper import StopFlag, StoppableWhisper


class Steps:
    """A stand-in model whose generate asks for a stop while it runs (a client hanging
    up mid-step), and which records every step that ran."""

    is_multilingual = False

    def __init__(self, flag: StopFlag) -> None:
        self.flag = flag
        self.ran: list[str] = []

    def encode(self, features: Any) -> str:
        self.ran.append("encode")
        return f"encoded {features}"

    def generate(self, encoded: Any, prompts: Any) -> str:
        self.ran.append("generate")
        self.flag.stop()
        time.sleep(0.05)  # the rest of the step still runs
        return "tokens"

    def align(self, *args: Any) -> str:
        self.ran.append("align")
        return "words"


def test_a_stop_mid_step_lets_that_step_finish_and_stops_the_next() -> None:
    flag = StopFlag()
    inner = Steps(flag)
    model = StoppableWhisper(inner, flag)
    assert model.is_multilingual is False  # everything else is the model's own
    assert model.encode("window") == "encoded window"
    assert model.generate("encoded", [[1]]) == "tokens"
    with pytest.raises(Cancelled) as raised:
        model.align("encoded", [1], [[2]], [3])
    assert inner.ran == ["encode", "generate"]
    assert 0.04 <= raised.value.step_seconds < 5.0
    assert raised.value.late_seconds >= raised.value.step_seconds - 0.01
    with pytest.raises(Cancelled):  # and every later step
        model.encode("next window")
    assert inner.ran == ["encode", "generate"]


def test_a_stop_between_steps_has_nothing_in_flight() -> None:
    flag = StopFlag()
    inner = Steps(flag)
    model = StoppableWhisper(inner, flag)
    model.encode("window")
    flag.stop()
    flag.stop()  # idempotent
    with pytest.raises(Cancelled) as raised:
        model.generate("encoded", [[1]])
    assert raised.value.step_seconds == 0.0
    assert inner.ran == ["encode"]
