"""The transformers backend on tiny random models of all five seed architectures.

Real torch, real transformers, real weights (random, seeded), built offline in the
session's temporary directory by :mod:`tests.local_models`.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import require

_hint = "needs torch and transformers: pip install torch==2.13.0 && pip install -e '.[dev]'"
require("torch", _hint)
require("transformers", _hint)

from crossroads import Client
from crossroads.backends._local import plain_prompt
from crossroads.backends.base import Deployment, load_backend
from crossroads.backends.hf import TransformersBackend
from crossroads.errors import APIError, ConfigError, ContextWindowExceededError
from crossroads.types import ChatChunk, ChatRequest

from .local_models import ARCHITECTURES, TinyModels, tiny_models  # noqa: F401

ARCHS = list(ARCHITECTURES)
PROMPTS = [
    "Hi",
    "Tell me a long story about the river, the old mill and the baker who opened at six.",
    "What is the capital of France?",
    "Count slowly: one, two, three",
]


def backend(folder: Path, name: str = "tiny", **options: Any) -> TransformersBackend:
    # float32 on CPU everywhere, so greedy results are exact to compare (even on a GPU box).
    options = {"device": "cpu", "dtype": "float32", **options}
    deployment = Deployment(name=name, backend="transformers", model=str(folder), options=options)
    return TransformersBackend(deployment)


def request(content: str, **fields: Any) -> ChatRequest:
    return ChatRequest(model="tiny", messages=[{"role": "user", "content": content}], **fields)


async def collect(b: TransformersBackend, req: ChatRequest) -> list[ChatChunk]:
    return [chunk async for chunk in b.stream(req)]


def test_registered_and_lazy() -> None:
    assert load_backend("transformers") is TransformersBackend
    code = "import sys, crossroads.backends.hf; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("arch", ARCHS)
async def test_complete_and_stream(tiny_models: TinyModels, arch: str) -> None:  # noqa: F811
    b = backend(tiny_models[arch])
    req = request("Hello, who are you?", max_tokens=12)
    reply = await b.complete(req)
    assert reply.text
    assert reply.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 0
    assert 0 < reply.usage.completion_tokens <= 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens

    chunks = await collect(b, req)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 1  # token by token, not one blob
    assert "".join(pieces) == reply.text
    assert chunks[-2].choices[0].finish_reason == reply.finish_reason
    assert chunks[-1].choices == []
    assert chunks[-1].usage == reply.usage
    assert len({c.id for c in chunks}) == 1


@pytest.mark.parametrize("arch", ARCHS)
async def test_prompt_template_paths(tiny_models: TinyModels, arch: str) -> None:  # noqa: F811
    b = backend(tiny_models[arch])
    req = request("What is the capital of France?", max_tokens=1)
    loaded = await b.load()
    tokenizer = loaded.tokenizer
    if arch == "llama":
        assert loaded.chat_template
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "What is the capital of France?"}],
            add_generation_prompt=True,
            tokenize=False,
        )
        expected = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    else:
        assert not loaded.chat_template
        expected = len(tokenizer(plain_prompt(req))["input_ids"])
    assert (await b.complete(req)).usage.prompt_tokens == expected
    assert loaded.architecture == ARCHITECTURES[arch]


def _stop_from(text: str) -> str:
    """A short substring from the middle of ``text`` (random models write odd text)."""
    for start in range(2, len(text) - 3):
        piece = text[start : start + 3]
        if "\ufffd" not in piece and piece.strip():
            return piece
    pytest.fail(f"no usable stop sequence in {text!r}")


@pytest.mark.parametrize("arch", ARCHS)
async def test_stop_sequence(tiny_models: TinyModels, arch: str) -> None:  # noqa: F811
    b = backend(tiny_models[arch])
    first = await b.complete(request("Tell me about the garden", max_tokens=24, ignore_eos=True))
    stop = _stop_from(first.text)
    cut = await b.complete(
        request("Tell me about the garden", max_tokens=24, ignore_eos=True, stop=[stop])
    )
    assert stop not in cut.text
    assert cut.text == first.text[: first.text.index(stop)]
    assert cut.finish_reason == "stop"
    streamed = await collect(b, request("Tell me about the garden", max_tokens=24, stop=stop))
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == cut.text


@pytest.mark.parametrize("arch", ARCHS)
async def test_max_tokens_length(tiny_models: TinyModels, arch: str) -> None:  # noqa: F811
    b = backend(tiny_models[arch])
    reply = await b.complete(request("Count slowly", max_tokens=7, ignore_eos=True))
    assert reply.finish_reason == "length"
    assert reply.usage.completion_tokens == 7


@pytest.mark.parametrize("arch", ARCHS)
async def test_seed_reproducible(tiny_models: TinyModels, arch: str) -> None:  # noqa: F811
    b = backend(tiny_models[arch])

    async def sample(seed: int) -> str:
        req = request("Write a poem", max_tokens=12, temperature=1.0, seed=seed, ignore_eos=True)
        return (await b.complete(req)).text

    assert await sample(7) == await sample(7)
    assert len({await sample(s) for s in (1, 2, 3)}) > 1
    # A seeded request gives the same text when it shares a batch with others.
    alone = await sample(11)
    together = await asyncio.gather(sample(11), sample(12), sample(11))
    assert together[0] == together[2] == alone


@pytest.mark.parametrize("arch", ARCHS)
async def test_batching_equivalence(tiny_models: TinyModels, arch: str) -> None:  # noqa: F811
    b = backend(tiny_models[arch])
    reqs = [request(p, max_tokens=16 + 4 * i, ignore_eos=True) for i, p in enumerate(PROMPTS)]
    one_by_one = [(await b.complete(r)).text for r in reqs]
    engine = b.engine
    assert engine is not None
    engine.stats.max_batch_seen = 0
    together = await asyncio.gather(*(b.complete(r) for r in reqs))
    assert [r.text for r in together] == one_by_one
    assert engine.stats.max_batch_seen > 1
    assert [r.usage.completion_tokens for r in together] == [16, 20, 24, 28]


@pytest.mark.parametrize("arch", ARCHS)
async def test_join_running_batch(tiny_models: TinyModels, arch: str) -> None:  # noqa: F811
    """Requests that arrive mid-decode join the running batch with the same results."""
    b = backend(tiny_models[arch])
    long = request(PROMPTS[1], max_tokens=48, ignore_eos=True)
    late = [request(p, max_tokens=12, ignore_eos=True) for p in PROMPTS[::2]]
    expected_long = (await b.complete(long)).text
    expected_late = [(await b.complete(r)).text for r in late]
    engine = b.engine
    assert engine is not None
    joined = engine.stats.joined

    async def long_run() -> str:
        text = ""
        async for chunk in b.stream(long):
            text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
            if len(text) > 5 and not started.is_set():
                started.set()
        return text

    started = asyncio.Event()
    task = asyncio.create_task(long_run())
    await started.wait()
    late_texts = await asyncio.gather(*(b.complete(r) for r in late))
    assert await task == expected_long
    assert [r.text for r in late_texts] == expected_late
    assert engine.stats.joined > joined


async def test_cancelled_stream_frees_its_row(tiny_models: TinyModels) -> None:  # noqa: F811
    b = backend(tiny_models["llama"])
    await b.complete(request("warm up", max_tokens=1))
    engine = b.engine
    assert engine is not None
    before = engine.stats.tokens
    stream = b.stream(request("Tell me everything", max_tokens=400, ignore_eos=True))
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    reply = await b.complete(request("Hi", max_tokens=5, ignore_eos=True))
    assert reply.usage.completion_tokens == 5
    assert engine.stats.tokens - before < 300


async def test_forward_failure_fails_its_batch_only(
    tiny_models: TinyModels,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = backend(tiny_models["gpt_neox"])
    expected = await b.complete(request("Hi", max_tokens=4, ignore_eos=True))
    engine = b.engine
    assert engine is not None

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(engine, "_forward", broken)
    with pytest.raises(APIError, match="simulated"):
        await b.complete(request("Hi", max_tokens=4))
    monkeypatch.undo()
    assert (await b.complete(request("Hi", max_tokens=4, ignore_eos=True))).text == expected.text


def test_client_with_config_file(tiny_models: TinyModels, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "crossroads.yaml"
    config.write_text(
        "models:\n"
        "  - name: tiny-llama\n"
        "    backend: transformers\n"
        f"    model: {tiny_models['llama']}\n"
        "    options: {device: cpu, dtype: float32, max_batch_size: 4}\n"
        "  - name: tiny-falcon\n"
        "    backend: transformers\n"
        f"    model: {tiny_models['falcon']}\n",
        encoding="utf-8",
    )
    with Client(config) as client:
        for name in ("tiny-llama", "tiny-falcon"):
            reply = client.chat(name, "Hello there", max_tokens=6, ignore_eos=True)
            assert reply.usage.completion_tokens == 6
            assert reply.text
            chunks = list(client.stream_chat(name, "Hello there", max_tokens=6, ignore_eos=True))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text == reply.text
            assert chunks[-1].usage is not None
            assert chunks[-1].usage.completion_tokens == 6


async def test_missing_folder(tiny_models: TinyModels, tmp_path: Path) -> None:  # noqa: F811
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="no-such-model"):
        await backend(missing).complete(request("Hi"))
    assert (await backend(tiny_models["llama"]).complete(request("Hi", max_tokens=3))).text


async def test_unknown_architecture(tiny_models: TinyModels) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="NoSuchForCausalLM"):
        await backend(tiny_models.unknown_arch).complete(request("Hi"))
    assert (await backend(tiny_models["bloom"]).complete(request("Hi", max_tokens=3))).text


async def test_prompt_over_context(tiny_models: TinyModels) -> None:  # noqa: F811
    b = backend(tiny_models.small_context)
    assert b.capabilities.context_window == 128
    with pytest.raises(ContextWindowExceededError, match="128"):
        await b.complete(request("the river ran past the old mill " * 40))
    reply = await b.complete(request("Hi", max_tokens=500, ignore_eos=True))
    assert reply.finish_reason == "length"
    assert reply.usage.prompt_tokens + reply.usage.completion_tokens == 128


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="max_batch"):
        backend(Path("/nowhere"), max_batch=4)
    with pytest.raises(ConfigError, match="dtype"):
        backend(Path("/nowhere"), dtype="float8")
    with pytest.raises(ConfigError, match="device"):
        backend(Path("/nowhere"), device="tpu")


async def test_gguf_file(tiny_models: TinyModels) -> None:  # noqa: F811
    """A .gguf file (or a folder holding one) loads and answers like the original model."""
    req = request("What is the capital of France?", max_tokens=16, ignore_eos=True)
    expected = await backend(tiny_models["llama"]).complete(req)
    for model in (tiny_models.gguf, tiny_models.gguf.parent):
        b = backend(model)
        reply = await b.complete(req)
        assert reply.text == expected.text
        assert reply.usage == expected.usage
        assert (await b.load()).chat_template
