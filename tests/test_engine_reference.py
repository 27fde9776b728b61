"""The batching engine against ``transformers``' own ``model.generate()``.

The engine (``backends/_batching.py``) does its own left padding, position ids and KV
cache handling; greedy decoding must give exactly the tokens ``generate()`` gives, for
every tiny architecture, one request at a time and batched.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .conftest import require

torch = require("torch", "pip install torch==2.13.0 && pip install -e '.[dev]'")
require("transformers", "pip install -e '.[dev]'")

from crossroads.backends._batching import BatchingEngine, GenerationParams  # noqa: E402

from .local_models import ARCHITECTURES, TinyModels, tiny_models  # noqa: E402, F401
from .test_transformers_backend import PROMPTS, backend, request  # noqa: E402

NEW_TOKENS = 24


def _reference(model: Any, tok: Any, prompts: list[list[int]], eos: set[int]) -> list[list[int]]:
    """Greedy ``generate()`` on the prompts as one left-padded batch, cut at EOS."""
    width = max(len(p) for p in prompts)
    pad = tok.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            num_beams=1,
            pad_token_id=pad,
            eos_token_id=sorted(eos),
        )
    rows = []
    for row in out[:, width:].tolist():
        cut = next((i for i, t in enumerate(row) if t in eos), len(row))
        rows.append(row[:cut])
    return rows


async def _engine_ids(engine: BatchingEngine, prompts: list[list[int]], mode: str) -> list:
    """Greedy ids from the engine: ``alone`` one request at a time, ``together`` all
    submitted at once (one batch), ``joined`` the first running before the others arrive
    and join its batch mid-decode."""
    seen: dict[int, list[int]] = {}
    finish = engine._finish

    def record(seq: Any, reason: Any) -> None:
        seen[id(seq.params)] = list(seq.ids)
        finish(seq, reason)

    engine._finish = record  # type: ignore[method-assign]
    try:
        params = [GenerationParams(prompt_ids=p, max_new_tokens=NEW_TOKENS) for p in prompts]

        async def run(p: GenerationParams) -> None:
            async for _ in engine.submit(p).deltas():
                pass

        if mode == "together":
            engine.stats.max_batch_seen = 0
            await asyncio.gather(*(run(p) for p in params))
            assert engine.stats.max_batch_seen == len(prompts)
        elif mode == "joined":
            joined = engine.stats.joined
            first = engine.submit(params[0])
            stream = first.deltas()
            await anext(stream)  # the first request is decoding
            await asyncio.gather(*(run(p) for p in params[1:]))
            async for _ in stream:
                pass
            assert engine.stats.joined > joined
        else:
            for p in params:
                await run(p)
        return [seen[id(p)] for p in params]
    finally:
        del engine._finish


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
async def test_engine_equals_transformers_generate(tiny_models: TinyModels, arch: str) -> None:  # noqa: F811
    b = backend(tiny_models[arch])
    await b.complete(request("Hi", max_tokens=1))  # loads the model and starts the engine
    engine = b.engine
    assert engine is not None
    model, tok = engine.model, engine.tokenizer
    prompts = [tok(p)["input_ids"] for p in PROMPTS]
    assert len({len(p) for p in prompts}) == len(prompts)  # different lengths: real padding
    eos = set(engine.eos_token_ids)

    single_ref = [_reference(model, tok, [p], eos)[0] for p in prompts]
    batched_ref = _reference(model, tok, prompts, eos)
    assert all(len(r) > 4 for r in single_ref)  # enough tokens to exercise the KV cache

    assert await _engine_ids(engine, prompts, "alone") == single_ref
    assert await _engine_ids(engine, prompts, "together") == batched_ref
    assert batched_ref == single_ref  # and padding changes nothing in either
    # Requests joining a running batch (KV caches left-padded and merged) too.
    long_first = [prompts[1], prompts[0], prompts[2], prompts[3]]
    expected = [single_ref[1], single_ref[0], single_ref[2], single_ref[3]]
    assert await _engine_ids(engine, long_first, "joined") == expected
