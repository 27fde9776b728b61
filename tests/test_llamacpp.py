"""The llamacpp backend on the embedded SmolLM2-135M-Instruct GGUF (real generation)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from .conftest import require

require("llama_cpp", "llama-cpp-python is not installed: pip install -e '.[dev]'")

from crossroads import Client
from crossroads.backends.base import Deployment
from crossroads.backends.embedded import embedded_model_path
from crossroads.backends.llamacpp import MODELS, LlamaCppBackend, LoadedModel
from crossroads.cli import app
from crossroads.errors import BadRequestError, ConfigError, ContextWindowExceededError
from crossroads.streaming import StreamAccumulator
from crossroads.types import ChatChunk, ChatRequest, ChatResponse

PARIS = "What is the capital of France? Answer in one sentence."
COUNT = "Count from 1 to 20, separated by commas."
STORY = "Write a long story about a robot."


@pytest.fixture(scope="module")
def model_path() -> Path:
    return embedded_model_path("local/smollm2")


def make_backend(path: Path | str, name: str = "smol", **options: object) -> LlamaCppBackend:
    return LlamaCppBackend(
        Deployment(name=name, backend="llamacpp", model=str(path), options=dict(options))
    )


@pytest.fixture(scope="module")
def smol(model_path: Path) -> LlamaCppBackend:
    return make_backend(model_path)


def ask(text: str, **options: object) -> ChatRequest:
    options.setdefault("max_tokens", 48)
    return ChatRequest.model_validate(
        {"model": "smol", "messages": [{"role": "user", "content": text}], **options}
    )


async def collect(chunks: AsyncIterator[ChatChunk]) -> tuple[ChatResponse, list[ChatChunk]]:
    acc, seen = StreamAccumulator(), []
    async for chunk in chunks:
        acc.add(chunk)
        seen.append(chunk)
    return acc.response(), seen


async def assert_still_works(backend: LlamaCppBackend) -> None:
    reply = await backend.complete(ask(PARIS, temperature=0))
    assert "Paris" in reply.text


# --- answers -------------------------------------------------------------------------


async def test_complete_answers_with_usage(smol: LlamaCppBackend) -> None:
    reply = await smol.complete(ask(PARIS, temperature=0))
    assert "Paris" in reply.text
    assert reply.finish_reason == "stop"
    assert reply.model == "smol"
    usage = reply.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_stream_has_the_canonical_shape_and_the_same_answer(smol: LlamaCppBackend) -> None:
    whole = await smol.complete(ask(PARIS, temperature=0, seed=7))
    streamed, chunks = await collect(smol.stream(ask(PARIS, temperature=0, seed=7)))
    assert "Paris" in streamed.text
    assert streamed.text == whole.text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) > 1  # token by token, not one blob
    finish, usage = chunks[-2], chunks[-1]
    assert finish.choices[0].finish_reason == "stop" and not finish.choices[0].delta.content
    assert usage.choices == [] and usage.usage is not None
    assert usage.usage.prompt_tokens == whole.usage.prompt_tokens
    assert usage.usage.completion_tokens == whole.usage.completion_tokens


async def test_json_schema_answer_validates(smol: LlamaCppBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    request = ask(
        "Give the capital of France as JSON with the keys city and country.",
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    for reply in (await smol.complete(request), (await collect(smol.stream(request)))[0]):
        jsonschema.validate(json.loads(reply.text), schema)
        assert reply.finish_reason == "stop"


async def test_stop_sequence_is_honoured(smol: LlamaCppBackend) -> None:
    free = await smol.complete(ask(COUNT, temperature=0))
    assert "5" in free.text  # so the stop below really cuts the answer
    request = ask(COUNT, temperature=0, stop=["5"])
    for reply in (await smol.complete(request), (await collect(smol.stream(request)))[0]):
        assert reply.text and "5" not in reply.text
        assert free.text.startswith(reply.text)
        assert reply.finish_reason == "stop"


async def test_max_tokens_ends_with_length(smol: LlamaCppBackend) -> None:
    request = ask(STORY, temperature=0, max_tokens=5)
    for reply in (await smol.complete(request), (await collect(smol.stream(request)))[0]):
        assert reply.finish_reason == "length"
        assert reply.usage.completion_tokens == 5


async def test_seed_makes_sampling_reproducible(smol: LlamaCppBackend) -> None:
    def joke(seed: int) -> ChatRequest:
        return ask("Tell me a joke.", temperature=0.8, seed=seed, max_tokens=24)

    first, again = await smol.complete(joke(1)), await smol.complete(joke(1))
    assert first.text == again.text
    others = {(await smol.complete(joke(seed))).text for seed in (2, 3, 4)}
    assert others | {first.text} != {first.text}  # the seed does change the sample


# --- concurrency ---------------------------------------------------------------------


async def test_concurrent_requests_run_one_at_a_time_in_order(
    smol: LlamaCppBackend, model_path: Path
) -> None:
    prompts = [PARIS, "Name three colors.", "What is 2 + 2?"]
    sequential = [(await smol.complete(ask(p, temperature=0))).text for p in prompts]
    finished: list[int] = []

    async def one(i: int) -> str:
        if i == 1:  # a stream in the middle shares the same queue
            text = (await collect(smol.stream(ask(prompts[i], temperature=0))))[0].text
        else:
            text = (await smol.complete(ask(prompts[i], temperature=0))).text
        finished.append(i)
        return text

    assert await asyncio.gather(*(one(i) for i in range(3))) == sequential
    assert finished == [0, 1, 2]  # first come, first served

    twin = make_backend(model_path, name="twin")
    assert (await twin.load()).llama is (await smol.load()).llama

    def no_second_load() -> LoadedModel:
        raise AssertionError("loaded twice")

    assert MODELS.get(smol.load_options, no_second_load) is await smol.load()


async def test_closing_a_stream_stops_generation(smol: LlamaCppBackend) -> None:
    model = await smol.load()
    stream = smol.stream(ask(STORY, temperature=0, max_tokens=1000))
    received = 0
    async for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received == 3:
            break
    await stream.aclose()
    # The next job on the model's worker runs once the abandoned generation has ended.
    loop = asyncio.get_running_loop()
    evaluated = await loop.run_in_executor(model.worker, lambda: model.llama.n_tokens)
    assert evaluated < 200  # prompt + a few tokens, far from 1000
    await assert_still_works(smol)


# --- bad input -----------------------------------------------------------------------


async def test_missing_file_names_the_path(smol: LlamaCppBackend, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        await make_backend(missing).complete(ask(PARIS))
    await assert_still_works(smol)


@pytest.fixture(params=["random", "truncated"])
def corrupt_file(request: pytest.FixtureRequest, tmp_path: Path, model_path: Path) -> Path:
    bad = tmp_path / f"{request.param}.gguf"
    data = model_path.read_bytes()
    bad.write_bytes(os.urandom(4096) if request.param == "random" else data[: len(data) // 3])
    return bad


async def test_corrupt_file_is_a_config_error(smol: LlamaCppBackend, corrupt_file: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid GGUF file") as info:
        await make_backend(corrupt_file).complete(ask(PARIS))
    assert str(corrupt_file) in str(info.value)
    await assert_still_works(smol)


async def test_prompt_over_context_is_refused(smol: LlamaCppBackend, model_path: Path) -> None:
    small = make_backend(model_path, name="small", n_ctx=256)
    long_prompt = ask("Repeat after me: " + "apple banana cherry " * 200)
    with pytest.raises(ContextWindowExceededError, match="256"):
        await small.complete(long_prompt)
    with pytest.raises(ContextWindowExceededError):
        await collect(small.stream(long_prompt))
    assert small.capabilities.context_window == 256
    await assert_still_works(small)
    await assert_still_works(smol)


async def test_bad_options_and_unsupported_requests(
    smol: LlamaCppBackend, model_path: Path
) -> None:
    with pytest.raises(ConfigError, match="n_ctx"):
        make_backend(model_path, n_ctx="big")
    with pytest.raises(ConfigError, match="n_gpu_layer"):  # a typo of n_gpu_layers
        await make_backend(model_path, n_gpu_layer=1).load()
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(BadRequestError, match="tools"):
        await smol.complete(ask(PARIS, tools=[tool]))
    caps = smol.capabilities
    assert caps.streaming and caps.json_schema and not caps.tools
    assert caps.context_window == 8192  # SmolLM2's trained context, the default cap
    await assert_still_works(smol)


# --- through the client and the CLI --------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path, model_path: Path) -> Path:
    path = tmp_path / "crossroads.yaml"
    path.write_text(f"models:\n  - name: smol\n    backend: llamacpp\n    model: {model_path}\n")
    return path


def test_client_with_a_config_entry(config_file: Path) -> None:
    with Client(config_file) as client:
        reply = client.chat("smol", PARIS, temperature=0, max_tokens=48)
        assert "Paris" in reply.text
        chunks = list(client.stream_chat("smol", PARIS, temperature=0, max_tokens=48))
        acc = StreamAccumulator()
        for chunk in chunks:
            acc.add(chunk)
        assert acc.response().text == reply.text
        assert chunks[-1].usage is not None and chunks[-1].usage.timings is not None


def test_client_embedded_model_by_name() -> None:
    with Client() as client:
        assert client.deployment("local/smollm2").backend == "llamacpp"
        reply = client.chat("local/smollm2", PARIS, temperature=0, max_tokens=48)
        assert "Paris" in reply.text


def test_cli_chat(config_file: Path) -> None:
    result = CliRunner().invoke(app, ["-c", str(config_file), "chat", "smol", PARIS])
    assert result.exit_code == 0, result.output
    assert "Paris" in result.stdout


def test_cli_chat_embedded_model() -> None:
    result = CliRunner().invoke(app, ["chat", "local/smollm2", PARIS, "--max-tokens", "48"])
    assert result.exit_code == 0, result.output
    assert "Paris" in result.stdout
