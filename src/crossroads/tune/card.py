"""The model card written next to a tuned model: ``README.md`` for people, ``card.json``
for tools. It records the base model and its licence, the data (file, SHA-256, size), the
hyper-parameters, the training and validation losses, and the before/after evaluation
when one was run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["CARD_JSON", "CARD_MD", "render_card", "write_card"]

CARD_MD = "README.md"
CARD_JSON = "card.json"


def _fmt(value: Any, pattern: str = "{:.4f}") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return pattern.format(value)
    return str(value)


def _evaluation_lines(ev: dict[str, Any]) -> list[str]:
    lines = [
        "## Evaluation before and after",
        "",
        f"Suite `{ev['suite']}` ({ev['items']} items, run `{ev['run_id']}`; "
        f"`crossroads show {ev['run_id']}` re-renders it). Both models ran on the same "
        f"backend ({ev.get('backend', 'transformers')}), greedy decoding.",
        "",
        "| | model | mean score | 95% CI | pass rate |",
        "|---|---|---:|---:|---:|",
    ]
    for role in ("before", "after"):
        m = ev[role]
        ci = f"{_fmt(m.get('ci_low'), '{:.2f}')}–{_fmt(m.get('ci_high'), '{:.2f}')}"
        rate = m.get("pass_rate")
        rate_text = f"{rate:.0%}" if isinstance(rate, float) else "—"
        mean = _fmt(m.get("mean"), "{:.3f}")
        lines.append(f"| {role} | {m['model']} | {mean} | {ci} | {rate_text} |")
    diff = ev["difference"]
    lines += [
        "",
        f"Paired difference (after − before): {_fmt(diff.get('mean_diff'), '{:+.3f}')} "
        f"(95% CI {_fmt(diff.get('ci_low'), '{:+.3f}')} to {_fmt(diff.get('ci_high'), '{:+.3f}')}"
        f"; McNemar p = {_fmt(diff.get('mcnemar_p'), '{:.3g}')}). "
        f"**{'Significant' if diff.get('significant') else 'Not significant'}**: "
        f"{diff.get('verdict', '')}.",
        "",
    ]
    return lines


def render_card(card: dict[str, Any]) -> str:
    """The Markdown card for a card dict (see :func:`write_card`)."""
    base, data, hp, train = card["base"], card["data"], card["hyperparameters"], card["training"]
    lines = [
        f"# {card['model']}",
        "",
        f"Fine-tuned by `crossroads tune` on {card['created_at']} ({card['method']}"
        f"{', merged weights' if card['merged'] else ', LoRA adapter over the base'}).",
        "",
        "## Base model",
        "",
        f"- Name: `{base['name']}`",
        f"- Resolved to: `{base['source']}`",
        f"- Licence: {base.get('licence') or 'unknown — check the base model before use'}",
        "- The tuned model inherits the base model's licence terms and limitations.",
        "",
        "## Data",
        "",
        f"- File: `{data['path']}` ({data['format']} format)",
        f"- SHA-256: `{data['sha256']}`",
        f"- Size: {data['size_bytes']:,} bytes, {data['examples']} examples "
        f"({data['train_examples']} train / {data['val_examples']} validation), "
        f"{data['tokens']:,} tokens of which {data['trained_tokens']:,} are learned replies",
        "",
        "## Hyper-parameters",
        "",
        "| setting | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in hp.items()),
        "",
        "## Training",
        "",
        f"- Steps: {train['steps']} of {train['total_steps']} "
        f"({train['epochs_run']:.2f} epochs){' — stopped early' if train['stopped_early'] else ''}"
        f" on {train['device']}",
        f"- Training loss: {_fmt(train['first_loss'])} (first step) → "
        f"{_fmt(train['final_loss'])} (last step)",
        f"- Validation loss: {_fmt(train['first_val_loss'])} (before) → "
        f"{_fmt(train['best_val_loss'])} (best, step {_fmt(train['best_step'])})",
        f"- Throughput: {_fmt(train.get('tokens_per_s'), '{:,.0f}')} training tokens/s; "
        f"{train['train_seconds']:.0f} s of training",
        "",
    ]
    evaluation = card.get("evaluation")
    if evaluation:
        lines += _evaluation_lines(evaluation)
    lines += [
        "## Use",
        "",
        "```",
        f'crossroads chat {card["model"]} "..."',
        f"crossroads eval SUITE --models {base['name']},{card['model']}",
        "```",
        "",
    ]
    return "\n".join(lines)


def write_card(folder: Path, card: dict[str, Any]) -> Path:
    """Write ``README.md`` and ``card.json`` into ``folder``; returns the Markdown path."""
    (folder / CARD_JSON).write_text(
        json.dumps(card, indent=1, ensure_ascii=False, default=str), encoding="utf-8"
    )
    path = folder / CARD_MD
    path.write_text(render_card(card), encoding="utf-8")
    return path
