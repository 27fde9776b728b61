"""Aggregate tokens/s of the transformers backend at 1, 4 and 8 concurrent requests.

A random Llama, seeded and built in a temporary directory (by default 8 layers, hidden
1024, 16 heads, ~85M parameters: SmolLM2-135M's compute class, so a step is bound by
compute rather than Python overhead), answers greedy requests with EOS disabled, so each
one generates exactly 64 tokens. All levels run in one process on one engine after a
warm-up; each figure is the median of ``--rounds`` waves, the levels interleaved round by
round so that a noisy neighbour hits them alike. Target: 8 concurrent requests give at
least 3x the tokens/s of 1.

Run: .venv/bin/python bench/local_batching.py
     [--layers 8 --hidden 1024 --heads 16 --rounds 5 --threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from tests.local_models import build_model, build_tokenizer

from crossroads.backends.base import Deployment
from crossroads.backends.hf import TransformersBackend
from crossroads.types import ChatRequest

LEVELS = (1, 4, 8)
MAX_TOKENS = 64
TARGET = 3.0
TOPICS = [
    "the river and the old mill",
    "the baker who opens at six",
    "a small robot sorting blocks",
    "the committee and the budget",
    "a late train on a rainy day",
    "the garden behind the yellow house",
    "astronauts walking on the Moon",
    "the museum of old maps",
]


async def wave(backend: TransformersBackend, concurrency: int) -> float:
    """Tokens per second for one wave of ``concurrency`` simultaneous requests."""
    requests = [
        ChatRequest(
            model="bench",
            messages=[{"role": "user", "content": f"Tell me a story about {TOPICS[i]}."}],
            max_tokens=MAX_TOKENS,
            temperature=0,
            ignore_eos=True,
        )
        for i in range(concurrency)
    ]
    start = time.perf_counter()
    replies = await asyncio.gather(*(backend.complete(r) for r in requests))
    elapsed = time.perf_counter() - start
    tokens = sum(r.usage.completion_tokens for r in replies)
    assert tokens == concurrency * MAX_TOKENS, tokens
    return tokens / elapsed


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="crossroads-bench-") as tmp:
        folder = build_model(
            "llama",
            Path(tmp) / "llama",
            build_tokenizer(),
            layers=args.layers,
            hidden=args.hidden,
            heads=args.heads,
            context=1024,
        )
        options: dict[str, object] = {"device": "cpu", "dtype": "float32", "max_batch_size": 8}
        if args.threads:
            options["n_threads"] = args.threads
        deployment = Deployment(
            name="bench", backend="transformers", model=str(folder), options=options
        )
        backend = TransformersBackend(deployment)
        await wave(backend, 1)  # load and warm up
        await wave(backend, 8)
        print(
            f"random Llama: {args.layers} layers, hidden {args.hidden}, {args.heads} heads; "
            f"torch threads {torch.get_num_threads()}; "
            f"max_tokens={MAX_TOKENS}, greedy, EOS ignored; median of {args.rounds} waves"
        )
        # Levels interleaved round by round, so a noisy neighbour hits them all alike.
        samples: dict[int, list[float]] = {level: [] for level in LEVELS}
        for _ in range(args.rounds):
            for level in LEVELS:
                samples[level].append(await wave(backend, level))
        rates = {level: statistics.median(samples[level]) for level in LEVELS}
        for level in LEVELS:
            spread = ", ".join(f"{r:.0f}" for r in samples[level])
            print(f"concurrency {level}: {rates[level]:8.1f} tokens/s  (waves: {spread})")
        engine = backend.engine
        assert engine is not None
        ratio = rates[8] / rates[1]
        print(
            f"8 vs 1: {ratio:.2f}x (target >= {TARGET:.0f}x); "
            f"max batch seen {engine.stats.max_batch_seen}"
        )
        return 0 if ratio >= TARGET else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
