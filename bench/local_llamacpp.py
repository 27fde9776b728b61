"""Generation speed of the llamacpp backend vs raw llama-cpp-python, in one run.

Same model object (the embedded SmolLM2-135M-Instruct Q4_1 GGUF unless --model is
given), same prompt, same max_tokens, temperature 0. Measured side by side, interleaved
(the order rotates every repetition), median of --runs each:

- raw:      ``llama_cpp.Llama.create_chat_completion`` called directly (the baseline);
- complete: ``LlamaCppBackend.complete`` from an event loop;
- stream:   ``LlamaCppBackend.stream`` consumed chunk by chunk from an event loop.

tokens/s = completion_tokens / wall seconds of the call. Target: the median tokens/s of
complete and of stream both at least 0.95 of raw's (the median of the per-repetition
ratios is printed too: it is steadier on a busy machine).
Run: .venv/bin/python bench/local_llamacpp.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crossroads.backends.base import Deployment
from crossroads.backends.embedded import embedded_model_path
from crossroads.backends.llamacpp import LlamaCppBackend
from crossroads.types import ChatRequest

PROMPT = "Write a long story about a robot."
TARGET = 0.95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default SmolLM2)")
    parser.add_argument("--runs", type=int, default=7, help="repetitions of each (>= 3)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="n_threads (default: all)")
    args = parser.parse_args()
    path = args.model or embedded_model_path("local/smollm2")
    options: dict[str, object] = {"n_threads": args.threads} if args.threads else {}
    backend = LlamaCppBackend(
        Deployment(name="bench", backend="llamacpp", model=str(path), options=options)
    )
    request = ChatRequest.model_validate(
        {
            "model": "bench",
            "messages": [{"role": "user", "content": PROMPT}],
            "temperature": 0,
            "seed": 0,
            "max_tokens": args.max_tokens,
        }
    )
    runner = asyncio.Runner()
    llama: Any = runner.run(backend.load()).llama
    texts: dict[str, str] = {}

    def raw() -> int:
        out = llama.create_chat_completion(
            messages=[{"role": "user", "content": PROMPT}],
            temperature=0,
            seed=0,
            max_tokens=args.max_tokens,
        )
        texts["raw"] = out["choices"][0]["message"]["content"]
        return int(out["usage"]["completion_tokens"])

    def complete() -> int:
        reply = runner.run(backend.complete(request))
        texts["complete"] = reply.text
        return reply.usage.completion_tokens

    def stream() -> int:
        async def consume() -> int:
            pieces, tokens = [], 0
            async for chunk in backend.stream(request):
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if chunk.usage is not None:
                    tokens = chunk.usage.completion_tokens
            texts["stream"] = "".join(pieces)
            return tokens

        return runner.run(consume())

    variants: dict[str, Callable[[], int]] = {"raw": raw, "complete": complete, "stream": stream}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    tokens: dict[str, int] = {}
    for fn in variants.values():  # warm-up: page in the weights, fill the prompt cache
        fn()
    names = list(variants)
    for rep in range(max(args.runs, 3)):
        for name in names[rep % 3 :] + names[: rep % 3]:
            start = time.perf_counter()
            tokens[name] = variants[name]()
            rates[name].append(tokens[name] / (time.perf_counter() - start))
    runner.close()

    print(f"model {path.name}, {os.cpu_count()} cores, n_threads {backend.load_options.n_threads}")
    print(f'prompt "{PROMPT}", max_tokens {args.max_tokens}, temperature 0, interleaved')
    base = statistics.median(rates["raw"])
    ok = True
    for name, values in rates.items():
        median = statistics.median(values)
        ratio = median / base
        runs = " ".join(f"{v:.1f}" for v in values)
        line = f"{name:9} {median:7.1f} tokens/s  ({tokens[name]} tokens; runs: {runs})"
        if name != "raw":
            ok = ok and ratio >= TARGET
            paired = statistics.median(v / r for v, r in zip(values, rates["raw"], strict=True))
            line += f"  ratio {ratio:.3f} (target >= {TARGET}; paired by run {paired:.3f})"
        print(line)
    if len(set(texts.values())) != 1:
        print("warning: the three answers differ", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
