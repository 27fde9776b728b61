"""Schemathesis against the gateway's own OpenAPI document: no 5xx for any generated
request, and every error body in the documented error shape of its protocol."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from .fakes.openai_fake import OpenAIFake
from .gateway_harness import MASTER, RunningGateway, gateway_thread


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    mp = pytest.MonkeyPatch()
    mp.setenv("CROSSROADS_HOME", str(tmp_path_factory.mktemp("openapi-home")))
    mp.setenv("CROSSROADS_MASTER_KEY", MASTER)
    with OpenAIFake(require_key=False) as fake:
        config = (
            "models:\n  - name: m\n    backend: openai\n    model: gpt-4o\n"
            f"    base_url: {fake.url}/v1\n    max_retries: 0\n"
            "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n  max_request_bytes: 100000\n"
        )
        with gateway_thread(config) as gw:
            gw.create_key("fuzz")
            yield gw
    mp.undo()


def _error_schema(document: dict[str, Any], path: str, method: str, status: int) -> Any:
    responses = document["paths"][path][method]["responses"]
    spec = responses.get(str(status))
    assert spec is not None, f"{method.upper()} {path} returned undocumented {status}"
    return spec["content"]["application/json"]["schema"]


def test_no_5xx_and_errors_match_the_schema(running: RunningGateway) -> None:
    document = httpx.get(running.url + "/openapi.json").json()
    paths = document["paths"]
    assert {"post", "get", "delete"} <= set(paths["/v1/responses"]) | set(
        paths["/v1/responses/{response_id}"]
    )
    assert "post" in paths["/v1/messages/count_tokens"]
    schema = schemathesis.openapi.from_dict(document)
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            admin = case.path.startswith("/admin")
            key = MASTER if admin else running.keys["fuzz"]
            response = case.call(base_url=running.url, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code < 500, (case.path, response.status_code, response.text)
            assert response.headers["x-request-id"][0].startswith("req_")
            if response.status_code >= 400:
                method = case.method.lower()
                expected = _error_schema(document, case.path, method, response.status_code)
                jsonschema.validate(response.json(), expected)

        check()
        checked += 1
    assert checked >= 8  # every documented operation was exercised
