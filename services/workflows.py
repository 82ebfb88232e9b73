"""Workflows after Clarifai: named graphs of models, run on each input of a request.

A workflow is a list of nodes; each node runs one catalogue model on either the
workflow input (no ``input``) or another node's output (``input``: that node's
id). Audio models (speech recognition, audio classification) take the audio
input; text classifiers take a speech-recognition node's text, or the workflow
input when it is text. An audio-text-to-text node (a native audio LLM: Qwen2-Audio,
Voxtral) hears the audio and answers its ``prompt`` in text (at most
``max_new_tokens``), which text classifiers may take in turn. Definitions are
validated here (ids, known models, no cycles, matching kinds; the reserved model
``speaker-id`` is an audio classifier of the enrolled speakers, see
:mod:`voxwire.services.speakers`), stored by :mod:`voxwire.services.workflow_store`,
and run node by node on the models' workers through :meth:`Runtime.call`, answering
in Clarifai's shape: a status per input and per node output. One input's failure is
reported in its own status and does not fail the others. The routes are
:mod:`voxwire.transports.http.workflows`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voxwire.engine.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PeerError,
    describe,
)
from voxwire.models.interfaces import AudioArray, ChatMessage, GenerateOptions
from voxwire.services import chat, speakers
from voxwire.services.classification import FunctionToApply, default_function, top_labels
from voxwire.services.inference import Logits, classify_audio, classify_text, transcribe
from voxwire.services.media import AudioLimits, decode_audio
from voxwire.services.runtime import Runtime
from voxwire.services.url_fetch import UrlFetcher


class RunnerSettings(Protocol):
    """The values a runner needs (the server's settings have them)."""

    @property
    def data_dir(self) -> Path:
        """Where the enrolled speakers (speaker-id nodes) are stored."""
        ...

    @property
    def max_workflow_input_bytes(self) -> int: ...

    @property
    def url_fetch_timeout_s(self) -> float: ...

    @property
    def audio_limits(self) -> AudioLimits:
        """What one decoded input may amount to."""
        ...


log = logging.getLogger(__name__)

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Workflow and node ids."""
INPUT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_NODES = 16
MAX_WORKFLOWS = 1000
MAX_INPUTS = 32
"""Inputs per results request (Clarifai's limit)."""
MAX_TEXT_CHARS = 100_000
CONCURRENT_INPUTS = 4
"""Inputs of one request decoded and run at the same time (bounds memory)."""
DEFINITION_BODY_LIMIT = 64 * 1024
MAX_PROMPT_CHARS = 4096
MAX_NEW_TOKENS = 1024
DEFAULT_PROMPT = "What is in this audio?"
DEFAULT_NEW_TOKENS = 128

Kind = Literal["audio", "text", "concepts"]

TASK_KINDS: dict[str, tuple[Kind, Kind]] = {
    "automatic-speech-recognition": ("audio", "text"),
    "audio-classification": ("audio", "concepts"),
    "text-classification": ("text", "concepts"),
    "audio-text-to-text": ("audio", "text"),
}
"""What a node of each task takes and gives."""

OK: dict[str, Any] = {"code": 10000, "description": "Ok"}
MIXED: dict[str, Any] = {"code": 10010, "description": "Mixed Success"}


def failure(details: str) -> dict[str, Any]:
    """Clarifai's FAILURE status with a message for whoever sent the request."""
    return {"code": 10020, "description": "Failure", "details": details}


# -- errors ---------------------------------------------------------------------------------


class WorkflowNotFound(NotFound, code="workflow_not_found"):
    """No workflow of that id."""


class WorkflowExists(Conflict, code="workflow_exists"):
    """A workflow of that id exists already."""


class InvalidWorkflow(PeerError, code="invalid_workflow"):
    """A definition that cannot run (or no longer can, on this server's models)."""


class WorkflowLimit(Conflict, code="workflow_limit"):
    """The server holds as many workflows as it may."""


class InvalidResultsRequest(InvalidRequest):
    """A results request that does not have the expected shape."""


# -- definitions ----------------------------------------------------------------------------


class NodeDefinition(BaseModel):
    """One node: a model, and where its input comes from (None: the workflow input)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    model: str = Field(min_length=1, max_length=256)
    input: str | None = Field(default=None, max_length=64)
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    """audio-text-to-text nodes: what the model is asked about the audio."""
    max_new_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS)

    def shown(self) -> dict[str, Any]:
        """The node as the API shows it: the audio-text-to-text fields only where given."""
        unused = {name for name in ("prompt", "max_new_tokens") if getattr(self, name) is None}
        return self.model_dump(exclude=unused)


class WorkflowDefinition(BaseModel):
    """A workflow as a client defines it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    nodes: list[NodeDefinition] = Field(min_length=1, max_length=MAX_NODES)


@dataclass(frozen=True)
class PlannedNode:
    """A validated node with its model's task and kinds."""

    id: str
    model: str
    task: str
    input: str | None
    takes: Kind
    gives: Kind
    function_to_apply: FunctionToApply = "softmax"
    """How the node's logits become concept values (``none`` for speaker-id's cosines)."""
    prompt: str = DEFAULT_PROMPT
    max_new_tokens: int = DEFAULT_NEW_TOKENS


@dataclass(frozen=True)
class Plan:
    """A validated workflow: nodes in definition order, and what its input is."""

    id: str
    input_kind: Kind
    nodes: tuple[PlannedNode, ...]

    def in_dependency_order(self) -> list[PlannedNode]:
        """Nodes such that each comes after the node it takes its input from."""
        done: set[str] = set()
        ordered: list[PlannedNode] = []
        pending = list(self.nodes)
        while pending:
            ready = [n for n in pending if n.input is None or n.input in done]
            if not ready:  # a cycle: plan_workflow refuses these
                raise InvalidWorkflow(f"workflow {self.id!r} has a cycle")
            for node in ready:
                done.add(node.id)
                ordered.append(node)
            pending = [n for n in pending if n.id not in done]
        return ordered


def plan_workflow(definition: WorkflowDefinition, runtime: Runtime) -> Plan:
    """Validate `definition` against the runtime's catalogue; InvalidWorkflow says why not."""
    by_id: dict[str, NodeDefinition] = {}
    for node in definition.nodes:
        if node.id in by_id:
            raise InvalidWorkflow(f"node id {node.id!r} is used twice", param="nodes")
        by_id[node.id] = node
    planned: dict[str, PlannedNode] = {}
    for node in definition.nodes:
        planned[node.id] = _plan_node(node, by_id, runtime)
    _refuse_cycles(planned)
    for planned_node in planned.values():
        if planned_node.input is not None:
            _check_kinds(planned_node, planned[planned_node.input])
    root_kinds = {n.takes for n in planned.values() if n.input is None}
    if len(root_kinds) != 1:
        raise InvalidWorkflow(
            "the nodes that take the workflow input must all take audio or all take text",
            param="nodes",
        )
    (input_kind,) = root_kinds
    return Plan(definition.id, input_kind, tuple(planned.values()))


def _plan_node(node: NodeDefinition, nodes: dict[str, NodeDefinition], rt: Runtime) -> PlannedNode:
    speaker_id = node.model == speakers.SPEAKER_ID and speakers.has_encoder(rt)
    entry = rt.catalog.get(node.model)
    if speaker_id:
        task = "audio-classification"
    elif entry is None:
        offered = [e.spec.id for e in rt.catalog.values() if e.spec.task in TASK_KINDS]
        if speakers.has_encoder(rt):
            offered.append(speakers.SPEAKER_ID)
        raise InvalidWorkflow(
            f"node {node.id!r}: unknown model {node.model!r}; workflows can use "
            f"{', '.join(offered)}",
            param="nodes",
        )
    else:
        task = entry.spec.task
    if task not in TASK_KINDS:
        raise InvalidWorkflow(
            f"node {node.id!r}: model {node.model!r} does {task}, which workflows do not run "
            f"(they run {', '.join(TASK_KINDS)} models)",
            param="nodes",
        )
    if node.input is not None:
        if node.input == node.id:
            raise InvalidWorkflow(f"node {node.id!r} takes its own output", param="nodes")
        if node.input not in nodes:
            raise InvalidWorkflow(
                f"node {node.id!r}: input {node.input!r} is not a node of this workflow "
                "(leave input out to take the workflow input)",
                param="nodes",
            )
    if task != chat.AUDIO_CHAT and (node.prompt is not None or node.max_new_tokens is not None):
        raise InvalidWorkflow(
            f"node {node.id!r}: prompt and max_new_tokens are for audio-text-to-text nodes",
            param="nodes",
        )
    takes, gives = TASK_KINDS[task]
    function: FunctionToApply = "none" if speaker_id else "softmax"
    return PlannedNode(
        node.id,
        node.model,
        task,
        node.input,
        takes,
        gives,
        function,
        prompt=node.prompt or DEFAULT_PROMPT,
        max_new_tokens=node.max_new_tokens or DEFAULT_NEW_TOKENS,
    )


def _refuse_cycles(nodes: dict[str, PlannedNode]) -> None:
    for start in nodes.values():
        seen = [start.id]
        current = start
        while current.input is not None:
            if current.input in seen:
                cycle = seen[seen.index(current.input) :]
                raise InvalidWorkflow(f"nodes {', '.join(cycle)} form a cycle", param="nodes")
            seen.append(current.input)
            current = nodes[current.input]


def _check_kinds(node: PlannedNode, source: PlannedNode) -> None:
    if source.gives == node.takes:
        return
    if node.takes == "audio":
        hint = "audio models take the workflow input"
    else:
        hint = "text models take a speech-recognition node's text or the workflow input"
    raise InvalidWorkflow(
        f"node {node.id!r} ({node.task}) takes {node.takes}, but node {source.id!r} "
        f"gives {source.gives}; {hint}",
        param="nodes",
    )


# -- results requests -----------------------------------------------------------------------


class AudioData(BaseModel):
    """Audio as base64 bytes or a URL the server fetches."""

    model_config = ConfigDict(extra="forbid")

    base64: str | None = None
    url: str | None = Field(default=None, max_length=8192)

    @model_validator(mode="after")
    def _exactly_one(self) -> AudioData:
        if (self.base64 is None) == (self.url is None):
            raise ValueError("give exactly one of audio.base64 or audio.url")
        return self


class TextData(BaseModel):
    """Text given inline."""

    model_config = ConfigDict(extra="forbid")

    raw: str = Field(max_length=MAX_TEXT_CHARS)


class InputData(BaseModel):
    """What one input carries: audio or text."""

    model_config = ConfigDict(extra="forbid")

    audio: AudioData | None = None
    text: TextData | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> InputData:
        if (self.audio is None) == (self.text is None):
            raise ValueError("give exactly one of data.audio or data.text")
        return self


class WorkflowInput(BaseModel):
    """One input of a results request."""

    id: str | None = Field(default=None, pattern=INPUT_ID_PATTERN)
    data: InputData


class ResultsRequest(BaseModel):
    """``POST /v1/workflows/{id}/results``."""

    inputs: list[WorkflowInput] = Field(min_length=1, max_length=MAX_INPUTS)


# -- running --------------------------------------------------------------------------------


class _UpstreamFailed(Exception):
    def __init__(self, node_id: str) -> None:
        super().__init__(node_id)
        self.node_id = node_id


NodeValue = str | Logits


class WorkflowRunner:
    """Runs a plan on inputs: decodes (or fetches) each, then its nodes on the workers."""

    def __init__(
        self, runtime: Runtime, settings: RunnerSettings, fetcher: UrlFetcher | None = None
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.fetcher = fetcher or UrlFetcher(
            max_bytes=settings.max_workflow_input_bytes, timeout_s=settings.url_fetch_timeout_s
        )
        self.speaker_id = speakers.speaker_classifier(runtime, settings.data_dir)
        """speaker-id nodes: the speakers enrolled under the same settings.data_dir."""

    async def run(self, plan: Plan, inputs: list[WorkflowInput]) -> list[dict[str, Any]]:
        """One Clarifai result per input, in order."""
        slots = asyncio.Semaphore(CONCURRENT_INPUTS)

        async def one(item: WorkflowInput) -> dict[str, Any]:
            async with slots:
                return await self.run_input(plan, item)

        return list(await asyncio.gather(*(one(item) for item in inputs)))

    async def run_input(self, plan: Plan, item: WorkflowInput) -> dict[str, Any]:
        """The result for one input; its failures stay in its own status."""
        result: dict[str, Any] = {"input": {"id": item.id or uuid.uuid4().hex}}
        try:
            value = await self._load(plan, item.data)
        except Exception as exc:
            return {**result, "status": failure(_safe_message(exc)), "outputs": []}
        outputs = await self._run_nodes(plan, value)
        succeeded = sum(1 for o in outputs if o["status"]["code"] == OK["code"])
        if succeeded == len(outputs):
            status = OK
        elif succeeded:
            status = MIXED
        else:
            status = failure("no node of the workflow succeeded")
        return {**result, "status": status, "outputs": outputs}

    async def _load(self, plan: Plan, data: InputData) -> AudioArray | str:
        given: Kind = "audio" if data.audio is not None else "text"
        if given != plan.input_kind:
            field = "data.audio" if plan.input_kind == "audio" else "data.text.raw"
            raise InvalidResultsRequest(
                f"workflow {plan.id!r} takes {plan.input_kind} inputs ({field}), not {given}"
            )
        if data.text is not None:
            return data.text.raw
        assert data.audio is not None
        limit = self.settings.max_workflow_input_bytes
        if data.audio.url is not None:
            encoded = await self.fetcher.fetch(data.audio.url)
        else:
            encoded = _decode_base64(data.audio.base64 or "", limit)
        return await asyncio.to_thread(
            decode_audio, encoded, max_bytes=limit, limits=self.settings.audio_limits
        )

    async def _run_nodes(self, plan: Plan, value: AudioArray | str) -> list[dict[str, Any]]:
        tasks: dict[str, asyncio.Task[NodeValue]] = {}

        async def run_node(node: PlannedNode) -> NodeValue:
            source: AudioArray | str | NodeValue = value
            if node.input is not None:
                try:
                    source = await tasks[node.input]
                except Exception:
                    raise _UpstreamFailed(node.input) from None
            return await self._run_model(node, source)

        for node in plan.in_dependency_order():
            tasks[node.id] = asyncio.create_task(run_node(node), name=f"workflow-{node.id}")
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        return [_output(node, tasks[node.id], self._function(node)) for node in plan.nodes]

    def _function(self, node: PlannedNode) -> FunctionToApply:
        """The node's function, sigmoid for a multi-label model (wake words) as on the HF
        endpoint."""
        if node.function_to_apply != "softmax":
            return node.function_to_apply
        return default_function(getattr(self.runtime.catalog.get(node.model), "model", None))

    async def _run_model(self, node: PlannedNode, source: AudioArray | str | Logits) -> NodeValue:
        if node.model == speakers.SPEAKER_ID:
            assert not isinstance(source, str | tuple)
            return await self.speaker_id.logits(source)
        entry = self.runtime.catalog[node.model]
        if node.task == "automatic-speech-recognition":
            assert not isinstance(source, str | tuple)
            answer = await transcribe(self.runtime, entry, source)
            return str(answer["text"])
        if node.task == "audio-classification":
            assert not isinstance(source, str | tuple)
            return await classify_audio(self.runtime, entry, source)
        if node.task == chat.AUDIO_CHAT:
            assert not isinstance(source, str | tuple)
            question = ChatMessage("user", node.prompt, (source,))
            options = GenerateOptions(max_tokens=node.max_new_tokens)
            return await chat.generate_text(self.runtime, entry, [question], options)
        assert isinstance(source, str)
        return await classify_text(self.runtime, entry, source)


def _decode_base64(text: str, limit: int) -> bytes:
    if len(text) // 4 * 3 > limit + 3:
        raise PayloadTooLarge(
            f"audio is about {len(text) // 4 * 3} bytes, more than the limit of {limit} bytes"
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidResultsRequest("data.audio.base64 is not valid base64") from None


def _safe_message(error: BaseException) -> str:
    if not isinstance(error, PeerError):
        log.warning("workflow input failed: %r", error)
    return describe(error).message


def _output(
    node: PlannedNode, task: asyncio.Task[NodeValue], function: FunctionToApply
) -> dict[str, Any]:
    output: dict[str, Any] = {
        "node_id": node.id,
        "model": {"id": node.model, "task": node.task},
    }
    error = task.exception()
    if isinstance(error, _UpstreamFailed):
        return {**output, "status": failure(f"not run: its input node {error.node_id!r} failed")}
    if error is not None:
        return {**output, "status": failure(_safe_message(error))}
    value = task.result()
    if isinstance(value, str):
        return {**output, "status": OK, "data": {"text": {"raw": value}}}
    labels, logits = value
    concepts = [
        {"id": label, "name": label, "value": score}
        for label, score in top_labels(labels, logits, top_k=None, function_to_apply=function)
    ]
    return {**output, "status": OK, "data": {"concepts": concepts}}
