"""JSON codecs on the gateway's hot path, in one run: the stdlib, orjson and msgspec.

    .venv/bin/python bench/codec.py [--rounds 5]

Per streamed request the gateway decodes every upstream event (20 content deltas, the
role, finish and usage chunks) and, on the translating path, encodes one chunk per
event; per whole request it decodes the upstream's answer and encodes its own. Prints
CPU microseconds per operation (best of ``--rounds``) and the ratio to the stdlib.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loadgen import UPSTREAM_BODY, stream_events

CHUNK: dict[str, Any] = {
    "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000,
    "model": "bench", "choices": [{"index": 0, "delta": {"content": " word1"},
                                   "logprobs": None, "finish_reason": None}],
}


def best(fn: Callable[[], object], number: int, rounds: int) -> float:
    # CPU time, not wall time: on a shared machine preemption would swamp the numbers
    return min(timeit.repeat(fn, number=number, repeat=rounds, timer=time.process_time)) \
        / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    events = [e[6:-2] for e in stream_events(20) if not e.startswith(b"data: [DONE]")]
    answer = json.loads(UPSTREAM_BODY)
    decoder, encoder = msgspec.json.Decoder(), msgspec.json.Encoder()
    codecs: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {
        "stdlib json": (
            json.loads,
            lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode(),
        ),
        "orjson": (orjson.loads, orjson.dumps),
        "msgspec": (decoder.decode, encoder.encode),
    }
    print(f"{len(events)} events per stream; microseconds per operation, best of "
          f"{args.rounds}\n")
    print("| codec | decode a stream's events | encode a stream's chunks | decode an answer "
          "| encode an answer |")
    print("|---|---|---|---|---|")
    base: list[float] = []
    for name, (loads, dumps) in codecs.items():
        row = [
            best(lambda loads=loads: [loads(e) for e in events], 500, args.rounds),
            best(lambda dumps=dumps: [dumps(CHUNK) for _ in events], 500, args.rounds),
            best(lambda loads=loads: loads(UPSTREAM_BODY), 5000, args.rounds),
            best(lambda dumps=dumps: dumps(answer), 5000, args.rounds),
        ]
        base = base or row
        print(f"| {name} | " + " | ".join(
            f"{v:.1f} ({b / v:.1f}x)" for v, b in zip(row, base, strict=True)) + " |")


if __name__ == "__main__":
    main()
