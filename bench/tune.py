"""Fine-tuning throughput on this machine: SmolLM2-135M, LoRA against full fine-tuning.

The embedded SmolLM2-135M-Instruct GGUF is loaded by transformers (dequantised to float32),
the shipped example data (``examples/tune/support.jsonl``) is tokenised with its chat
template, and each mode runs ``--steps`` optimiser steps of ``--batch-size`` examples
through :class:`crossroads.tune.trainer.Trainer` after one warm-up step:

* ``forward``: the same batches, forward pass only (no gradients) — the baseline;
* ``lora``: LoRA rank 8 on q/k/v/o (what ``crossroads tune`` does by default);
* ``full``: every weight trained (``--method full``).

Each mode runs in its own child process, so "peak memory" is that mode's own peak
resident set (or peak CUDA memory on a GPU). Figures are training tokens (prompt + reply,
no padding) per second of step time, and the ratio to the forward-only baseline. The GGUF
is converted to a transformers folder once, as ``crossroads tune`` does (cached under
``$CROSSROADS_HOME/models/.bases``). Threads: ``--threads``, else the same choice as
``crossroads tune`` (every core on an idle machine, the free ones on a busy one).

Run: .venv/bin/python bench/tune.py [--steps 6 --batch-size 4 --threads N --device cpu]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT / "examples" / "tune" / "support.jsonl"
MODES = ("forward", "lora", "full")


def child(
    mode: str, source: str, steps: int, batch_size: int, device: str, threads: int | None
) -> dict[str, object]:
    import torch

    from crossroads.backends.hf import TransformersOptions, load_tokenizer, load_weights
    from crossroads.tune.data import load_examples, tokenize_examples
    from crossroads.tune.lora import LoraSettings, apply_lora
    from crossroads.tune.trainer import TrainConfig, Trainer, peak_memory_bytes

    if threads:
        torch.set_num_threads(threads)
    options = TransformersOptions(dtype="float32", device=device)
    tokenizer = load_tokenizer(source, options)
    model = load_weights(source, options, device)
    examples, _ = load_examples(DATA)
    tokenized = tokenize_examples(examples, tokenizer, 1024)
    torch.manual_seed(0)
    if mode != "full":  # the forward baseline runs the same (LoRA-wrapped) model
        model = apply_lora(model, LoraSettings())
    config = TrainConfig(epochs=100, batch_size=batch_size, max_steps=steps + 1, patience=None)
    trainer = Trainer(
        model,
        tokenized,
        [],
        config,
        output_dir=Path("/tmp/unused"),
        device=device,
        pad_token_id=int(tokenizer.pad_token_id or tokenizer.eos_token_id or 0),
    )
    trainable = sum(p.numel() for _, p in trainer.params)
    total_params = sum(p.numel() for p in model.parameters())
    if mode == "forward":
        tokens, seconds = 0, 0.0
        with torch.no_grad():
            for step in range(steps + 1):
                batch = trainer._micro_batches(step)[0]
                start = time.perf_counter()
                trainer._loss_sum(batch)
                if step:  # the first is the warm-up
                    seconds += time.perf_counter() - start
                    tokens += sum(len(e.input_ids) for e in batch)
    else:
        trainer._step()  # warm-up
        tokens_before = trainer.state.train_tokens
        start = time.perf_counter()
        for _ in range(steps):
            trainer._step()
        seconds = time.perf_counter() - start
        tokens = trainer.state.train_tokens - tokens_before
    return {
        "mode": mode,
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "peak_memory_bytes": peak_memory_bytes(torch, device),
        "trainable_params": trainable if mode != "forward" else 0,
        "params": total_params,
        "threads": torch.get_num_threads(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(
            args.child, args.source, args.steps, args.batch_size, args.device, args.threads
        )
        print(json.dumps(result))
        return 0
    from crossroads.backends.embedded import DEFAULT_LOCAL_MODEL, embedded_model_path
    from crossroads.tune.run import BaseRef, cpu_threads, prepare_base

    # The GGUF is converted once (as `crossroads tune` does) and cached under CROSSROADS_HOME.
    gguf = str(embedded_model_path(DEFAULT_LOCAL_MODEL))
    source = prepare_base(BaseRef(DEFAULT_LOCAL_MODEL, gguf), print)
    threads = args.threads or (cpu_threads() if args.device == "cpu" else None)
    rows = []
    for mode in MODES:
        command = [sys.executable, __file__, "--child", mode, "--steps", str(args.steps)]
        command += ["--batch-size", str(args.batch_size), "--device", args.device]
        command += ["--source", source]
        if threads:
            command += ["--threads", str(threads)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = rows[0]["tokens_per_s"]
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"SmolLM2-135M-Instruct (GGUF dequantised to float32) on {args.device}, "
        f"load average {load:.1f} at the end, "
        f"{rows[0]['threads']} threads, batch {args.batch_size}, {args.steps} steps after a "
        "warm-up, shipped support data"
    )
    print(f"{'mode':<8} {'trainable':>12} {'tokens/s':>10} {'vs forward':>11} {'peak memory':>12}")
    for r in rows:
        trainable = f"{r['trainable_params']:,}" if r["trainable_params"] else "-"
        peak = r["peak_memory_bytes"]
        memory = f"{peak / 2**20:,.0f} MiB" if peak else "-"
        print(
            f"{r['mode']:<8} {trainable:>12} {r['tokens_per_s']:>10,.0f} "
            f"{r['tokens_per_s'] / base:>10.2f}x {memory:>12}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
