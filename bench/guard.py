"""What guardrails cost: added latency per request and delay per streamed chunk.

1. A 2 KB prompt (a realistic business request with an e-mail address and a phone
   number) through ``check_input`` with every rule-based check on (PII with restore,
   secrets, injection, a banned-topic list, size; canary on output), and a 2 KB answer
   through ``check_output``. Baseline in the same run: the same calls with no policy
   (what every request pays for the guard interface alone). Target: ≤ 0.5 ms added
   per request for the input checks. The gateway's row checks every string the client
   sends (``untrusted=True``: the system prompt too) and adds a tool definition and a
   ``stop`` list to the request.
2. The same answer streamed in 4-character chunks through ``StreamFilter.feed`` with
   output redaction on: CPU time per chunk, and how many characters wait in the
   sliding window (the delay a reader sees), next to the PII-free baseline.

Each figure is the lowest of five round medians (the machine is shared: load only ever
adds time). CPU time (``time.process_time_ns``) is reported next to wall time.

Run: .venv/bin/python bench/guard.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from crossroads.config import parse_config  # noqa: E402
from crossroads.guard import Guardrails, GuardrailsConfig  # noqa: E402
from crossroads.types import (  # noqa: E402
    AssistantMessage,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
)

POLICY = """
guardrails:
  audit: false
  policies:
    - name: all-rules
      input:
        - {check: pii, action: redact, restore: true}
        - {check: secrets, action: block}
        - {check: injection, action: block}
        - {check: banned, topics: {medical_advice: [diagnose me, which drug should]}, action: block}
        - {check: size, max_chars: 100000, action: block}
      output:
        - {check: pii, action: redact}
        - {check: secrets, action: redact}
        - {check: canary, action: block}
"""

PARAGRAPH = (
    "Hi team, please summarise the quarterly report below for the board meeting on Tuesday. "
    "Keep the tone neutral and list the three most important risks first. The report covers "
    "revenue, operating costs, hiring and the new data retention policy. Revenue grew 12.4% "
    "year over year to 48.2 million, driven by the enterprise segment, while operating costs "
    "rose 7% because of cloud spending and two new offices in Lisbon and Munich. Hiring is "
    "behind plan: 41 of 60 roles are filled. The retention policy now keeps customer records "
    "for 24 months instead of 36, which legal says is consistent with GDPR guidance. "
    "If anything is unclear, contact Maria Rossi at maria.rossi@example.com or call "
    "+39 02 1234 5678. Our main risks are currency exposure, a delayed product launch and "
    "supplier concentration: one vendor provides 38% of components. The board asked for a "
    "short section on mitigation, with owners and dates, and a note on what changed since the "
    "last meeting. Please also check whether the numbers in the appendix add up; last time "
    "there was a mistake in the totals for Q2. Write in plain English, avoid jargon, and use "
    "bullet points where it helps. The audience is non-technical, so explain acronyms like "
    "ARR and NRR the first time they appear. Do not include customer names. Thanks a lot, "
    "and let me know if you need the raw spreadsheet or the previous summaries for context. "
)
PROMPT = (PARAGRAPH * 2)[:2048]
ANSWER = (
    "Summary for the board. Revenue rose 12.4% to 48.2 million; costs rose 7%. Hiring: 41 of "
    "60 roles filled. Risks: currency exposure, a delayed launch, supplier concentration (38% "
    "of components from one vendor). Questions go to [EMAIL_1] or [PHONE_1]; the auditor, "
    "j.doe@audit.example, confirmed the Q2 totals. "
) * 6
ANSWER = ANSWER[:2048]


ROUNDS = 5


def _median_us(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """CPU and wall microseconds of ``fn``: the lowest of ``ROUNDS`` round medians (a
    shared machine only ever makes code slower, so the lowest median is the cost)."""
    best_cpu = best_wall = float("inf")
    for _ in range(ROUNDS):
        cpu, wall = [], []
        for _ in range(max(1, repeat // ROUNDS)):
            c0, w0 = time.process_time_ns(), time.perf_counter_ns()
            fn()
            cpu.append(time.process_time_ns() - c0)
            wall.append(time.perf_counter_ns() - w0)
        best_cpu = min(best_cpu, statistics.median(cpu) / 1000)
        best_wall = min(best_wall, statistics.median(wall) / 1000)
    return best_cpu, best_wall


def request_latency(repeat: int) -> dict[str, tuple[float, float]]:
    guarded = Guardrails.from_config(parse_config(POLICY).guardrails)
    gateway = Guardrails.from_config(parse_config(POLICY).guardrails, untrusted=True)
    bare = Guardrails.from_config(GuardrailsConfig())
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    request = ChatRequest.model_validate({"model": "m", "messages": messages})
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look up a figure in the quarterly report.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
    full = ChatRequest.model_validate(
        {"model": "m", "messages": messages, "tools": [tool], "stop": ["END"]}
    )
    answer = ChatResponse(
        model="m", choices=[Choice(message=AssistantMessage(content=ANSWER), finish_reason="stop")]
    )
    loop = asyncio.new_event_loop()

    def round_trip(g: Guardrails, stage: str) -> Callable[[], object]:
        def run() -> object:
            rg = g.for_request(key="k", model="m")
            if stage == "input":
                return loop.run_until_complete(rg.check_input(request))
            if stage == "gateway":
                return loop.run_until_complete(rg.check_input(full))
            loop.run_until_complete(rg.check_input(request))
            return loop.run_until_complete(rg.check_output(answer))

        return run

    for g in (guarded, bare):  # warm up (regex caches, phonenumbers metadata)
        for _ in range(50):
            round_trip(g, "output")()
    out = {
        "input: no policy": _median_us(round_trip(bare, "input"), repeat),
        "input: all rule-based checks": _median_us(round_trip(guarded, "input"), repeat),
        "input: gateway, every string": _median_us(round_trip(gateway, "gateway"), repeat),
        "input+output: no policy": _median_us(round_trip(bare, "output"), repeat),
        "input+output: all checks": _median_us(round_trip(guarded, "output"), repeat),
    }
    loop.close()
    return out


def stream_delay(repeat: int, answer: str) -> dict[str, float]:
    guarded = Guardrails.from_config(parse_config(POLICY).guardrails)
    pieces = [answer[i : i + 4] for i in range(0, len(answer), 4)]
    chunks = [
        ChatChunk(id="c", model="m", choices=[ChunkChoice(delta=Delta(content=p))]) for p in pieces
    ]
    feed_cpu: list[int] = []
    held: list[int] = []
    rounds = max(1, repeat // 50)
    for _ in range(rounds):
        f = guarded.for_request(model="m").stream_filter()
        fed = released = 0
        for c in chunks:
            t0 = time.process_time_ns()
            out = f.feed(c)
            feed_cpu.append(time.process_time_ns() - t0)
            fed += len(c.choices[0].delta.content or "")
            released += sum(len(o.choices[0].delta.content or "") for o in out if o.choices)
            held.append(fed - released)
        f.finish()
    return {
        "feed CPU per chunk, median (µs)": statistics.median(feed_cpu) / 1000,
        "feed CPU per chunk, p95 (µs)": statistics.quantiles(feed_cpu, n=20)[-1] / 1000,
        "characters held back, mean": statistics.fmean(held),
        "characters held back, p95": statistics.quantiles(held, n=20)[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    print(f"Prompt {len(PROMPT)} chars, answer {len(ANSWER)} chars, {args.repeat} repeats")
    reference = _median_us(lambda: sum(range(100_000)), 50)[0]
    print(f"machine reference: sum(range(100_000)) = {reference:.0f} µs CPU (~1600 when idle)\n")
    lat = request_latency(args.repeat)
    print(f"{'per request':32} {'CPU µs':>9} {'wall µs':>9}")
    for name, (cpu, wall) in lat.items():
        print(f"{name:32} {cpu:9.1f} {wall:9.1f}")
    added_in = lat["input: all rule-based checks"][0] - lat["input: no policy"][0]
    added_all = lat["input+output: all checks"][0] - lat["input+output: no policy"][0]
    added_gw = lat["input: gateway, every string"][0] - lat["input: no policy"][0]
    print(f"\nadded by the input checks (2 KB prompt): {added_in:.1f} µs CPU (target ≤ 500 µs)")
    print(f"the same on the gateway, every string:   {added_gw:.1f} µs CPU")
    print(f"added by input + output checks:          {added_all:.1f} µs CPU\n")
    plain = ANSWER.replace("[EMAIL_1]", "the team").replace("[PHONE_1]", "the desk")
    plain = plain.replace("j.doe@audit.example", "the auditor")
    for label, text in (("answer with PII", ANSWER), ("answer without PII", plain)):
        print(f"stream of 4-char chunks, {label}:")
        for name, value in stream_delay(args.repeat, text).items():
            print(f"  {name:36} {value:8.1f}")
    sys.exit(0 if added_in <= 500 else 1)


if __name__ == "__main__":
    main()
