"""Schemathesis over every endpoint of a real ``crossroads serve``, stateful: sequences of
calls that follow the OpenAPI document's links (create a key, then revoke it by id or by
name), each response checked by every built-in check: no 5xx, documented status codes,
content types and bodies."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation.stateful.state_machine import APIStateMachine

from ..fakes.openai_fake import OpenAIFake
from ..gateway_harness import MASTER, RunningGateway, start_process

#: Every operation of the document (the stateful run must reach each one).
OPERATIONS = {
    "POST /v1/chat/completions", "GET /v1/models", "POST /v1/embeddings", "POST /v1/messages",
    "GET /health", "GET /metrics", "GET /admin/keys", "POST /admin/keys",
    "DELETE /admin/keys/{name_or_id}", "GET /admin/usage",
    "POST /v1/responses", "GET /v1/responses/{response_id}",
    "DELETE /v1/responses/{response_id}", "POST /v1/messages/count_tokens",
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with OpenAIFake(require_key=False) as fake:
        config = tmp / "gw.yaml"
        config.write_text(
            "models:\n  - name: m\n    backend: openai\n    model: gpt-4o\n"
            f"    base_url: {fake.url}/v1\n    max_retries: 0\n"
            "    prices: {input: 1.0, output: 2.0}\n"
            "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n  max_request_bytes: 100000\n",
            encoding="utf-8",
        )
        gw = start_process(config, tmp / "gw.log", env={"CROSSROADS_HOME": str(tmp)})
        try:
            gw.create_key("fuzz", budget_usd=5.0, models=["m"])
            yield gw
        finally:
            gw.stop()


def _headers(path: str, client_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {MASTER if path.startswith('/admin') else client_key}"}


def _validate(response: Any, case: Any, **transport: Any) -> None:
    assert response.status_code < 500, (case.path, response.status_code, response.text)
    # Every built-in check but "schema-valid data is accepted": the schemas give the
    # shape; a well-shaped request can still be refused on meaning (an expiry in the
    # past, a model the key may not use, a string with control characters).
    case.validate_response(
        response, excluded_checks=[positive_data_acceptance], transport_kwargs=transport
    )


def _schema(gateway: RunningGateway) -> Any:
    document = httpx.get(gateway.url + "/openapi.json", timeout=10).json()
    return schemathesis.openapi.from_dict(document)


def test_stateful_runs_follow_the_links_and_every_answer_conforms(
    gateway: RunningGateway,
) -> None:
    called: set[str] = set()
    revoked: list[str] = []
    client_key = gateway.keys["fuzz"]

    unique = itertools.count()

    class Fuzz(_schema(gateway).as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            # A fresh name for every key, so that a create answers the same whether or
            # not an earlier example made that name: Hypothesis replays examples, and
            # which links can be followed must not depend on the server's history.
            name = case.body.get("name") if isinstance(case.body, dict) else None
            if case.method == "POST" and isinstance(name, str) and name:
                case.body["name"] = f"{name}-{next(unique)}"

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": gateway.url, "headers": _headers(case.path, client_key),
                    "timeout": 10}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            called.add(f"{case.method.upper()} {case.path}")
            if case.method == "DELETE" and response.status_code == 200:
                revoked.append(response.json()["name"])

        def validate_response(self, response: Any, case: Any, *_: Any, **kwargs: Any) -> None:
            _validate(response, case, **kwargs)

    assert issubclass(Fuzz, APIStateMachine)
    Fuzz.run(settings=settings(
        max_examples=25, stateful_step_count=4, deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
    ))
    # keys were created (or listed), then revoked through the links: a random id finds
    # no key (the client key may be among them: the next test makes its own)
    assert {"POST /admin/keys", "DELETE /admin/keys/{name_or_id}"} <= called
    assert revoked


def test_every_operation_answers_in_its_documented_shape(gateway: RunningGateway) -> None:
    client_key = gateway.create_key("stateless", budget_usd=5.0, models=["m"])
    called: set[str] = set()
    for result in _schema(gateway).get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            response = case.call(
                base_url=gateway.url, headers=_headers(case.path, client_key), timeout=10
            )
            _validate(response, case)

        check()
        called.add(f"{operation.method.upper()} {operation.path}")
    assert called == OPERATIONS


@pytest.mark.parametrize("field", ["rpm", "tpm"])
def test_a_key_limit_beyond_the_database_integer_is_a_400(
    gateway: RunningGateway, field: str
) -> None:
    # Found by the fuzzing above: 2**63 overflowed SQLite's INTEGER (a 500 with a
    # traceback); PostgreSQL's INTEGER ends at 2**31 - 1.
    for value in (2**63, 2**31):
        response = httpx.post(
            gateway.url + "/admin/keys",
            json={"name": f"big-{field}-{value}", field: value},
            headers={"Authorization": f"Bearer {MASTER}"},
            timeout=10,
        )
        assert response.status_code == 400, response.text
        assert field in response.json()["error"]["message"]
