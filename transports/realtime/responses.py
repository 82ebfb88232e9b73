"""Spoken replies of a Realtime session (type "realtime").

When a user turn is committed (server VAD with `create_response`, or a
`response.create` event) a reply handler streams the text of the answer; it is cut
into sentences, each is synthesised on the TTS worker as soon as it is complete, and
its audio goes out while later sentences are still being written. Audio leaves as
`response.output_audio.delta` events paced a little ahead of real time (so a reply
that is interrupted has little left in flight), or into the media track of a
transport that has one (WebRTC).

Function calling: the handler may yield :class:`~voxwire.services.tools.ToolCall`
objects instead of text. Each becomes a function_call output item (added, its
arguments, done). A call of one of the handler's server tools is run here and its
output joins the conversation, and the handler is asked again within the same
response; a call of a client's tool ends the response, and the client answers with a
function_call_output item and a new response.create.

Barge-in: speech_started during a reply cancels it at once. Its task is cancelled
(which closes the handler's stream, so an LLM stops generating), queued audio is
dropped, and `response.done` with status "cancelled" is queued before the loop runs
anything else, so no audio of that reply can follow it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from voxwire.engine.audio import Float32Array, StreamResampler, float32_to_pcm16
from voxwire.engine.conversation import Conversation, Message, ResponseState, ResponseStatus
from voxwire.engine.errors import LocalError, VoxwireError, describe
from voxwire.engine.events import (
    Event,
    InputAudioCommitted,
    SpeechStarted,
    TranscriptionCompleted,
    TranscriptionFailed,
)
from voxwire.engine.sentences import SentenceSplitter
from voxwire.models.interfaces import TranscribeOptions
from voxwire.services import g711
from voxwire.services.reply_handlers import Chunk, ReplyHandler, Turn
from voxwire.services.runtime import Runtime
from voxwire.services.speech import synthesize_sentence
from voxwire.services.tools import FunctionTool, ServerTool, ToolCall
from voxwire.transports.realtime.audio_items import item_audio, transcribe_item
from voxwire.transports.realtime.peer import AudioSink
from voxwire.transports.realtime.protocol import (
    FunctionCallIn,
    FunctionCallOutputIn,
    ItemCreate,
    Modality,
    ProtocolError,
    ResponseSettings,
    SessionConfig,
    tool_settings,
)
from voxwire.transports.realtime.reply_events import (
    assistant_item,
    content_part,
    function_call_item,
    function_output_item,
    response_object,
    user_item,
)
from voxwire.transports.realtime.server_events import (
    ConversationItemAdded,
    ConversationItemDeleted,
    ConversationItemDone,
    ConversationItemTruncated,
    ErrorDetails,
    ErrorEvent,
    OutputAudioBufferCleared,
    OutputAudioBufferStarted,
    OutputAudioBufferStopped,
    ResponseContentPartAdded,
    ResponseContentPartDone,
    ResponseCreated,
    ResponseDone,
    ResponseFunctionCallArgumentsDelta,
    ResponseFunctionCallArgumentsDone,
    ResponseOutputAudioDelta,
    ResponseOutputAudioDone,
    ResponseOutputAudioTranscriptDelta,
    ResponseOutputAudioTranscriptDone,
    ResponseOutputItemAdded,
    ResponseOutputItemDone,
    ResponseOutputTextDelta,
    ResponseOutputTextDone,
    SendEvent,
    SessionEvent,
    error_type,
)

log = logging.getLogger(__name__)

ItemClassifications = Callable[[str], Awaitable[list[dict[str, Any]]]]
ItemAudio = Callable[[str], Float32Array | None]
"""A committed item's 16 kHz audio (None: not known, or no longer held)."""

DELTA_SECONDS = 0.1
"""Audio per `response.output_audio.delta`."""
TRANSCRIPT_WAIT_S = 30.0
"""Longest wait for the transcript of the turn being answered."""
QUEUED_SENTENCES = 4
"""Sentences the handler may run ahead of synthesis before it is paused."""
REMEMBERED_ITEMS = 32
"""Recent items whose transcripts and spoken audio the session keeps (for truncate)."""
MAX_TOOL_ROUNDS = 4
"""Times one response runs server tools and asks the handler again."""


class TranscriptUnavailable(LocalError, code="transcription_failed"):
    """TranscriptUnavailable."""


@dataclass
class Spoken:
    """A sentence of a reply and where its audio starts in the reply's audio (ms)."""

    text: str
    start_ms: int


@dataclass
class Call:
    """A function call a reply made, as an output item."""

    item_id: str
    output_index: int
    call: ToolCall

    def wire(self, status: str) -> dict[str, Any]:
        """The item (no arguments yet while it is in progress)."""
        arguments = "" if status == "in_progress" else self.call.arguments
        return function_call_item(
            self.item_id, status, self.call.call_id, self.call.name, arguments
        )


@dataclass
class ReplyCounters:
    """What the session's replies did ("nothing lost", checkable)."""

    responses: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    samples_synthesized: int = 0
    """Reply samples synthesised (at the rate they are sent: the session's output rate,
    or the audio track's)."""
    samples_sent: int = 0
    """Of those, the samples that reached the client (or its track, and were played)."""
    samples_cancelled: int = 0
    """Samples synthesised but never sent, or dropped from the track, because their
    reply was cancelled. Once no reply is active: synthesized == sent + cancelled."""
    function_calls: int = 0
    """Function calls the replies made (client and server tools)."""
    tool_runs: int = 0
    """Server tools run."""
    tool_errors: int = 0
    """Of those, the runs that raised, timed out or had bad arguments (the model got an
    error result)."""


@dataclass
class Reply:
    """One response in flight."""

    id: str
    item_id: str
    user_item_id: str | None
    settings: ResponseSettings
    state: ResponseState = field(default_factory=ResponseState)
    task: asyncio.Task[None] | None = None
    started: bool = False
    item_added: bool = False
    transcript: str = ""
    spoken: list[Spoken] = field(default_factory=list)
    samples_synthesized: int = 0
    samples_sent: int = 0
    play_start: float | None = None
    input_words: int = 0
    modality: Modality = "audio"
    outputs: int = 0
    """Output items so far (the next one's output_index)."""
    message_index: int = 0
    """The output_index of the reply's message item, once it is added."""
    calls: list[Call] = field(default_factory=list)
    own_items: list[Message] = field(default_factory=list)
    """Function calls and outputs of this reply, for its next round when the reply
    stays out of the conversation (conversation "none")."""

    @property
    def in_conversation(self) -> bool:
        return (self.settings.conversation or "auto") != "none"


class RealtimeResponses:
    """The replies of one Realtime session."""

    def __init__(
        self,
        runtime: Runtime,
        handler: ReplyHandler,
        send: SendEvent,
        config: Callable[[], SessionConfig],
        *,
        session_id: str,
        classifications: ItemClassifications | None = None,
        item_audio: ItemAudio | None = None,
        audio_sink: AudioSink | None = None,
        lead_s: float = 1.0,
    ) -> None:
        """`lead_s`: how far ahead of real time reply audio may be sent as events;
        `item_audio`: a committed item's audio, for a handler that hears it."""
        self.runtime = runtime
        self.handler = handler
        self.send = send
        self.config = config
        self.session_id = session_id
        self.classifications = classifications
        self.item_audio = item_audio
        self.audio_sink = audio_sink
        self.lead_s = lead_s
        self.conversation = Conversation()
        self.counters = ReplyCounters()
        self._transcripts: OrderedDict[str, asyncio.Future[str | None]] = OrderedDict()
        """Committed items' transcripts as they complete (None: the transcription failed)."""
        self._spoken: OrderedDict[str, Reply] = OrderedDict()
        self._replies: list[Reply] = []
        """Replies not yet finished, oldest (the one speaking) first."""
        self._last_user: str | None = None
        """The newest user item (committed audio or a text item): what a reply answers."""
        self._playing: Reply | None = None
        """The reply whose audio the sink (WebRTC track) holds, for output_audio_buffer.*."""
        self._drain: asyncio.Task[None] | None = None
        self._item_tasks: set[asyncio.Task[None]] = set()
        """Transcriptions of audio items a client added."""

    # -- engine events ---------------------------------------------------------------------

    def on_events(self, events: Sequence[Event]) -> None:
        """Engine events that were just sent to the client."""
        for event in events:
            if isinstance(event, SpeechStarted):
                self._barge_in()
            elif isinstance(event, InputAudioCommitted):
                self._expect_transcript(event.item_id)
                self._last_user = event.item_id
                turn = self.config().turn_detection
                if self.config().responds and turn is not None and turn.create_response:
                    self._start(ResponseSettings(), user_item_id=event.item_id)
            elif isinstance(event, TranscriptionCompleted):
                future = self._transcripts.get(event.item_id)
                if future is None:
                    continue  # deleted before it was transcribed (or long forgotten)
                self.conversation.add(event.item_id, "user", event.transcript)
                if future is not None and not future.done():
                    future.set_result(event.transcript)
            elif isinstance(event, TranscriptionFailed):
                future = self._transcripts.get(event.item_id)
                if future is not None and not future.done():
                    future.set_result(None)

    def _expect_transcript(self, item_id: str) -> None:
        self._transcripts[item_id] = asyncio.get_running_loop().create_future()
        while len(self._transcripts) > REMEMBERED_ITEMS:
            _, old = self._transcripts.popitem(last=False)
            if not old.done():
                old.set_result(None)

    def _barge_in(self) -> None:
        turn = self.config().turn_detection
        if turn is None or not turn.interrupt_response:
            return
        if self._replies:
            self._cancel_all("turn_detected")
        elif self._playing is not None:
            self._drop_track_audio()  # a finished reply still playing on the track

    # -- client events ---------------------------------------------------------------------

    def create(self, settings: ResponseSettings | None) -> None:
        """`response.create`: answer the conversation's last user turn now."""
        if self._replies:
            raise ProtocolError(
                f"the conversation already has an active response {self._replies[0].id}; "
                "cancel it first or wait for response.done",
                code="conversation_already_has_active_response",
            )
        settings = settings or ResponseSettings()
        tool_settings(settings, self.config(), "response")  # refused before it starts
        self._start(settings, user_item_id=self._last_user)

    def create_item(self, event: ItemCreate) -> None:
        """`conversation.item.create`: a text message, a function call or a function
        call's output joins the conversation (at its end)."""
        item = event.item
        item_id = item.id or f"item_{secrets.token_hex(10)}"
        if self.conversation.get(item_id) is not None or item_id in self._transcripts:
            raise ProtocolError(
                f"the conversation already has an item {item_id!r}",
                code="item_already_exists",
                param="item.id",
            )
        previous = event.previous_item_id
        if previous not in (None, "root") and self.conversation.get(previous) is None:
            raise ProtocolError(
                f"no item {previous!r} in this conversation",
                code="item_not_found",
                param="previous_item_id",
            )
        if isinstance(item, FunctionCallOutputIn):
            if self.conversation.function_call(item.call_id) is None:
                raise ProtocolError(
                    f"no function call {item.call_id!r} in this conversation",
                    code="invalid_value",
                    param="item.call_id",
                )
            message = Message(item_id, "tool", item.output, "function_call_output", item.call_id)
            wire = function_output_item(item_id, item.call_id, item.output)
        elif isinstance(item, FunctionCallIn):
            message = Message(
                item_id, "assistant", "", "function_call", item.call_id, item.name, item.arguments
            )
            wire = function_call_item(item_id, "completed", item.call_id, item.name, item.arguments)
        elif audio := item.audio():
            self._create_audio_item(item_id, audio)
            return
        else:
            text = item.text()
            if not text:
                raise ProtocolError(
                    "the item has no text", code="invalid_value", param="item.content"
                )
            message = Message(item_id, item.role, text)
            wire = user_item(item_id, item.role, text)
            if item.role == "user":
                self._last_user = item_id
        self._add_item(message, wire)

    def _create_audio_item(self, item_id: str, parts: list[str]) -> None:
        """A user's audio item: transcribed whole, then it joins the conversation as a
        committed turn does (a response.create meanwhile waits for its transcript)."""
        config = self.config()
        audio = item_audio(parts, config.input_encoding, config.input_rate)
        self._expect_transcript(item_id)
        self._last_user = item_id
        wire = {**user_item(item_id, "user", ""), "status": "in_progress"}
        wire["content"] = [{"type": "input_audio", "transcript": None}]
        self.send(ConversationItemAdded(previous_item_id=self.conversation.last_item_id, item=wire))
        options = TranscribeOptions(language=config.language, initial_prompt=config.prompt or None)

        async def transcribe() -> None:
            event = await transcribe_item(self.runtime, item_id, audio, options)
            self.send(SessionEvent.of(event))
            self.on_events([event])
            if isinstance(event, TranscriptionCompleted) and item_id in self._transcripts:
                done = {**wire, "status": "completed"}
                done["content"] = [{"type": "input_audio", "transcript": event.transcript}]
                before = self.conversation.around(item_id)[0]
                previous = before[-1].item_id if before else None
                self.send(ConversationItemDone(previous_item_id=previous, item=done))

        task = asyncio.get_running_loop().create_task(
            transcribe(), name=f"{self.session_id}:{item_id}:transcribe"
        )
        self._item_tasks.add(task)
        task.add_done_callback(self._item_tasks.discard)

    def _add_item(self, message: Message, wire: dict[str, Any]) -> None:
        """An item joins the conversation and the client hears of it."""
        before = self.conversation.last_item_id
        self.conversation.add_item(message)
        self.send(ConversationItemAdded(previous_item_id=before, item=wire))
        self.send(ConversationItemDone(previous_item_id=before, item=wire))

    def delete_item(self, item_id: str) -> None:
        """`conversation.item.delete`: forget an item (replies no longer see it)."""
        if any(r.item_id == item_id for r in self._replies):
            raise ProtocolError(
                f"{item_id} belongs to a response in progress; cancel it first",
                code="invalid_value",
                param="item_id",
            )
        pending = self._transcripts.get(item_id)
        if not self.conversation.delete(item_id) and pending is None:
            raise ProtocolError(
                f"no item {item_id!r} in this conversation", code="item_not_found", param="item_id"
            )
        if pending is not None:  # audio not yet transcribed stays out of the conversation
            del self._transcripts[item_id]
            if not pending.done():
                pending.set_result(None)
        self._spoken.pop(item_id, None)
        if self._last_user == item_id:
            users = [m.item_id for m in self.conversation.history() if m.role == "user"]
            self._last_user = users[-1] if users else None
        self.send(ConversationItemDeleted(item_id=item_id))

    def clear_output_audio(self) -> None:
        """`output_audio_buffer.clear` (WebRTC): drop the reply audio not played yet."""
        if self.audio_sink is None:
            raise ProtocolError(
                "output_audio_buffer.clear is for WebRTC calls, whose audio the server "
                "plays; over a WebSocket stop playback in the client",
                code="invalid_request_error",
            )
        if self._replies:
            self._cancel_all("client_cancelled")
        else:
            self._drop_track_audio()

    def cancel(self, response_id: str | None) -> None:
        """`response.cancel`: stop the reply in progress (an error when there is none)."""
        if not self._replies or (response_id is not None and response_id != self._replies[0].id):
            which = f" {response_id}" if response_id else ""
            raise ProtocolError(
                f"there is no response{which} in progress to cancel",
                code="response_cancel_not_active",
                param="response_id" if response_id else None,
            )
        self._cancel_all("client_cancelled")

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        """`conversation.item.truncate`: the client played only `audio_end_ms` of an
        assistant item; forget the rest (and stop it if it is still being spoken)."""
        reply = self._spoken.get(item_id)
        if reply is None:
            raise ProtocolError(
                f"no assistant audio item {item_id!r} in this conversation",
                code="item_not_found",
                param="item_id",
            )
        if content_index != 0:
            raise ProtocolError(
                "an assistant item has one content part (content_index 0)",
                code="invalid_value",
                param="content_index",
            )
        sent_ms = reply.samples_sent * 1000 // self._send_rate()
        if audio_end_ms > sent_ms:
            raise ProtocolError(
                f"audio_end_ms {audio_end_ms} is beyond the {sent_ms} ms of audio sent for "
                f"{item_id}",
                code="invalid_value",
                param="audio_end_ms",
            )
        if reply.state.active:
            self._cancel_all("client_cancelled")
        # What the conversation remembers of the reply: what was heard. A reply still
        # running joins the conversation with this text when its task ends.
        reply.transcript = " ".join(s.text for s in reply.spoken if s.start_ms < audio_end_ms)
        self.conversation.set_text(item_id, reply.transcript)
        self.send(
            ConversationItemTruncated(
                item_id=item_id, content_index=content_index, audio_end_ms=audio_end_ms
            )
        )

    async def close(self) -> None:
        """The session is over: stop every reply (nothing is sent any more)."""
        replies, self._replies = self._replies, []
        tasks = [r.task for r in replies if r.task is not None]
        for reply in replies:
            if reply.state.active:
                reply.state.finish(ResponseStatus.CANCELLED, "session_closed")
                self._count_cancelled(reply)
        tasks += self._item_tasks
        for task in tasks:
            task.cancel()
        if self._drain is not None:
            tasks.append(self._drain)
            self._drain.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for future in self._transcripts.values():
            if not future.done():
                future.set_result(None)

    def stats(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.counters), "active": len(self._replies)}

    # -- one reply ---------------------------------------------------------------------------

    def _start(self, settings: ResponseSettings, *, user_item_id: str | None) -> None:
        modalities = settings.output_modalities or self.config().output_modalities
        reply = Reply(
            id=f"resp_{secrets.token_hex(10)}",
            item_id=f"item_{secrets.token_hex(10)}",
            user_item_id=user_item_id,
            settings=settings,
            modality=modalities[0],
        )
        before = self._replies[-1].task if self._replies else None
        self._replies.append(reply)
        self.counters.responses += 1
        reply.task = asyncio.get_running_loop().create_task(
            self._run(reply, before), name=f"{self.session_id}:{reply.id}"
        )

    def _cancel_all(self, reason: str) -> None:
        """Cancel every unfinished reply; the one speaking gets response.done at once."""
        replies, self._replies = self._replies, []
        for reply in replies:
            if not reply.state.active:
                continue
            reply.state.finish(ResponseStatus.CANCELLED, reason)
            if reply.task is not None:
                reply.task.cancel()
            self._count_cancelled(reply)
            if reply.started:
                self._send_done(reply)
            log.info("%s: %s cancelled (%s)", self.session_id, reply.id, reason)

    def _count_cancelled(self, reply: Reply) -> None:
        """Account for a cancelled reply's audio: what was never sent, and what its
        track still held (dropped now)."""
        self.counters.cancelled += 1
        self.counters.samples_cancelled += reply.samples_synthesized - reply.samples_sent
        if self.audio_sink is not None:
            self._drop_track_audio()  # whichever reply the track held, it holds none now

    async def _run(self, reply: Reply, before: asyncio.Task[None] | None) -> None:
        try:
            if before is not None:
                # Wait for the reply before this one to end, however it ends; a cancel of
                # this reply itself must still propagate (suppressing it would let a
                # cancelled reply speak).
                await asyncio.wait({before})
            reply.started = True
            self.send(ResponseCreated(response=self._response(reply)))
            turn = await self._turn(reply)
            await self._rounds(reply, turn)
            if not reply.item_added and not reply.calls:
                self._send_item_added(reply)  # a reply that said nothing: an empty message
            reply.state.finish(ResponseStatus.COMPLETED)
            self.counters.completed += 1
            self._send_done(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(reply, exc)
        finally:
            if reply in self._replies:
                self._replies.remove(reply)
            if self._playing is reply and reply.state.status is not ResponseStatus.CANCELLED:
                self._watch_drain(reply)  # what it wrote plays out
            if reply.in_conversation and reply.item_added:
                self.conversation.add(reply.item_id, "assistant", reply.transcript)

    async def _rounds(self, reply: Reply, turn: Turn) -> None:
        """Ask the handler; while its model calls only server tools, run them and ask
        again with their outputs (at most MAX_TOOL_ROUNDS times)."""
        server = {t.name: t for t in self.handler.tools}
        for _ in range(MAX_TOOL_ROUNDS + 1):
            made = len(reply.calls)
            text = self.handler.reply(turn)
            if reply.modality == "audio":
                await self._speak(reply, text)
            else:
                await self._write(reply, text)
            calls = [c.call for c in reply.calls[made:]]
            if not calls or any(c.name not in server for c in calls):
                return  # answered, or the client has calls to run
            for call in calls:
                await self._run_tool(reply, server[call.name], call)
            turn = self._with_conversation(turn, reply)

    async def _run_tool(self, reply: Reply, tool: ServerTool, call: ToolCall) -> None:
        """Run a server tool; its output joins the conversation."""
        output = await tool.run(call)
        self.counters.tool_runs += 1
        self.counters.tool_errors += output.failed
        item_id = f"item_{secrets.token_hex(10)}"
        message = Message(item_id, "tool", output.text, "function_call_output", call.call_id)
        reply.own_items.append(message)
        wire = function_output_item(item_id, call.call_id, output.text)
        if reply.in_conversation:
            self._add_item(message, wire)

    def _with_conversation(self, turn: Turn, reply: Reply) -> Turn:
        """`turn` with the conversation as it stands now (for the next round)."""
        before, after = self.conversation.around(reply.user_item_id)
        if not reply.in_conversation:
            after += reply.own_items
        return dataclasses.replace(
            turn,
            history=tuple(m for m in before if m.text or m.type != "message"),
            since=tuple(after),
        )

    def _turn_tools(self, reply: Reply) -> tuple[tuple[FunctionTool, ...], str]:
        """The response's (or session's) tools and the handler's server tools (those win
        a name clash), and the tool_choice."""
        tools, choice = tool_settings(reply.settings, self.config(), "response")
        server = [t.spec for t in self.handler.tools]
        names = {t.name for t in server}
        return (*(t for t in tools if t.name not in names), *server), choice

    async def _turn(self, reply: Reply) -> Turn:
        config = self.config()
        instructions = reply.settings.instructions
        transcript = ""
        audio = self._heard(reply.user_item_id)
        if reply.user_item_id is not None and audio is None:
            future = self._transcripts.get(reply.user_item_id)
            if future is not None:
                heard = None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TRANSCRIPT_WAIT_S):
                        heard = await asyncio.shield(future)
                if heard is None:
                    raise TranscriptUnavailable(
                        f"no transcript of {reply.user_item_id} to answer", param="item_id"
                    )
                transcript = heard
            else:
                message = self.conversation.get(reply.user_item_id)
                transcript = message.text if message is not None else ""
        classifications: list[dict[str, Any]] = []
        if reply.user_item_id is not None and self.classifications is not None:
            classifications = await self.classifications(reply.user_item_id)
        reply.input_words = len(transcript.split())
        tools, tool_choice = self._turn_tools(reply)
        turn = Turn(
            transcript=transcript,
            item_id=reply.user_item_id,
            classifications=tuple(classifications),
            instructions=config.instructions if instructions is None else instructions,
            session_id=self.session_id,
            metadata=dict(reply.settings.metadata or {}),
            audio=audio,
            tools=tools,
            tool_choice=tool_choice,
        )
        return self._with_conversation(turn, reply)

    def _heard(self, item_id: str | None) -> Float32Array | None:
        """The user item's audio, for a handler that hears it (a native audio LLM):
        it answers the audio itself, without waiting for the transcript."""
        if (
            item_id is None
            or self.item_audio is None
            or not getattr(self.handler, "hears_audio", False)
        ):
            return None
        if item_id not in self._transcripts:
            return None  # a text item: it has no audio
        audio = self.item_audio(item_id)
        if audio is None:
            raise TranscriptUnavailable(
                f"the audio of {item_id} is no longer held", param="item_id"
            )
        return audio

    async def _speak(self, reply: Reply, text: AsyncIterator[Chunk]) -> None:
        """Speak the handler's text sentence by sentence while it is still being written."""
        sentences: asyncio.Queue[Chunk | BaseException | None] = asyncio.Queue(QUEUED_SENTENCES)
        producer = asyncio.get_running_loop().create_task(
            _split_sentences(text, sentences), name=f"{self.session_id}:{reply.id}:text"
        )
        output = self.config().output
        entry = self.runtime.resolve(None, "text-to-speech")
        resampler: StreamResampler | None = None
        rate = self._send_rate()
        try:
            while (sentence := await sentences.get()) is not None:
                if isinstance(sentence, BaseException):
                    raise sentence
                if isinstance(sentence, ToolCall):
                    self._send_call(reply, sentence)
                    continue
                work = functools.partial(
                    synthesize_sentence, sentence=sentence, voice=output.voice, speed=output.speed
                )
                audio, model_rate = await self.runtime.call(entry, work)
                if model_rate != rate and resampler is None:
                    resampler = StreamResampler(model_rate, rate, any_rate=True)
                if resampler is not None:
                    audio = resampler.process(audio)
                await self._play(reply, sentence, audio, rate)
            if resampler is not None:
                await self._play(reply, "", resampler.flush(), rate)
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await producer

    async def _write(self, reply: Reply, text: AsyncIterator[Chunk]) -> None:
        """A text-only reply: the handler's chunks as they come."""
        try:
            async for chunk in text:
                if isinstance(chunk, ToolCall):
                    self._send_call(reply, chunk)
                elif chunk:
                    if not reply.item_added:
                        self._send_item_added(reply)
                    reply.transcript += chunk
                    self.send(
                        ResponseOutputTextDelta(
                            response_id=reply.id,
                            item_id=reply.item_id,
                            output_index=reply.message_index,
                            delta=chunk,
                        )
                    )
        finally:
            await _close(text)
        reply.transcript = reply.transcript.strip()

    async def _play(self, reply: Reply, sentence: str, audio: Float32Array, rate: int) -> None:
        """Send one sentence: its transcript, then its audio in paced chunks."""
        if not reply.item_added:
            self._send_item_added(reply)
        pcm = float32_to_pcm16(audio)
        reply.samples_synthesized += len(audio)
        self.counters.samples_synthesized += len(audio)
        if sentence:
            delta = sentence if not reply.transcript else " " + sentence
            reply.transcript += delta
            self.send(
                ResponseOutputAudioTranscriptDelta(
                    response_id=reply.id,
                    item_id=reply.item_id,
                    output_index=reply.message_index,
                    delta=delta,
                )
            )
        start_ms = reply.samples_sent * 1000 // rate
        step = int(rate * DELTA_SECONDS) * 2
        for offset in range(0, len(pcm), step):
            chunk = pcm[offset : offset + step]
            if self.audio_sink is not None:
                if self._playing is not reply:
                    self._buffer_started(reply)
                await self.audio_sink.write(chunk)
            else:
                await self._pace(reply, len(chunk) // 2 / rate)
                encoding = self.config().output.encoding
                wire = chunk if encoding == "audio/pcm" else g711.encode(chunk, encoding)
                self.send(
                    ResponseOutputAudioDelta(
                        response_id=reply.id,
                        item_id=reply.item_id,
                        output_index=reply.message_index,
                        delta=base64.b64encode(wire).decode("ascii"),
                    )
                )
            reply.samples_sent += len(chunk) // 2
            self.counters.samples_sent += len(chunk) // 2
        if sentence:
            reply.spoken.append(Spoken(sentence, start_ms))

    # -- the WebRTC track's buffer (output_audio_buffer.*) -------------------------------------

    def _drop_track_audio(self) -> None:
        """Drop what the track has not played (counted as cancelled, not sent)."""
        assert self.audio_sink is not None
        dropped = self.audio_sink.discard()
        self.counters.samples_sent -= dropped
        self.counters.samples_cancelled += dropped
        self._buffer_cleared()

    def _buffer_started(self, reply: Reply) -> None:
        if self._drain is not None:
            self._drain.cancel()
        self._playing = reply
        self.send(OutputAudioBufferStarted(response_id=reply.id))

    def _buffer_cleared(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
        playing, self._playing = self._playing, None
        if playing is not None:
            self.send(OutputAudioBufferCleared(response_id=playing.id))

    def _watch_drain(self, reply: Reply) -> None:
        """Send output_audio_buffer.stopped once the track has played the reply."""

        async def drained() -> None:
            assert self.audio_sink is not None
            await self.audio_sink.played()
            if self._playing is reply:
                self._playing = None
                self.send(OutputAudioBufferStopped(response_id=reply.id))

        self._drain = asyncio.get_running_loop().create_task(
            drained(), name=f"{self.session_id}:{reply.id}:drain"
        )

    def _send_rate(self) -> int:
        """The rate reply audio leaves at: the track's, or the session's output rate."""
        return self.audio_sink.rate if self.audio_sink is not None else self.config().output.rate

    async def _pace(self, reply: Reply, seconds: float) -> None:
        """Wait until sending `seconds` more keeps the reply at most lead_s ahead of a
        client that plays it from the first chunk on."""
        now = time.monotonic()
        rate = self.config().output.rate
        sent_s = reply.samples_sent / rate
        if reply.play_start is None or now - reply.play_start > sent_s:
            reply.play_start = now - sent_s  # the client ran dry: it restarts from now
        ahead = sent_s + seconds - (now - reply.play_start)
        if ahead > self.lead_s:
            await asyncio.sleep(ahead - self.lead_s)

    def _fail(self, reply: Reply, exc: Exception) -> None:
        if not reply.state.active:
            return
        desc = describe(exc)
        if isinstance(exc, VoxwireError):
            log.warning("%s: %s failed: %s", self.session_id, reply.id, exc)
        else:
            log.exception("%s: %s failed", self.session_id, reply.id, exc_info=exc)
        reply.state.finish(ResponseStatus.FAILED, desc.code)
        self.counters.failed += 1
        kind = error_type(exc)
        self.send(ErrorEvent(error=ErrorDetails(type=kind, code=desc.code, message=desc.message)))
        if reply.started:
            self._send_done(reply, error={"type": kind, "code": desc.code, "message": desc.message})

    # -- events --------------------------------------------------------------------------------

    def _send_item_added(self, reply: Reply) -> None:
        reply.item_added = True
        reply.message_index = reply.outputs
        reply.outputs += 1
        self._spoken[reply.item_id] = reply
        while len(self._spoken) > REMEMBERED_ITEMS:
            self._spoken.popitem(last=False)
        item = assistant_item(reply.item_id, "in_progress", reply.transcript, reply.modality)
        index = reply.message_index
        self.send(ResponseOutputItemAdded(response_id=reply.id, output_index=index, item=item))
        self.send(
            ResponseContentPartAdded(
                response_id=reply.id,
                item_id=reply.item_id,
                output_index=index,
                part=content_part("", reply.modality),
            )
        )

    def _send_call(self, reply: Reply, call: ToolCall) -> None:
        """A function call of the reply, as an output item: added, its arguments, done."""
        entry = Call(f"item_{secrets.token_hex(10)}", reply.outputs, call)
        reply.outputs += 1
        reply.calls.append(entry)
        self.counters.function_calls += 1
        ids = {"response_id": reply.id, "output_index": entry.output_index}
        self.send(ResponseOutputItemAdded(**ids, item=entry.wire("in_progress")))
        about = {**ids, "item_id": entry.item_id, "call_id": call.call_id}
        self.send(ResponseFunctionCallArgumentsDelta(**about, delta=call.arguments))
        self.send(
            ResponseFunctionCallArgumentsDone(**about, name=call.name, arguments=call.arguments)
        )
        self.send(ResponseOutputItemDone(**ids, item=entry.wire("completed")))
        message = Message(
            entry.item_id, "assistant", "", "function_call", call.call_id, call.name, call.arguments
        )
        reply.own_items.append(message)
        if reply.in_conversation:
            self.conversation.add_item(message)

    def _send_done(self, reply: Reply, error: dict[str, str] | None = None) -> None:
        """The closing events: the item's (when it has one) and response.done."""
        if reply.item_added and reply.state.status is ResponseStatus.COMPLETED:
            ids = {
                "response_id": reply.id,
                "item_id": reply.item_id,
                "output_index": reply.message_index,
            }
            text = reply.transcript
            if reply.modality == "audio":
                self.send(ResponseOutputAudioDone(**ids))
                self.send(ResponseOutputAudioTranscriptDone(**ids, transcript=text))
            else:
                self.send(ResponseOutputTextDone(**ids, text=text))
            self.send(ResponseContentPartDone(**ids, part=content_part(text, reply.modality)))
            item = assistant_item(reply.item_id, "completed", text, reply.modality)
            self.send(
                ResponseOutputItemDone(
                    response_id=reply.id, output_index=reply.message_index, item=item
                )
            )
        details: dict[str, Any] | None = None
        if reply.state.status is ResponseStatus.CANCELLED:
            details = {"type": "cancelled", "reason": reply.state.reason}
        elif reply.state.status is ResponseStatus.FAILED:
            details = {"type": "failed", "error": error}
        self.send(ResponseDone(response=self._response(reply, details)))

    def _response(self, reply: Reply, details: dict[str, Any] | None = None) -> dict[str, Any]:
        status = reply.state.status
        done = status is not ResponseStatus.IN_PROGRESS
        items: list[tuple[int, dict[str, Any]]] = []
        if done and reply.item_added:
            item_status = "completed" if status is ResponseStatus.COMPLETED else "incomplete"
            item = assistant_item(reply.item_id, item_status, reply.transcript, reply.modality)
            items.append((reply.message_index, item))
        if done:
            items += [(c.output_index, c.wire("completed")) for c in reply.calls]
        conversation = f"conv_{self.session_id.removeprefix('sess_')}"
        return response_object(
            response_id=reply.id,
            status=status.value,
            details=details,
            items=[item for _, item in sorted(items, key=lambda pair: pair[0])],
            conversation_id=conversation if reply.in_conversation else None,
            modality=reply.modality,
            output=self.config().output,
            metadata=reply.settings.metadata,
            words=(reply.input_words, len(reply.transcript.split())) if done else None,
        )


async def _split_sentences(
    text: AsyncIterator[Chunk], out: asyncio.Queue[Chunk | BaseException | None]
) -> None:
    """Feed the handler's chunks through a SentenceSplitter into `out` (a tool call
    passes on in its place, after the text before it); a failure of the handler is
    passed on as an item, the end as None."""
    splitter = SentenceSplitter()
    try:
        async for chunk in text:
            if isinstance(chunk, ToolCall):
                for sentence in splitter.flush():
                    await out.put(sentence)
                await out.put(chunk)
                continue
            for sentence in splitter.feed(chunk):
                await out.put(sentence)
        for sentence in splitter.flush():
            await out.put(sentence)
        await out.put(None)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await out.put(exc)
    finally:
        await _close(text)


async def _close(text: AsyncIterator[Chunk]) -> None:
    """Close a handler's stream (an async generator's finally blocks run now)."""
    close = getattr(text, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
