"""The `openai-chat` reply handler: streams a reply from any OpenAI-compatible
`/v1/chat/completions` endpoint (a local LLM server, vLLM, OpenAI itself).

The request carries the session's instructions as the system message, the
conversation's history and the turn's transcript; classification results of the
turn go in a short system note. The turn's tools go along as OpenAI chat `tools`
(with `tool_choice`), earlier function calls as assistant `tool_calls` and their
outputs as `tool` messages; streamed `tool_calls` deltas are put together and
yielded as :class:`~voxwire.services.tools.ToolCall` objects when the stream ends.
Cancelling the reply closes the HTTP stream, which tells the LLM server to stop
generating.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2

from voxwire.engine.conversation import Message
from voxwire.services.reply_handlers import AssistantError, Chunk, Turn
from voxwire.services.tools import ServerTool, ToolCall

log = logging.getLogger(__name__)

MAX_ERROR_BODY = 2048
"""Bytes of an error response kept for the log."""


class AssistantUnavailable(AssistantError, code="assistant_unavailable"):
    """The chat endpoint cannot be reached or answered with an error."""


class AssistantTimeout(AssistantError, code="assistant_timeout"):
    """The chat endpoint took longer than its timeout."""


@dataclass(frozen=True)
class ChatSettings:
    """Where and how to ask the LLM."""

    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = "default"
    api_key: str | None = None
    timeout_s: float = 30.0
    """Longest wait to connect and between two streamed chunks."""
    max_history: int = 20
    """Earlier messages sent along with the turn."""
    temperature: float | None = None


class OpenAIChatHandler:
    """Streams replies from an OpenAI-compatible chat endpoint."""

    name = "openai-chat"
    tools: tuple[ServerTool, ...] = ()

    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self._client: httpx2.AsyncClient | None = None

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            headers = {"Accept": "text/event-stream"}
            if self.settings.api_key:
                headers["Authorization"] = f"Bearer {self.settings.api_key}"
            self._client = httpx2.AsyncClient(
                headers=headers, timeout=httpx2.Timeout(self.settings.timeout_s)
            )
        return self._client

    def request_body(self, turn: Turn) -> dict[str, Any]:
        """The chat completion request for a turn."""
        messages: list[dict[str, Any]] = []
        if turn.instructions:
            messages.append({"role": "system", "content": turn.instructions})
        history = turn.history[-self.settings.max_history :] if self.settings.max_history else ()
        messages += chat_messages(_whole_calls(history))
        note = classification_note(turn.classifications)
        if note:
            messages.append({"role": "system", "content": note})
        messages.append({"role": "user", "content": turn.transcript})
        messages += chat_messages(_whole_calls(turn.since))
        body: dict[str, Any] = {"model": self.settings.model, "messages": messages, "stream": True}
        if turn.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in turn.tools
            ]
            body["tool_choice"] = (
                turn.tool_choice
                if turn.tool_choice in ("auto", "none", "required")
                else {"type": "function", "function": {"name": turn.tool_choice}}
            )
        if self.settings.temperature is not None:
            body["temperature"] = self.settings.temperature
        return body

    async def reply(self, turn: Turn) -> AsyncIterator[Chunk]:
        try:
            async with self._http().stream("POST", self.url, json=self.request_body(turn)) as r:
                if r.status_code >= 400:
                    body = (await r.aread())[:MAX_ERROR_BODY].decode("utf-8", "replace")
                    log.warning("assistant %s answered %d: %s", self.url, r.status_code, body)
                    raise AssistantError(
                        f"the assistant at {self.url} answered HTTP {r.status_code}"
                    )
                calls = ToolCallParts()
                async for line in r.aiter_lines():
                    delta = _delta(line)
                    if delta is None:
                        break
                    text = delta.get("content")
                    if isinstance(text, str) and text:
                        yield text
                    calls.add(delta.get("tool_calls"))
                for call in calls.calls():
                    yield call
        except httpx2.TimeoutException as exc:
            raise AssistantTimeout(
                f"the assistant at {self.url} did not answer within {self.settings.timeout_s:g} s"
            ) from exc
        except httpx2.TransportError as exc:
            raise AssistantUnavailable(f"cannot reach the assistant at {self.url}: {exc}") from exc

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _delta(line: str) -> dict[str, Any] | None:
    """The `delta` of one server-sent line: {} for lines without one, None at [DONE]."""
    if not line.startswith("data:"):
        return {}
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as exc:
        raise AssistantError(f"the assistant sent a chunk that is not JSON: {data[:80]!r}") from exc
    if isinstance(chunk, dict) and "error" in chunk:
        raise AssistantError(f"the assistant reported an error: {chunk['error']}")
    try:
        delta = chunk["choices"][0]["delta"]
    except (KeyError, IndexError, TypeError):
        return {}  # a usage-only chunk
    return delta if isinstance(delta, dict) else {}


class ToolCallParts:
    """Streamed `tool_calls` deltas put together: the first delta of a call carries its
    index, id and name, later ones more of its arguments."""

    def __init__(self) -> None:
        self._parts: dict[int, dict[str, str]] = {}

    def add(self, deltas: Any) -> None:
        if not isinstance(deltas, list):
            return
        for delta in deltas:
            if not isinstance(delta, dict):
                raise AssistantError("the assistant sent a tool call delta that is not an object")
            index = delta.get("index", len(self._parts))
            part = self._parts.setdefault(index, {"id": "", "name": "", "arguments": ""})
            function = delta.get("function") or {}
            for key, value in (("id", delta.get("id")), ("name", function.get("name"))):
                if isinstance(value, str) and value:
                    part[key] = value
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                part["arguments"] += arguments

    def calls(self) -> list[ToolCall]:
        """The finished calls in index order."""
        out = []
        for _, part in sorted(self._parts.items()):
            if not part["name"]:
                raise AssistantError("the assistant sent a tool call without a function name")
            extra = {"call_id": part["id"]} if part["id"] else {}
            out.append(ToolCall(part["name"], part["arguments"] or "{}", **extra))
        return out


def chat_messages(items: Sequence[Message]) -> list[dict[str, Any]]:
    """Conversation items as OpenAI chat messages: function calls become `tool_calls` of
    an assistant message (consecutive calls share one), outputs `tool` messages."""
    out: list[dict[str, Any]] = []
    for m in items:
        if m.type == "function_call":
            call = {
                "id": m.call_id,
                "type": "function",
                "function": {"name": m.name, "arguments": m.arguments},
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and "content" not in last:
                last["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "tool_calls": [call]})
        elif m.type == "function_call_output":
            out.append({"role": "tool", "tool_call_id": m.call_id, "content": m.text})
        elif m.text:
            out.append({"role": m.role, "content": m.text})
    return out


def _whole_calls(items: Sequence[Message]) -> list[Message]:
    """`items` without function calls whose output is missing, nor outputs whose call is
    missing (a cut of the history may separate them; chat endpoints refuse either)."""
    calls = {m.call_id for m in items if m.type == "function_call"}
    outputs = {m.call_id for m in items if m.type == "function_call_output"}
    whole = calls & outputs
    return [m for m in items if m.type == "message" or m.call_id in whole]


def classification_note(classifications: tuple[dict[str, Any], ...]) -> str:
    """A one-line summary of what the classifiers said about the turn."""
    parts: list[str] = []
    for event in classifications:
        if event.get("type") == "voxwire.speaker.identified" and event.get("speaker"):
            parts.append(f"speaker: {event['speaker']} ({event.get('score', 0):.2f})")
        elif event.get("type") == "voxwire.classification" and event.get("labels"):
            top = event["labels"][0]
            parts.append(f"{event.get('classifier')}: {top['label']} ({top['score']:.2f})")
    return "Classifiers on the user's last utterance: " + "; ".join(parts) if parts else ""
