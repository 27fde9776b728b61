"""LoRA settings and the modules LoRA adapts, per architecture.

The defaults adapt the attention projections, the choice of the LoRA paper (Hu et al.
2021, https://arxiv.org/abs/2106.09685, section 7.1) and of PEFT's own defaults:

=========  ==============================================
llama      ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``
bloom      ``query_key_value`` (fused q/k/v)
gptj       ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``
gpt_neox   ``query_key_value`` (fused q/k/v)
falcon     ``query_key_value`` (fused q/k/v)
=========  ==============================================

Other architectures fall back to PEFT's table (``peft.utils.constants``), then to an
error asking for ``target_modules``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["DEFAULT_TARGET_MODULES", "LoraSettings", "apply_lora", "target_modules_for"]

# peft reads a transformers attribute that transformers 5 deprecates; not ours to fix.
_PEFT_DEPRECATION = ".*is_gradient_checkpointing.*"

DEFAULT_TARGET_MODULES: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mistral": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "bloom": ("query_key_value",),
    "gptj": ("q_proj", "k_proj", "v_proj", "out_proj"),
    "gpt_neox": ("query_key_value",),
    "falcon": ("query_key_value",),
}


@dataclass(frozen=True, slots=True)
class LoraSettings:
    """Rank ``r``, scaling ``alpha`` (the update is scaled by ``alpha / r``), dropout and
    the adapted modules (None: the architecture's default)."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"LoRA rank must be at least 1, got {self.rank}")
        if self.alpha <= 0:
            raise ConfigError(f"LoRA alpha must be positive, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"LoRA dropout must be in [0, 1), got {self.dropout}")


def target_modules_for(model_type: str) -> tuple[str, ...]:
    """The default LoRA target modules of a ``config.model_type``."""
    if model_type in DEFAULT_TARGET_MODULES:
        return DEFAULT_TARGET_MODULES[model_type]
    try:
        from peft.utils.constants import (
            TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS,
        )
    except ImportError:  # pragma: no cover - older peft keeps it elsewhere
        PEFT_DEFAULTS = {}
    found = PEFT_DEFAULTS.get(model_type)
    if found:
        return tuple(found)
    raise ConfigError(
        f"No default LoRA target modules for architecture {model_type!r}; known: "
        f"{', '.join(sorted(DEFAULT_TARGET_MODULES))}. Use --method full, or name the "
        "modules to adapt (the linear layers of attention) in LoraSettings.target_modules."
    )


def apply_lora(model: Any, settings: LoraSettings) -> Any:
    """``model`` wrapped by PEFT with fresh LoRA adapters (only they are trainable)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise ConfigError(
            "LoRA needs the peft package: pip install 'crossroads[transformers]'"
        ) from exc
    model_type = str(getattr(model.config, "model_type", "unknown"))
    targets = settings.target_modules or target_modules_for(model_type)
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(targets),
        bias="none",
        task_type="CAUSAL_LM",
        **settings.extra,
    )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _PEFT_DEPRECATION, FutureWarning)
            return get_peft_model(model, config)
    except ValueError as exc:  # e.g. target modules not found in the model
        raise ConfigError(f"Cannot apply LoRA to this {model_type} model: {exc}") from exc
