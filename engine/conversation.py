"""A session's conversation (what was said, by whom) and the life of one spoken reply.

Both are plain state: the transport decides when things happen, these classes keep
the record straight and refuse transitions that make no sense.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Literal

from voxwire.engine.errors import IllegalTransition

Role = Literal["user", "assistant", "system", "tool"]
ItemType = Literal["message", "function_call", "function_call_output"]


@dataclass
class Message:
    """One item of the conversation as a reply handler sees it: a message (`text`), a
    function call the assistant made (`call_id`, `name`, `arguments`), or the output of
    one (role "tool", `call_id`, the output in `text`)."""

    item_id: str
    role: Role
    text: str
    type: ItemType = "message"
    call_id: str = ""
    name: str = ""
    arguments: str = ""


class Conversation:
    """The last `max_messages` items of a session, oldest first."""

    def __init__(self, max_messages: int = 64) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self.max_messages = max_messages
        self._messages: OrderedDict[str, Message] = OrderedDict()

    def add(self, item_id: str, role: Role, text: str) -> Message:
        """Add a message (or replace the text of one with the same id)."""
        return self.add_item(Message(item_id, role, text))

    def add_item(self, message: Message) -> Message:
        """Add any item at the end (replacing one with the same id)."""
        self._messages[message.item_id] = message
        self._messages.move_to_end(message.item_id)
        while len(self._messages) > self.max_messages:
            self._messages.popitem(last=False)
        return message

    def set_text(self, item_id: str, text: str) -> bool:
        """Change an item's text where it stands (a truncated reply); False if unknown."""
        message = self._messages.get(item_id)
        if message is not None:
            message.text = text
        return message is not None

    def delete(self, item_id: str) -> bool:
        """Forget an item; False if there is none with that id."""
        return self._messages.pop(item_id, None) is not None

    def get(self, item_id: str) -> Message | None:
        return self._messages.get(item_id)

    def function_call(self, call_id: str) -> Message | None:
        """The function call item with this call_id, if it is remembered."""
        return next(
            (
                m
                for m in self._messages.values()
                if m.type == "function_call" and m.call_id == call_id
            ),
            None,
        )

    def history(self) -> list[Message]:
        """Every remembered item, oldest first (copies: handlers may not change them)."""
        return [replace(m) for m in self._messages.values()]

    def around(self, item_id: str | None) -> tuple[list[Message], list[Message]]:
        """The items before and after `item_id` (copies); all items are "before" when it
        is None or not remembered."""
        items = self.history()
        index = next((i for i, m in enumerate(items) if m.item_id == item_id), None)
        if index is None:
            return items, []
        return items[:index], items[index + 1 :]

    @property
    def last_item_id(self) -> str | None:
        return next(reversed(self._messages), None)


class ResponseStatus(enum.Enum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class ResponseState:
    """One reply: in progress until it completes, is cancelled or fails (once)."""

    def __init__(self) -> None:
        self.status = ResponseStatus.IN_PROGRESS
        self.reason: str | None = None
        """Why it was cancelled ("turn_detected", "client_cancelled") or failed."""

    @property
    def active(self) -> bool:
        return self.status is ResponseStatus.IN_PROGRESS

    def finish(self, status: ResponseStatus, reason: str | None = None) -> None:
        if not self.active:
            raise IllegalTransition(
                f"the response is already {self.status.value}; it cannot become {status.value}"
            )
        if status is ResponseStatus.IN_PROGRESS:
            raise IllegalTransition("a response cannot start again")
        self.status = status
        self.reason = reason
