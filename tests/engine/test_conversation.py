"""Conversation memory and the life of one reply."""

from __future__ import annotations

import pytest

from voxwire.engine.conversation import Conversation, Message, ResponseState, ResponseStatus
from voxwire.engine.errors import IllegalTransition


def test_conversation_keeps_the_last_items_in_order() -> None:
    conversation = Conversation(max_messages=3)
    for i in range(5):
        conversation.add(f"item_{i}", "user" if i % 2 else "assistant", f"text {i}")
    assert [m.item_id for m in conversation.history()] == ["item_2", "item_3", "item_4"]
    assert conversation.last_item_id == "item_4"
    conversation.add("item_2", "assistant", "truncated")  # replacing moves it last
    assert [m.text for m in conversation.history()][-1] == "truncated"
    copy = conversation.history()
    copy[0].text = "changed"
    assert conversation.get("item_3") is not None
    assert conversation.get("item_3").text == "text 3"  # type: ignore[union-attr]


def test_a_response_ends_once() -> None:
    state = ResponseState()
    assert state.active
    state.finish(ResponseStatus.CANCELLED, "turn_detected")
    assert not state.active and state.reason == "turn_detected"
    with pytest.raises(IllegalTransition):
        state.finish(ResponseStatus.COMPLETED)
    with pytest.raises(IllegalTransition):
        ResponseState().finish(ResponseStatus.IN_PROGRESS)


def test_set_text_changes_an_item_where_it_stands() -> None:
    conversation = Conversation()
    conversation.add("a", "assistant", "One. Two.")
    conversation.add("b", "user", "Next.")
    assert conversation.set_text("a", "One.")
    assert [(m.item_id, m.text) for m in conversation.history()] == [("a", "One."), ("b", "Next.")]
    assert not conversation.set_text("missing", "x")


def test_items_are_deleted_and_found_around_a_turn() -> None:
    conversation = Conversation()
    conversation.add("a", "user", "Hi.")
    conversation.add("b", "user", "Weather?")
    conversation.add_item(Message("c", "assistant", "", "function_call", "call_1", "w", "{}"))
    assert conversation.function_call("call_1") is not None
    assert conversation.function_call("call_2") is None
    before, after = conversation.around("b")
    assert [m.item_id for m in before] == ["a"] and [m.item_id for m in after] == ["c"]
    assert [m.item_id for m in conversation.around(None)[0]] == ["a", "b", "c"]
    assert conversation.delete("a") and not conversation.delete("a")
    assert [m.item_id for m in conversation.history()] == ["b", "c"]
