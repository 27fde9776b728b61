"""The gateway's OpenAPI document: request bodies and error shapes of each endpoint.

Routes read raw bodies (so parsing errors get the protocol's own error shape), so the
schemas are declared here, by hand, from the vendors' API references: enough for
clients and for property-based testing (schemathesis) of every documented status.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "admin_key_create",
    "admin_key_list",
    "admin_key_revoke",
    "chat_completions",
    "count_tokens",
    "embeddings",
    "errors",
    "messages",
    "metrics",
    "response_by_id",
    "responses",
]

_OPENAI_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

_ANTHROPIC_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}

_STATUSES = ("400", "401", "403", "404", "408", "409", "413", "429", "500", "502", "503", "504")


def errors(protocol: str) -> dict[str, Any]:
    """``responses`` for every error status, in the protocol's error shape."""
    schema = _OPENAI_ERROR if protocol == "openai" else _ANTHROPIC_ERROR
    return {
        "responses": {
            status: {
                "description": "Error",
                "content": {"application/json": {"schema": schema}},
            }
            for status in _STATUSES
        }
    }


def _body(schema: dict[str, Any], protocol: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        },
        **errors(protocol),
    }


_TEXT_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
        "content": {"type": "string"},
    },
}


def chat_completions() -> dict[str, Any]:
    """https://platform.openai.com/docs/api-reference/chat/create (the common fields)."""
    return _body(
        {
            "type": "object",
            "required": ["model", "messages"],
            "properties": {
                "model": {"type": "string"},
                "messages": {"type": "array", "items": _TEXT_MESSAGE},
                "max_tokens": {"type": "integer", "minimum": 1},
                "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                "top_p": {"type": "number", "minimum": 0, "maximum": 1},
                "stream": {"type": "boolean"},
                "stop": {
                    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
                },
                "seed": {"type": "integer"},
                "user": {"type": "string"},
            },
        },
        "openai",
    )


def messages() -> dict[str, Any]:
    """https://docs.anthropic.com/en/api/messages (the common fields)."""
    return _body(
        {
            "type": "object",
            "required": ["model", "messages", "max_tokens"],
            "properties": {
                "model": {"type": "string"},
                "max_tokens": {"type": "integer", "minimum": 1},
                "system": {"type": "string"},
                "messages": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["role", "content"],
                        "properties": {
                            "role": {"type": "string", "enum": ["user", "assistant"]},
                            "content": {"type": "string"},
                        },
                    },
                },
                "temperature": {"type": "number", "minimum": 0, "maximum": 1},
                "stop_sequences": {"type": "array", "items": {"type": "string"}},
                "stream": {"type": "boolean"},
            },
        },
        "anthropic",
    )


def embeddings() -> dict[str, Any]:
    """https://platform.openai.com/docs/api-reference/embeddings/create"""
    return _body(
        {
            "type": "object",
            "required": ["model", "input"],
            "properties": {
                "model": {"type": "string"},
                "input": {
                    "oneOf": [
                        {"type": "string"},
                        {"type": "array", "items": {"type": "string"}},
                    ]
                },
                "encoding_format": {"type": "string", "enum": ["float", "base64"]},
            },
        },
        "openai",
    )


def admin_key_create() -> dict[str, Any]:
    """``POST /admin/keys``: 201 with the new key, linked to its revocation (by id or by
    name) for stateful testing."""
    spec = _body(
        {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "budget_usd": {"type": "number", "minimum": 0},
                "rpm": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                "tpm": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                "models": {"type": "array", "items": {"type": "string"}},
                "expires_at": {"type": "string", "format": "date-time"},
            },
        },
        "openai",
    )
    created = {
        **_KEY_RECORD,
        "required": ["key", *_KEY_RECORD["required"]],
        "properties": {"key": {"type": "string"}, **_KEY_RECORD["properties"]},
    }
    spec["responses"]["201"] = {
        "description": "The new key; its raw value is shown only in this answer.",
        "content": {"application/json": {"schema": created}},
        "links": {
            "RevokeKeyById": {
                "operationRef": _REVOKE,
                "parameters": {"name_or_id": "$response.body#/id"},
            },
            "RevokeKeyByName": {
                "operationRef": _REVOKE,
                "parameters": {"name_or_id": "$response.body#/name"},
            },
        },
    }
    return spec


def admin_key_list() -> dict[str, Any]:
    """``GET /admin/keys``: every key, revoked ones included."""
    listing = {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": _KEY_RECORD},
        },
    }
    return _answer(listing)


def admin_key_revoke() -> dict[str, Any]:
    """``DELETE /admin/keys/{name_or_id}``: the revoked key."""
    return _answer(_KEY_RECORD)


def metrics() -> dict[str, Any]:
    """``GET /metrics``: the Prometheus text format."""
    spec = errors("openai")
    spec["responses"]["200"] = {
        "description": "Prometheus metrics",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    return spec


_REVOKE = "#/paths/~1admin~1keys~1{name_or_id}/delete"

_NULLABLE_STRING = {"type": ["string", "null"]}

_KEY_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "prefix", "models", "created_at", "status"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "prefix": {"type": "string"},
        "budget_usd": {"type": ["number", "null"]},
        "rpm": {"type": ["integer", "null"]},
        "tpm": {"type": ["integer", "null"]},
        "models": {"type": "array", "items": {"type": "string"}},
        "expires_at": _NULLABLE_STRING,
        "revoked_at": _NULLABLE_STRING,
        "created_at": {"type": "string"},
        "status": {"type": "string"},
    },
}


def _answer(schema: dict[str, Any]) -> dict[str, Any]:
    spec = errors("openai")
    spec["responses"]["200"] = {
        "description": "Successful Response",
        "content": {"application/json": {"schema": schema}},
    }
    return spec


_RESPONSES_ITEM = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "type": {"const": "message"},
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
        "content": {"type": "string"},
    },
}


def responses() -> dict[str, Any]:
    """https://platform.openai.com/docs/api-reference/responses/create (the common fields)."""
    return _body(
        {
            "type": "object",
            "required": ["model", "input"],
            "properties": {
                "model": {"type": "string"},
                "input": {
                    "oneOf": [{"type": "string"}, {"type": "array", "items": _RESPONSES_ITEM}]
                },
                "instructions": {"type": "string"},
                "max_output_tokens": {"type": "integer", "minimum": 1},
                "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                "top_p": {"type": "number", "minimum": 0, "maximum": 1},
                "stream": {"type": "boolean"},
                "store": {"type": "boolean"},
                "previous_response_id": {"type": "string"},
                "text": {
                    "type": "object",
                    "properties": {
                        "format": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {
                                "type": {"type": "string", "enum": ["text", "json_object"]}
                            },
                        }
                    },
                },
            },
        },
        "openai",
    )


def response_by_id() -> dict[str, Any]:
    """``GET`` / ``DELETE /v1/responses/{response_id}``: a response the key stored."""
    return errors("openai")


def count_tokens() -> dict[str, Any]:
    """https://docs.anthropic.com/en/api/messages-count-tokens"""
    spec = messages()
    schema = spec["requestBody"]["content"]["application/json"]["schema"]
    schema["required"] = ["model", "messages"]
    schema["properties"].pop("max_tokens")
    schema["properties"].pop("stream")
    return spec
