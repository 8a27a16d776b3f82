"""The gateway's OpenAPI 3.1 document, served at `/v1/openapi.json`.

The request and response bodies are the wire events themselves, their schemas generated
from the same models as the topics' JSON Schemas (`resontinex.schemas`).

>>> doc = openapi_document("0.1.0")
>>> doc["openapi"], sorted(doc["paths"])
('3.1.0', ['/v1/costs', '/v1/decide', '/v1/decisions/{request_id}', '/v1/outcomes'])
>>> doc["paths"]["/v1/decide"]["post"]["requestBody"]["content"]["application/json"]["schema"]
{'$ref': '#/components/schemas/DecisionRequest'}
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from resontinex.schemas import Cost, Decision, DecisionRequest, Outcome

__all__ = ["openapi_document"]

_ERROR = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message"], "additionalProperties": False,
        "properties": {"code": {"type": "string", "description": "as a dead letter's `error.code` for an invalid "
                                                               "event; else unauthorized, forbidden_tenant, "
                                                               "unknown_decision, unavailable, bad_timeout"},
                       "message": {"type": "string"}}}},
}
_ACCEPTED = {
    "type": "object", "required": ["event_id", "tenant", "status"],
    "properties": {"event_id": {"type": "string"}, "tenant": {"type": "string"},
                   "status": {"type": "string", "enum": ["accepted", "pending"]},
                   "decision_url": {"type": "string", "description": "where the decision will be (pending only)"}},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    said = {400: "not JSON, not an object, or an empty body (`error.code` as a dead letter's)",
            401: "no bearer token, or an unknown one", 403: "the token may not write this tenant",
            404: "no such decision among those this gateway has read",
            413: "the body is larger than `max_body_bytes`",
            422: "the event breaks its schema (`error.code` as a dead letter's)",
            503: "Kafka cannot be reached"}
    return {str(s): _json(_ref("Error"), said[s]) for s in statuses}


@lru_cache(maxsize=1)
def _components() -> dict[str, Any]:
    _, defs = models_json_schema([(DecisionRequest, "validation"), (Outcome, "validation"), (Cost, "validation"),
                                  (Decision, "serialization")], ref_template="#/components/schemas/{model}")
    return {**defs.get("$defs", {}), "Error": _ERROR, "Accepted": _ACCEPTED}


def openapi_document(version: str) -> dict[str, Any]:
    """The whole document, for the package `version`."""
    publish = _errors(400, 401, 403, 413, 422, 503)
    return {
        "openapi": "3.1.0",
        "info": {"title": "resontinex HTTP gateway", "version": version,
                 "description": "Decision requests, outcomes and costs over HTTP for callers that cannot speak "
                                "Kafka: each is checked as the workers check it, published on its tenant's "
                                "partition, and (for a decision request) answered with its decision."},
        "security": [{"bearer": []}],
        "paths": {
            "/v1/decide": {"post": {
                "summary": "Publish a decision request and answer with its decision",
                "parameters": [{"name": "timeout_s", "in": "query", "required": False,
                                "description": "how long to wait for the decision (default and maximum in "
                                               "gateway.yaml)", "schema": {"type": "number", "minimum": 0}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("DecisionRequest")}}},
                "responses": {"200": _json(_ref("Decision"), "the decision (also for a request id already decided)"),
                              "202": _json(_ref("Accepted"), "published, not decided in time: it still will be; "
                                                             "GET decision_url later"),
                              **publish}}},
            "/v1/outcomes": {"post": {
                "summary": "Publish what happened after a decision",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Outcome")}}},
                "responses": {"202": _json(_ref("Accepted"), "published"), **publish}}},
            "/v1/costs": {"post": {
                "summary": "Publish the spend of one AI call",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Cost")}}},
                "responses": {"202": _json(_ref("Accepted"), "published"), **publish}}},
            "/v1/decisions/{request_id}": {"get": {
                "summary": "The decision of one of the token's tenant's requests",
                "parameters": [{"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json(_ref("Decision"), "the decision"), **_errors(401, 404)}}},
        },
        "components": {"schemas": _components(),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "a token of gateway.yaml: it writes one tenant"}}},
    }
