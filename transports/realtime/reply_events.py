"""The wire shapes of a reply's objects in the OpenAI Realtime API (GA): the assistant
item, its content part, the response object and its usage. Pure functions; the
caller decides when each goes out."""

from __future__ import annotations

from typing import Any

from voxwire.transports.realtime.protocol import Modality, OutputConfig


def assistant_item(item_id: str, status: str, text: str, modality: Modality) -> dict[str, Any]:
    """The assistant message item (no content while it is in progress)."""
    content: list[dict[str, Any]] = []
    if status != "in_progress":
        content = [
            {"type": "output_audio", "transcript": text}
            if modality == "audio"
            else {"type": "output_text", "text": text}
        ]
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def user_item(item_id: str, role: str, text: str) -> dict[str, Any]:
    """A text message item a client added."""
    kind = "output_text" if role == "assistant" else "input_text"
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": role,
        "content": [{"type": kind, "text": text}],
    }


def function_call_item(
    item_id: str, status: str, call_id: str, name: str, arguments: str
) -> dict[str, Any]:
    """A function call item (its arguments are "" while they are being written)."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def function_output_item(item_id: str, call_id: str, output: str) -> dict[str, Any]:
    """The output of a function call (the client's, or a server tool's)."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call_output",
        "call_id": call_id,
        "output": output,
    }


def content_part(text: str, modality: Modality) -> dict[str, Any]:
    """The part of content_part.added/done."""
    if modality == "audio":
        return {"type": "audio", "transcript": text}
    return {"type": "text", "text": text}


def usage(input_words: int, output_words: int) -> dict[str, Any]:
    """OpenAI's usage object; voxwire counts words, not tokens."""
    return {
        "total_tokens": input_words + output_words,
        "input_tokens": input_words,
        "output_tokens": output_words,
        "input_token_details": {"text_tokens": input_words, "audio_tokens": 0, "cached_tokens": 0},
        "output_token_details": {"text_tokens": output_words, "audio_tokens": 0},
    }


def response_object(
    *,
    response_id: str,
    status: str,
    details: dict[str, Any] | None,
    items: list[dict[str, Any]],
    conversation_id: str | None,
    modality: Modality,
    output: OutputConfig,
    metadata: dict[str, str] | None,
    words: tuple[int, int] | None,
) -> dict[str, Any]:
    """The `response` of response.created / response.done. `words`: (input, output)
    once the response is done, for its usage."""
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": details,
        "output": items,
        "conversation_id": conversation_id,
        "output_modalities": [modality],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": output.to_wire()["format"], "voice": output.voice}},
        "metadata": metadata,
        "usage": usage(*words) if words is not None else None,
    }
