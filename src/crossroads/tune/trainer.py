"""A plain, seeded torch training loop for causal LMs (LoRA or full fine-tuning).

* **Deterministic**: the example order of epoch ``e`` is a permutation drawn from a
  generator seeded with ``(seed, e)``, so step ``k`` always sees the same examples; the
  global torch RNG (dropout) is seeded once and saved in every checkpoint.
* **Optimisation**: AdamW over the trainable parameters, linear warm-up then linear decay
  over ``epochs × steps per epoch``, gradient clipping, gradient accumulation. The loss
  of a step is the mean over its learned (label ≠ -100) tokens, however the step is split
  into micro-batches.
* **Checkpoints** (``checkpoints/step-NNNNNN`` under the output folder, written to a
  temporary folder and renamed): trainable weights, optimiser and scheduler state, RNG
  states and the trainer state (step, losses, early-stopping counters). The two newest
  are kept. :meth:`Trainer.train` with ``resume=True`` continues from the newest one at
  the same step, with the same data order and RNG state, so losses match an
  uninterrupted run.
* **Early stopping**: validation loss is measured every ``eval_every`` steps (default: at
  the end of each epoch); after ``patience`` evaluations without improvement training
  stops, and the best weights are restored.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .data import IGNORE_INDEX, TokenizedExample

__all__ = ["StepEvent", "TrainConfig", "TrainResult", "Trainer", "peak_memory_bytes"]

_KEEP_CHECKPOINTS = 2


@dataclass(frozen=True, slots=True)
class TrainConfig:
    epochs: int = 2
    learning_rate: float = 2e-3
    batch_size: int = 4
    grad_accum: int = 1
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    seed: int = 0
    #: Evaluations without improvement before stopping (None: never stop early).
    patience: int | None = 2
    min_delta: float = 0.0
    #: Steps between validation runs (None: at the end of each epoch).
    eval_every: int | None = None
    #: Steps between checkpoints (None: at each evaluation); one is always written last.
    checkpoint_every: int | None = None
    #: Stop after this many optimiser steps in total (the schedule still spans every epoch).
    max_steps: int | None = None

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "grad_accum")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning rate must be positive, got {self.learning_rate}")
        for name in ("patience", "eval_every", "checkpoint_every", "max_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1 (or unset), got {value}")

    def schedule_key(self) -> dict[str, Any]:
        """Settings a resumed run must share with the run it continues."""
        keys = ("epochs", "learning_rate", "batch_size", "grad_accum", "weight_decay")
        return {k: getattr(self, k) for k in (*keys, "warmup_ratio", "seed")}


@dataclass(frozen=True, slots=True)
class StepEvent:
    step: int
    total_steps: int
    epoch: int
    loss: float
    learning_rate: float
    val_loss: float | None = None


@dataclass
class TrainResult:
    steps: int
    total_steps: int
    epochs_run: float
    history: list[dict[str, float]]  # {"step", "loss"} and {"step", "val_loss"} rows
    first_loss: float | None
    final_loss: float | None
    first_val_loss: float | None
    best_val_loss: float | None
    best_step: int | None
    stopped_early: bool
    resumed_from: int | None
    train_tokens: int  # input tokens (prompt + reply, no padding) processed while training
    train_seconds: float
    device: str
    peak_memory_bytes: int | None = None

    @property
    def tokens_per_s(self) -> float | None:
        return self.train_tokens / self.train_seconds if self.train_seconds > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"tokens_per_s": self.tokens_per_s}


def peak_memory_bytes(torch: Any, device: str) -> int | None:
    """Peak GPU memory allocated on CUDA, else the process's peak resident set size."""
    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated())
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


@dataclass
class _State:
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_val_loss: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    train_tokens: int = 0
    train_seconds: float = 0.0
    first_val_loss: float | None = None


class Trainer:
    """Trains ``model`` (its parameters with ``requires_grad``) on tokenised examples."""

    def __init__(
        self,
        model: Any,
        train: Sequence[TokenizedExample],
        val: Sequence[TokenizedExample],
        config: TrainConfig,
        *,
        output_dir: Path,
        device: str = "cpu",
        pad_token_id: int = 0,
        on_step: Callable[[StepEvent], None] | None = None,
    ) -> None:
        if not train:
            raise ConfigError("No training examples left after the validation split.")
        import torch

        self.torch = torch
        self.model = model
        self.train_set = list(train)
        self.val_set = list(val)
        self.config = config
        self.checkpoint_dir = Path(output_dir) / "checkpoints"
        self.device = device
        self.pad_token_id = pad_token_id
        self.on_step = on_step
        self.state = _State()
        micro = math.ceil(len(self.train_set) / config.batch_size)
        self.micro_per_epoch = micro
        self.steps_per_epoch = math.ceil(micro / config.grad_accum)
        self.schedule_steps = self.steps_per_epoch * config.epochs
        self.total_steps = min(self.schedule_steps, config.max_steps or self.schedule_steps)
        self.params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not self.params:
            raise ConfigError("The model has no trainable parameters.")
        decay = [p for n, p in self.params if p.ndim >= 2]
        no_decay = [p for n, p in self.params if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": config.weight_decay}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        self.optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
        warmup = max(1, round(self.schedule_steps * config.warmup_ratio))
        total = self.schedule_steps

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (total - step) / max(1, total - warmup))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self._best: dict[str, Any] | None = None
        self._autocast = (
            torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else None
        )

    # -- data ------------------------------------------------------------------------------
    def _order(self, epoch: int) -> list[int]:
        generator = self.torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        return [int(i) for i in self.torch.randperm(len(self.train_set), generator=generator)]

    def _micro_batches(self, step: int) -> list[list[TokenizedExample]]:
        epoch, k = divmod(step, self.steps_per_epoch)
        order = self._order(epoch)
        size = self.config.batch_size
        first = k * self.config.grad_accum
        last = min(first + self.config.grad_accum, self.micro_per_epoch)
        return [
            [self.train_set[i] for i in order[m * size : (m + 1) * size]]
            for m in range(first, last)
        ]

    def _collate(self, batch: Sequence[TokenizedExample]) -> tuple[Any, Any, Any]:
        torch = self.torch
        width = max(len(e.input_ids) for e in batch)
        ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, example in enumerate(batch):
            n = len(example.input_ids)
            ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
            labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
            mask[row, :n] = 1
        return ids.to(self.device), labels.to(self.device), mask.to(self.device)

    def _loss_sum(self, batch: Sequence[TokenizedExample]) -> Any:
        """Summed cross-entropy over the learned tokens of a batch."""
        torch = self.torch
        ids, labels, mask = self._collate(batch)
        if self._autocast is not None:
            with torch.autocast("cuda", dtype=self._autocast):
                logits = self.model(input_ids=ids, attention_mask=mask).logits
        else:
            logits = self.model(input_ids=ids, attention_mask=mask).logits
        shift_logits = logits[:, :-1, :].float()
        shift_labels = labels[:, 1:]
        return torch.nn.functional.cross_entropy(
            shift_logits.reshape(-1, shift_logits.size(-1)),
            shift_labels.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )

    @staticmethod
    def _learned(batch: Sequence[TokenizedExample]) -> int:
        # Labels are shifted by one: the first token of a sequence is never predicted.
        return sum(sum(1 for x in e.labels[1:] if x != IGNORE_INDEX) for e in batch)

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self) -> float | None:
        """Mean loss per learned token on the validation set (None without one)."""
        if not self.val_set:
            return None
        torch = self.torch
        self.model.eval()
        total, count = 0.0, 0
        size = self.config.batch_size
        with torch.no_grad():
            for start in range(0, len(self.val_set), size):
                batch = self.val_set[start : start + size]
                total += float(self._loss_sum(batch))
                count += self._learned(batch)
        self.model.train()
        return total / max(count, 1)

    # -- one step --------------------------------------------------------------------------
    def _step(self) -> float:
        torch = self.torch
        micro = self._micro_batches(self.state.step)
        tokens = sum(self._learned(b) for b in micro)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for batch in micro:
            loss = self._loss_sum(batch)
            (loss / max(tokens, 1)).backward()
            total += float(loss.detach())
            self.state.train_tokens += sum(len(e.input_ids) for e in batch)
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_([p for _, p in self.params], self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.state.step += 1
        return total / max(tokens, 1)

    def _trainable_state(self) -> dict[str, Any]:
        return {name: p.detach().to("cpu").clone() for name, p in self.params}

    def _load_trainable(self, saved: dict[str, Any]) -> None:
        names = {name for name, _ in self.params}
        if set(saved) != names:
            raise ConfigError(
                "The checkpoint's trainable weights do not match this model (different "
                "method, LoRA settings or base model); start again without --resume."
            )
        with self.torch.no_grad():
            for name, p in self.params:
                p.copy_(saved[name].to(p.device))

    # -- checkpoints -----------------------------------------------------------------------
    def _rng_state(self) -> dict[str, Any]:
        import numpy as np

        torch = self.torch
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": np.random.get_state(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def _set_rng_state(self, state: dict[str, Any]) -> None:
        import numpy as np

        torch = self.torch
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])

    def save_checkpoint(self) -> Path:
        """Write a checkpoint for the current step (atomically) and prune old ones."""
        torch = self.torch
        final = self.checkpoint_dir / f"step-{self.state.step:06d}"
        tmp = self.checkpoint_dir / f".tmp-step-{self.state.step:06d}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        torch.save(self._trainable_state(), tmp / "trainable.pt")
        torch.save(
            {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
            tmp / "optimizer.pt",
        )
        torch.save(self._rng_state(), tmp / "rng.pt")
        if self._best is not None:
            torch.save(self._best, tmp / "best.pt")
        meta: dict[str, Any] = {
            "state": asdict(self.state),
            "config": self.config.schedule_key(),
            "examples": len(self.train_set),
        }
        (tmp / "state.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in self.checkpoints()[:-_KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = [p for p in self.checkpoint_dir.glob("step-*") if (p / "state.json").is_file()]
        return sorted(found)

    def load_checkpoint(self, path: Path) -> None:
        torch = self.torch
        meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
        if meta["config"] != self.config.schedule_key() or meta["examples"] != len(self.train_set):
            raise ConfigError(
                f"The checkpoint in {path} was made with other settings or data "
                f"({meta['config']}, {meta['examples']} training examples); resume with the "
                "same options, or start again without --resume."
            )
        self._load_trainable(torch.load(path / "trainable.pt", weights_only=True))
        opt = torch.load(path / "optimizer.pt", weights_only=False)
        self.optimizer.load_state_dict(opt["optimizer"])
        self.scheduler.load_state_dict(opt["scheduler"])
        best = path / "best.pt"
        self._best = torch.load(best, weights_only=True) if best.is_file() else None
        self.state = _State(**meta["state"])
        self._set_rng_state(torch.load(path / "rng.pt", weights_only=False))

    # -- the loop --------------------------------------------------------------------------
    def _evaluate_now(self, step: int) -> bool:
        every = self.config.eval_every
        if every is not None:
            return step % every == 0 or step == self.total_steps
        return step % self.steps_per_epoch == 0 or step == self.total_steps

    def _checkpoint_now(self, step: int, evaluated: bool) -> bool:
        every = self.config.checkpoint_every
        return evaluated if every is None else step % every == 0

    def _record_val(self, step: int, val: float) -> None:
        s = self.state
        s.history.append({"step": float(step), "val_loss": val})
        if s.first_val_loss is None:
            s.first_val_loss = val
        if s.best_val_loss is None or val < s.best_val_loss - self.config.min_delta:
            s.best_val_loss, s.best_step, s.bad_evals = val, step, 0
            self._best = self._trainable_state()
        else:
            s.bad_evals += 1
            patience = self.config.patience
            if patience is not None and s.bad_evals >= patience:
                s.stopped_early = True

    def train(self, *, resume: bool = False) -> TrainResult:
        """Run (or, with ``resume``, continue) training; returns losses and timings."""
        torch = self.torch
        resumed_from: int | None = None
        if resume and (found := self.checkpoints()):
            self.load_checkpoint(found[-1])
            resumed_from = self.state.step
        else:
            torch.manual_seed(self.config.seed)
            random.seed(self.config.seed)
        if self.state.first_val_loss is None and self.val_set:
            before = self.evaluate()
            assert before is not None
            self.state.first_val_loss = before
            self.state.history.append({"step": 0.0, "val_loss": before})
        self.model.train()
        while self.state.step < self.total_steps and not self.state.stopped_early:
            started = time.perf_counter()
            loss = self._step()
            self.state.train_seconds += time.perf_counter() - started
            step = self.state.step
            self.state.history.append({"step": float(step), "loss": loss})
            val = None
            evaluated = self._evaluate_now(step)
            if evaluated and self.val_set:
                val = self.evaluate()
                assert val is not None
                self._record_val(step, val)
            last = step >= self.total_steps or self.state.stopped_early
            if last or self._checkpoint_now(step, evaluated):
                self.save_checkpoint()
            if self.on_step is not None:
                self.on_step(
                    StepEvent(
                        step,
                        self.total_steps,
                        (step - 1) // self.steps_per_epoch + 1,
                        loss,
                        float(self.scheduler.get_last_lr()[0]),
                        val,
                    )
                )
        if self._best is not None:
            self._load_trainable(self._best)
        return self._result(resumed_from)

    def _result(self, resumed_from: int | None) -> TrainResult:
        s = self.state
        losses = [h["loss"] for h in s.history if "loss" in h]
        return TrainResult(
            steps=s.step,
            total_steps=self.total_steps,
            epochs_run=s.step / self.steps_per_epoch,
            history=list(s.history),
            first_loss=losses[0] if losses else None,
            final_loss=losses[-1] if losses else None,
            first_val_loss=s.first_val_loss,
            best_val_loss=s.best_val_loss,
            best_step=s.best_step,
            stopped_early=s.stopped_early,
            resumed_from=resumed_from,
            train_tokens=s.train_tokens,
            train_seconds=s.train_seconds,
            device=self.device,
            peak_memory_bytes=peak_memory_bytes(self.torch, self.device),
        )
