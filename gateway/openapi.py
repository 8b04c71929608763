"""The OpenAPI 3.1 document, generated from the endpoint table and the pydantic models, so it
cannot drift from the routes (a test compares the two anyway)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.endpoint import Endpoint
from gateway.idempotency import HEADER

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"{(\w+)}")


def document(endpoints: tuple[Endpoint, ...], *, version: str = "1") -> dict[str, Any]:
    outputs: set[type[BaseModel]] = {_error_model()}
    inputs: set[type[BaseModel]] = set()
    for e in endpoints:
        for model in (e.response, *e.extra_responses.values()):
            if model is not None:
                outputs.add(model)
        if e.body is not None:
            inputs.add(e.body)
    keyed = sorted(
        [(m, "serialization") for m in outputs] + [(m, "validation") for m in inputs],
        key=lambda x: (x[0].__name__, x[1]),
    )
    refs, schemas = models_json_schema(keyed, ref_template=REF)  # type: ignore[arg-type]
    components = schemas.get("$defs", {})

    def out_ref(model: type[BaseModel]) -> dict[str, Any]:
        return refs[(model, "serialization")]

    def in_ref(model: type[BaseModel]) -> dict[str, Any]:
        return refs[(model, "validation")]

    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e, out_ref, in_ref)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "seatserver",
            "version": version,
            "description": "Movie ticket booking: browse shows, watch a live seat map, hold "
            'seats. Errors come as {"error": {"code", "message", "details"}}.',
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _error_model() -> type[BaseModel]:
    from gateway.schemas import ErrorOut

    return ErrorOut


def _parameters(e: Endpoint) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    if e.path_model is not None:
        schema = e.path_model.model_json_schema()
        for name in _PARAM.findall(e.path):
            params.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": _strip(schema["properties"][name]),
                }
            )
    if e.query is not None:
        schema = e.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            param = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": _strip(prop),
            }
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    if e.method in ("POST", "PUT", "PATCH", "DELETE") and e.idempotency != "none":
        params.append(
            {
                "name": HEADER,
                "in": "header",
                "required": e.idempotency == "required",
                "description": "a retry with the same key gets the first answer",
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 200,
                    "pattern": "^[\\x21-\\x7e]+$",
                },
            }
        )
    return params


def _strip(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k not in ("title", "description")}


def _operation(e: Endpoint, out_ref: Any, in_ref: Any) -> dict[str, Any]:
    error = {
        "description": "an error",
        "content": {"application/json": {"schema": out_ref(_error_model())}},
    }
    responses: dict[str, Any] = {}
    if e.response is None:
        responses[str(e.status if e.status != 200 else 204)] = {"description": "done"}
    else:
        responses[str(e.status)] = {
            "description": "done",
            "content": {
                "application/json": {"schema": out_ref(e.response)},
                **{media: {"schema": {"type": "string"}} for media in e.media_types},
            },
        }
    for status, model in e.extra_responses.items():
        responses[str(status)] = {
            "description": "see the body",
            "content": {"application/json": {"schema": out_ref(model)}},
        }
    responses["default"] = error
    op: dict[str, Any] = {
        "operationId": e.name,
        "summary": e.summary,
        "tags": [e.tag],
        "parameters": _parameters(e),
        "responses": responses,
    }
    if e.needs_user:
        op["security"] = [{"bearer": []}]
    if e.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": in_ref(e.body)}},
        }
    return op
