"""``/v1/workflows``: ``POST`` creates, ``GET`` lists, ``GET /{id}`` and ``DELETE /{id}``,
and ``POST /{id}/results`` runs the workflow (:mod:`voxwire.services.workflows`) on up to
32 inputs, answering in Clarifai's shape.

``POST`` takes an ``Idempotency-Key`` header (up to 255 printable characters,
:mod:`voxwire.transports.http.idempotency`), as payment and cloud APIs do: the
first request with a key creates the workflow; a retry with the same key and body
gets the same answer (marked ``Idempotent-Replayed: true``), even after the server
crashed between commit and answer; the same key with another body gets 422. A key
lives as long as its workflow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from voxwire.services.runtime import Runtime
from voxwire.services.url_fetch import UrlInputsDisabled
from voxwire.services.workflow_store import (
    DuplicateWorkflow,
    StoredWorkflow,
    StoreFull,
    WorkflowStore,
)
from voxwire.services.workflows import (
    DEFINITION_BODY_LIMIT,
    MAX_WORKFLOWS,
    MIXED,
    OK,
    InvalidResultsRequest,
    InvalidWorkflow,
    ResultsRequest,
    WorkflowDefinition,
    WorkflowExists,
    WorkflowLimit,
    WorkflowNotFound,
    WorkflowRunner,
    failure,
    plan_workflow,
)
from voxwire.transports.http.hf import read_body, validation_message
from voxwire.transports.http.idempotency import REPLAYED, idempotency_key, refuse_reused_keys
from voxwire.transports.http.settings import ServerSettings


def _describe_workflow(stored: StoredWorkflow) -> dict[str, Any]:
    return {
        "id": stored.id,
        "nodes": stored.definition.get("nodes", []),
        "input_type": stored.definition.get("input_type"),
        "created_at": stored.created_at,
    }


class WorkflowService:
    """The workflow routes' logic: definitions in the store, runs on the runner."""

    def __init__(self, runtime: Runtime, settings: ServerSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.store = WorkflowStore(settings.data_dir / "voxwire.db", max_workflows=MAX_WORKFLOWS)
        self.runner = WorkflowRunner(runtime, settings)

    async def create(self, request: Request) -> tuple[dict[str, Any], bool]:
        """(the workflow, whether it is a replay of an earlier create with the same key)."""
        body = await read_body(request, DEFINITION_BODY_LIMIT)
        key = idempotency_key(request, body)
        try:
            definition = WorkflowDefinition.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidWorkflow(validation_message(exc)) from None
        plan = plan_workflow(definition, self.runtime)
        stored = StoredWorkflow(
            definition.id,
            {
                "nodes": [n.shown() for n in definition.nodes],
                "input_type": plan.input_kind,
            },
            datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )
        try:
            with refuse_reused_keys():
                earlier = await self.store.add(stored, key)
        except DuplicateWorkflow:
            raise WorkflowExists(f"a workflow with id {definition.id!r} exists already") from None
        except StoreFull as exc:
            raise WorkflowLimit(f"{exc}; delete some first") from None
        if earlier is not None:
            return _describe_workflow(earlier), True
        return _describe_workflow(stored), False

    async def get(self, workflow_id: str) -> StoredWorkflow:
        stored = await self.store.get(workflow_id)
        if stored is None:
            raise WorkflowNotFound(f"no workflow with id {workflow_id!r}")
        return stored

    async def results(self, workflow_id: str, request: Request) -> dict[str, Any]:
        stored = await self.get(workflow_id)
        try:
            definition = WorkflowDefinition.model_validate(
                {"id": stored.id, "nodes": stored.definition.get("nodes", [])}
            )
            plan = plan_workflow(definition, self.runtime)
        except (ValidationError, InvalidWorkflow) as exc:
            reason = exc.message if isinstance(exc, InvalidWorkflow) else "stored definition"
            raise InvalidWorkflow(
                f"workflow {workflow_id!r} cannot run on this server's models: {reason}"
            ) from None
        body = await read_body(request, self.settings.max_upload_bytes)
        try:
            parsed = ResultsRequest.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidResultsRequest(validation_message(exc)) from None
        if not self.settings.allow_url_inputs and any(
            i.data.audio is not None and i.data.audio.url is not None for i in parsed.inputs
        ):
            raise UrlInputsDisabled(
                "URL inputs are disabled on this server (start it with --allow-url-inputs "
                "to let it fetch public http(s) URLs); send the audio as data.audio.base64",
                param="inputs",
            )
        ids = [i.id for i in parsed.inputs if i.id is not None]
        if len(ids) != len(set(ids)):
            raise InvalidResultsRequest("input ids must be unique within a request")
        results = await self.runner.run(plan, parsed.inputs)
        codes = {r["status"]["code"] for r in results}
        if codes == {OK["code"]}:
            status = OK
        elif OK["code"] in codes or MIXED["code"] in codes:
            status = MIXED
        else:
            status = failure("every input failed; see each result's status")
        return {"status": status, "workflow": {"id": plan.id}, "results": results}


def router(runtime: Runtime, settings: ServerSettings) -> APIRouter:
    """The ``/v1/workflows`` routes on `runtime`'s models, stored under settings.data_dir."""
    service = WorkflowService(runtime, settings)
    api = APIRouter(prefix="/v1/workflows", tags=["workflows"])

    @api.post("", status_code=201, response_model=None)
    async def create_workflow(request: Request) -> Response:
        """Create a workflow (409 if the id exists; an Idempotency-Key makes it retryable)."""
        workflow, replayed = await service.create(request)
        headers = REPLAYED if replayed else None
        return JSONResponse({"status": OK, "workflow": workflow}, 201, headers=headers)

    @api.get("")
    async def list_workflows() -> dict[str, Any]:
        """Every workflow, oldest first."""
        stored = await service.store.all()
        return {"status": OK, "workflows": [_describe_workflow(s) for s in stored]}

    @api.get("/{workflow_id}")
    async def get_workflow(workflow_id: str) -> dict[str, Any]:
        """One workflow (404 if unknown)."""
        return {"status": OK, "workflow": _describe_workflow(await service.get(workflow_id))}

    @api.delete("/{workflow_id}")
    async def delete_workflow(workflow_id: str) -> dict[str, Any]:
        """Remove a workflow (404 if unknown)."""
        if not await service.store.delete(workflow_id):
            raise WorkflowNotFound(f"no workflow with id {workflow_id!r}")
        return {"status": OK}

    @api.post("/{workflow_id}/results", response_model=None)
    async def workflow_results(workflow_id: str, request: Request) -> Response:
        """Run the workflow on each input (one result per input)."""
        return JSONResponse(await service.results(workflow_id, request))

    return api
