"""Fine-tuning open models (``crossroads tune``): data, LoRA, a training loop, a registry.

Modules, each importable without torch (heavy imports happen inside functions):

* :mod:`.data` — JSONL training data (chat ``messages`` or ``prompt``/``completion``),
  validated with ``file:line`` errors, tokenised with the model's chat template, prompt
  tokens masked from the loss;
* :mod:`.lora` — LoRA settings and per-architecture target modules;
* :mod:`.trainer` — a plain, seeded torch loop (AdamW, gradient accumulation, checkpoints
  with optimiser and RNG state, resume, early stopping on validation loss);
* :mod:`.registry` — tuned models under ``$CROSSROADS_HOME/models/NAME``, registered
  atomically and resolvable as ``local/NAME``;
* :mod:`.card` — the model card written next to each tuned model;
* :mod:`.run` — the whole job (load, split, train, save, register) as one function.
"""

from __future__ import annotations

__all__: list[str] = []
