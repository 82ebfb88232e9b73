"""The `openai-chat` reply handler: streams a reply from any OpenAI-compatible
`/v1/chat/completions` endpoint (a local LLM server, vLLM, OpenAI itself).

The request carries the session's instructions as the system message, the
conversation's history and the turn's transcript; classification results of the
turn go in a short system note. Cancelling the reply closes the HTTP stream, which
tells the LLM server to stop generating.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2

from voxwire.services.reply_handlers import AssistantError, Turn

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
        messages: list[dict[str, str]] = []
        if turn.instructions:
            messages.append({"role": "system", "content": turn.instructions})
        history = turn.history[-self.settings.max_history :] if self.settings.max_history else ()
        messages.extend({"role": m.role, "content": m.text} for m in history if m.text)
        note = classification_note(turn.classifications)
        if note:
            messages.append({"role": "system", "content": note})
        messages.append({"role": "user", "content": turn.transcript})
        body: dict[str, Any] = {"model": self.settings.model, "messages": messages, "stream": True}
        if self.settings.temperature is not None:
            body["temperature"] = self.settings.temperature
        return body

    async def reply(self, turn: Turn) -> AsyncIterator[str]:
        try:
            async with self._http().stream("POST", self.url, json=self.request_body(turn)) as r:
                if r.status_code >= 400:
                    body = (await r.aread())[:MAX_ERROR_BODY].decode("utf-8", "replace")
                    log.warning("assistant %s answered %d: %s", self.url, r.status_code, body)
                    raise AssistantError(
                        f"the assistant at {self.url} answered HTTP {r.status_code}"
                    )
                async for line in r.aiter_lines():
                    text = _delta_text(line)
                    if text is None:
                        break
                    if text:
                        yield text
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


def _delta_text(line: str) -> str | None:
    """The text of one server-sent line: "" for lines without text, None at [DONE]."""
    if not line.startswith("data:"):
        return ""
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
        content = chunk["choices"][0]["delta"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""  # a usage-only or role-only chunk
    return content if isinstance(content, str) else ""


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
