"""One fine-tuning job, start to finish: check the data, load the base, train, save, register.

The order matters to users: the data is read and tokenised (with the base model's own
tokenizer) before any weights are loaded or anything is written, so a bad line fails in
seconds and leaves nothing behind. Training runs in a staging folder; only a finished job
is renamed into place (:func:`crossroads.tune.registry.register`).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError
from .data import DataSummary, file_sha256, load_examples, split_examples, tokenize_examples
from .lora import LoraSettings, apply_lora, target_modules_for
from .registry import (
    TunedModel,
    check_name,
    find_partial,
    models_dir,
    new_partial,
    register,
    tuned_model,
)
from .trainer import StepEvent, TrainConfig, Trainer, TrainResult

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "DEFAULT_LR",
    "BaseRef",
    "TuneOptions",
    "TuneOutcome",
    "cpu_threads",
    "prepare_base",
    "resolve_base",
    "run_tune",
]

DEFAULT_LR = {"lora": 2e-3, "full": 5e-5}
DEFAULT_MAX_LENGTH = 1024
#: Where converted base models live, under the models folder.
BASES_DIR = ".bases"


@dataclass(frozen=True, slots=True)
class BaseRef:
    """The model a job starts from: the name given and what it resolved to."""

    name: str
    source: str  # a folder, a .gguf file or a hub id (from_pretrained's argument)
    context_window: int | None = None
    licence: str | None = None
    trust_remote_code: bool = False


@dataclass(frozen=True, slots=True)
class TuneOptions:
    base: str
    data: Path
    out: str
    method: Literal["lora", "full"] = "lora"
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainConfig = field(default_factory=TrainConfig)
    learning_rate: float | None = None  # None: DEFAULT_LR[method]
    max_length: int | None = None  # None: min(context window, DEFAULT_MAX_LENGTH)
    val_fraction: float = 0.1
    merge: bool = False
    device: str = "auto"
    resume: bool = False
    overwrite: bool = False
    threads: int | None = None  # torch.set_num_threads (None: torch's default)


@dataclass
class TuneOutcome:
    model: TunedModel
    base: BaseRef
    result: TrainResult
    data: DataSummary
    card: dict[str, Any]


def resolve_base(base: str, config: Config) -> BaseRef:
    """What ``base`` names: a local folder or .gguf file, or a model name that resolves to
    an open model run in-process (transformers, or llama.cpp's .gguf file)."""
    from ..catalog import find_model

    path = Path(base).expanduser()
    if path.exists():
        return BaseRef(base, str(path.resolve()))
    if tuned_model(base) is not None:
        raise ConfigError(
            f"{base} is itself a tuned model; tune its base model instead (with all the data)."
        )
    from ..routing import catalog_entry_for, resolve

    deployment = resolve(base, config)
    entry = find_model(base) or catalog_entry_for(deployment.backend, deployment.model)
    licence = entry.licence.name if entry is not None else None
    if deployment.backend not in ("transformers", "llamacpp"):
        offer = f" The catalog says: {entry.fine_tuning}" if entry is not None else ""
        raise ConfigError(
            f"{base} runs on the {deployment.backend} backend: `crossroads tune` trains open "
            f"models in-process (transformers), from a folder, a .gguf file or a hub id. "
            f"Closed models are customised through their vendor's API.{offer}"
        )
    if deployment.backend == "llamacpp" and not deployment.model.lower().endswith(".gguf"):
        raise ConfigError(f"{base}: {deployment.model} is not a .gguf file transformers can load.")
    return BaseRef(
        base,
        deployment.model,
        deployment.context_window,
        licence,
        bool(deployment.options.get("trust_remote_code", False)),
    )


def _summary(path: Path, fmt: str, n: int, n_train: int, n_val: int, tok: list[Any]) -> DataSummary:
    return DataSummary(
        path=str(path),
        sha256=file_sha256(path),
        size_bytes=path.stat().st_size,
        examples=n,
        train_examples=n_train,
        val_examples=n_val,
        tokens=sum(len(t.input_ids) for t in tok),
        trained_tokens=sum(t.trained_tokens for t in tok),
        format=fmt,
    )


def _hyperparameters(opts: TuneOptions, lr: float, max_length: int) -> dict[str, Any]:
    t = opts.train
    hp: dict[str, Any] = {"method": opts.method}
    if opts.method == "lora":
        hp |= {
            "lora_rank": opts.lora.rank,
            "lora_alpha": opts.lora.alpha,
            "lora_dropout": opts.lora.dropout,
            "target_modules": ", ".join(opts.lora.target_modules or ()) or "default",
        }
    hp |= {
        "epochs": t.epochs,
        "learning_rate": lr,
        "batch_size": t.batch_size,
        "grad_accum": t.grad_accum,
        "max_length": max_length,
        "val_fraction": opts.val_fraction,
        "patience": t.patience,
        "warmup_ratio": t.warmup_ratio,
        "weight_decay": t.weight_decay,
        "seed": t.seed,
    }
    return hp


def run_tune(
    opts: TuneOptions,
    config: Config,
    *,
    on_step: Callable[[StepEvent], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> TuneOutcome:
    """Train ``opts.base`` on ``opts.data`` and register the result as ``local/OUT``."""
    from ..backends.hf import (
        TransformersOptions,
        load_tokenizer,
        load_weights,
        resolve_device,
    )

    say = on_phase or (lambda _: None)
    if opts.learning_rate is not None and not opts.learning_rate > 0:  # NaN too
        raise ConfigError(
            f"--lr must be greater than 0, not {opts.learning_rate:g}; leave --lr out for "
            f"the default ({DEFAULT_LR['lora']:g} LoRA, {DEFAULT_LR['full']:g} full)."
        )
    short = check_name(opts.out)
    if (models_dir() / short).exists() and not opts.overwrite:
        raise ConfigError(
            f"local/{short} already exists ({models_dir() / short}); pick another --out, "
            "or pass --overwrite to replace it."
        )
    partial = find_partial(short) if opts.resume else None
    if opts.resume and partial is None:
        raise ConfigError(
            f"Nothing to resume for local/{short}: no unfinished job with a checkpoint."
        )
    examples, fmt = load_examples(opts.data)
    base = resolve_base(opts.base, config)
    lr = DEFAULT_LR[opts.method] if opts.learning_rate is None else opts.learning_rate
    train_config = replace(opts.train, learning_rate=lr)
    device = resolve_device(opts.device)
    threads = opts.threads or (cpu_threads() if device == "cpu" else None)
    # float32 master weights; on CUDA the trainer computes in bfloat16 under autocast.
    load_opts = TransformersOptions(
        dtype="float32",
        device=opts.device,
        trust_remote_code=base.trust_remote_code,
        n_threads=threads,
    )
    source = prepare_base(base, say)
    tokenizer = load_tokenizer(source, load_opts)
    window = base.context_window or _context_window(source, base, tokenizer)
    max_length = opts.max_length or min(window, DEFAULT_MAX_LENGTH)
    if max_length > window:
        raise ConfigError(f"--max-length {max_length} exceeds the model's context ({window}).")
    train_ex, val_ex = split_examples(examples, opts.val_fraction, train_config.seed)
    tokenized = tokenize_examples(examples, tokenizer, max_length)
    by_line = {t.line: t for t in tokenized}
    train_tok = [by_line[e.line] for e in train_ex]
    val_tok = [by_line[e.line] for e in val_ex]
    data = _summary(opts.data, fmt, len(examples), len(train_ex), len(val_ex), tokenized)
    where = f"{device}, {threads} thread(s)" if threads else device
    say(f"Loading {base.name} ({source}) on {where}")
    model = load_weights(source, load_opts, device)
    partial = partial or new_partial(short)
    try:
        registered, result, card = _train_and_register(
            opts,
            model,
            tokenizer,
            base,
            source,
            window,
            partial,
            short,
            train_config,
            train_tok,
            val_tok,
            data,
            lr,
            max_length,
            device,
            on_step,
            say,
        )
    except BaseException:
        # Keep a job that can be resumed; drop one that never reached a checkpoint.
        if not any((partial / "checkpoints").glob("step-*/state.json")):
            shutil.rmtree(partial, ignore_errors=True)
        raise
    del model
    gc.collect()
    return TuneOutcome(registered, base, result, data, card)


def _train_and_register(
    opts: TuneOptions,
    model: Any,
    tokenizer: Any,
    base: BaseRef,
    source: str,
    window: int,
    partial: Path,
    short: str,
    train_config: TrainConfig,
    train_tok: list[Any],
    val_tok: list[Any],
    data: DataSummary,
    lr: float,
    max_length: int,
    device: str,
    on_step: Callable[[StepEvent], None] | None,
    say: Callable[[str], None],
) -> tuple[TunedModel, TrainResult, dict[str, Any]]:
    import torch

    say(f"Training in {partial}")
    hyperparameters = _hyperparameters(opts, lr, max_length)
    if opts.method == "lora":
        torch.manual_seed(train_config.seed)  # the adapters' initialisation
        targets = opts.lora.target_modules or target_modules_for(str(model.config.model_type))
        hyperparameters["target_modules"] = ", ".join(targets)
        model = apply_lora(model, replace(opts.lora, target_modules=tuple(targets)))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    trainer = Trainer(
        model,
        train_tok,
        val_tok,
        train_config,
        output_dir=partial,
        device=device,
        pad_token_id=int(pad or 0),
        on_step=on_step,
    )
    result = trainer.train(resume=opts.resume)
    say("Saving")
    merged = opts.method == "full" or opts.merge
    stamp = datetime.now(UTC)
    kind = "model" if merged else "adapter"
    weights = f"{kind}-{stamp.strftime('%Y%m%d%H%M%S')}-{partial.name[-4:]}"
    to_save = model.merge_and_unload() if opts.method == "lora" and merged else model
    to_save.save_pretrained(partial / weights)
    tokenizer.save_pretrained(partial / weights)
    tuned = TunedModel(
        name=short,
        base_name=base.name,
        base_model=source,
        base_original=base.source if source != base.source else None,
        method=opts.method,
        merged=merged,
        weights=weights,
        created_at=stamp.isoformat(timespec="seconds"),
        context_window=window,
        base_licence=base.licence,
        options={"trust_remote_code": True} if base.trust_remote_code else {},
        folder=partial,
    )
    card = build_card(tuned, base, data, hyperparameters, result)
    from .card import write_card

    write_card(partial, card)
    return register(partial, tuned, overwrite=opts.overwrite), result, card


def cpu_threads() -> int | None:
    """Threads for torch on a CPU: None (torch's default, one per core) unless the last
    minute's load average already reaches the core count, then half the cores (at least
    one). torch's threads spin while they wait for each other, so on cores other processes
    keep busy every extra thread costs far more than it brings (measured on 2 cores at
    load 5: 14 training tokens/s with 2 threads, 45 with 1; at load 1, 2 threads win)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    if not cores or load < cores:
        return None
    return max(1, cores // 2)


def _context_window(model: str, base: BaseRef, tokenizer: Any) -> int:
    """The base model's context window, read from its config (no weights loaded)."""
    import transformers

    from ..backends.hf import model_context_window, pretrained_source

    source, extra = pretrained_source(model)
    try:
        config = transformers.AutoConfig.from_pretrained(
            source, trust_remote_code=base.trust_remote_code, **extra
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"Could not read the configuration of {model}: {exc}") from exc
    return model_context_window(config, tokenizer)


def prepare_base(base: BaseRef, say: Callable[[str], None] = lambda _: None) -> str:
    """A transformers folder for the base model: a .gguf file is converted once (dequantised
    to float32, with its tokenizer) into ``models/.bases/`` and reused by every later job
    and by the tuned models that reference it -- reading GGUF metadata in Python takes tens
    of seconds, loading the converted folder about one."""
    path = Path(base.source)
    if not (path.is_file() and path.suffix.lower() == ".gguf"):
        return base.source
    from ..backends.hf import TransformersOptions, load_tokenizer, load_weights

    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    folder = models_dir() / BASES_DIR / f"{path.stem}-{digest}"
    if (folder / "config.json").is_file():
        return str(folder)
    say(f"Converting {path.name} to a transformers folder once ({folder})")
    options = TransformersOptions(dtype="float32", device="cpu")
    tokenizer = load_tokenizer(str(path), options)
    model = load_weights(str(path), options, "cpu")
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    # transformers marks GGUF-loaded models as "quantized" (they are dequantised already)
    # and refuses to save them; the weights are plain tensors, so drop the marker.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    origin = {"converted_from": str(path.resolve()), "size_bytes": stat.st_size}
    (tmp / "crossroads-base.json").write_text(json.dumps(origin, indent=1), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    del model
    gc.collect()
    return str(folder)


def build_card(
    tuned: TunedModel,
    base: BaseRef,
    data: DataSummary,
    hyperparameters: dict[str, Any],
    result: TrainResult,
) -> dict[str, Any]:
    """The card dict (``card.json``; :func:`crossroads.tune.card.render_card` draws it)."""
    train = result.as_dict()
    train.pop("history")
    return {
        "model": tuned.full_name,
        "created_at": tuned.created_at,
        "method": tuned.method,
        "merged": tuned.merged,
        "base": {"name": base.name, "source": base.source, "licence": base.licence},
        "data": asdict(data),
        "hyperparameters": hyperparameters,
        "training": train,
        "loss_curve": result.history,
        "evaluation": None,
    }
