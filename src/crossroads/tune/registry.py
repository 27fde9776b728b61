"""Tuned models on this machine: ``$CROSSROADS_HOME/models/NAME``, served as ``local/NAME``.

Layout of one model::

    models/NAME/
        crossroads-model.json     the manifest (below)
        adapter-<id>/ | model-<id>/   PEFT adapter + tokenizer, or full (merged) weights
        README.md, card.json      the model card

The manifest records the base model both as the name it was given (``local/smollm2``)
and as what that name resolved to (a file path or hub id), the method, whether the
weights are merged, and when the model was made. The weights folder carries a fresh id
on every training run, so nothing keyed on the path (the eval response cache, the
process-wide model cache) can mistake a retrained model for an older one.

Registration is atomic: a job trains in ``NAME.partial-XXXX`` (where its checkpoints live,
so ``--resume`` can find them) and :func:`register` renames it to ``NAME`` only after the
weights and card are written. A folder whose manifest is missing is never served.

This module is imported while model names are resolved, so it imports neither torch nor
transformers, and reads one small JSON file per lookup.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends.base import Deployment, Prices
from ..config import crossroads_home
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..catalog import CatalogEntry
    from ..catalog.local import LocalModel

__all__ = [
    "MANIFEST",
    "PREFIX",
    "TUNED_MODELS",
    "TunedModel",
    "TunedModels",
    "check_name",
    "find_partial",
    "list_tuned",
    "models_dir",
    "new_partial",
    "register",
    "tuned_catalog_entry",
    "tuned_deployment",
    "tuned_model",
]

MANIFEST = "crossroads-model.json"
PREFIX = "local/"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_PARTIAL = ".partial-"


def models_dir() -> Path:
    """Where tuned models live (``$CROSSROADS_HOME/models``)."""
    return crossroads_home() / "models"


def _short(name: str) -> str:
    return name.removeprefix(PREFIX)


def check_name(name: str) -> str:
    """The short name (``NAME`` of ``local/NAME``), validated."""
    from ..backends.embedded import EMBEDDED_MODELS

    short = _short(name.strip())
    if not _NAME.fullmatch(short) or _PARTIAL in short:
        raise ConfigError(
            f"--out {name!r}: use lower-case letters, digits, '.', '_' or '-' (at most 64, "
            "starting with a letter or digit), e.g. --out smollm2-support"
        )
    if PREFIX + short in EMBEDDED_MODELS:
        raise ConfigError(f"--out {name!r} would hide the embedded model {PREFIX + short}.")
    return short


@dataclass(frozen=True, slots=True)
class TunedModel:
    """The manifest of one registered model."""

    name: str  # short name: NAME
    base_name: str  # the base as given: local/smollm2, a folder, a hub id
    base_model: str  # the weights the adapter applies to: a folder or a hub id
    method: str  # lora | full
    merged: bool  # full weights in `weights` (no adapter)
    weights: str  # folder, relative to the model folder
    created_at: str
    context_window: int | None = None
    base_licence: str | None = None
    base_original: str | None = None  # what the name resolved to, when converted (a .gguf)
    options: dict[str, Any] = field(default_factory=dict)  # transformers backend options
    folder: Path = field(default=Path(), compare=False)

    @property
    def full_name(self) -> str:
        return PREFIX + self.name

    @property
    def weights_path(self) -> Path:
        return self.folder / self.weights

    def resolved_base(self) -> str:
        """The base weights now: the converted folder, else the original file, else (for
        an embedded base) the embedded file looked up again, so that a deleted conversion
        or a reinstalled package does not break the tuned model."""
        from ..backends.embedded import EMBEDDED_MODELS, embedded_model_path

        for candidate in (self.base_model, self.base_original):
            if candidate and Path(candidate).expanduser().exists():
                return candidate
        if self.base_name in EMBEDDED_MODELS:
            return str(embedded_model_path(self.base_name))
        return self.base_model

    def deployment(self, name: str | None = None) -> Deployment:
        options: dict[str, object] = dict(self.options)
        if not self.merged:
            options["base_model"] = self.resolved_base()
        return Deployment(
            name=name or self.full_name,
            backend="transformers",
            model=str(self.weights_path),
            context_window=self.context_window,
            prices=Prices(0.0, 0.0),
            options=options,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("folder")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], folder: Path) -> TunedModel:
        known = {f for f in cls.__dataclass_fields__ if f != "folder"}
        return cls(**{k: v for k, v in data.items() if k in known}, folder=folder)


def _read(folder: Path) -> TunedModel | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder / MANIFEST} is unreadable: {exc}") from exc
    try:
        return TunedModel.from_json(data, folder)
    except TypeError as exc:
        raise ConfigError(f"{folder / MANIFEST} is not a tuned-model manifest: {exc}") from exc


def tuned_model(name: str) -> TunedModel | None:
    """The registered model ``local/NAME`` (or ``NAME``), or None."""
    short = _short(name)
    if not _NAME.fullmatch(short) or _PARTIAL in short:
        return None
    return _read(models_dir() / short)


def tuned_deployment(name: str) -> Deployment | None:
    """The deployment of ``local/NAME`` when it is a registered tuned model, else None."""
    if not name.startswith(PREFIX):
        return None
    found = tuned_model(name)
    return found.deployment(name) if found is not None else None


def list_tuned() -> list[TunedModel]:
    """Every registered model, by name."""
    root = models_dir()
    if not root.is_dir():
        return []
    found = (_read(p) for p in sorted(root.iterdir()) if p.is_dir() and _PARTIAL not in p.name)
    return [m for m in found if m is not None]


def new_partial(name: str) -> Path:
    """A fresh staging folder ``NAME.partial-XXXX`` for one training job."""
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{check_name(name)}{_PARTIAL}", dir=root))


def find_partial(name: str) -> Path | None:
    """The newest unfinished job for ``NAME`` that has a checkpoint, or None."""
    root = models_dir()
    short = check_name(name)
    if not root.is_dir():
        return None
    found = [
        p
        for p in root.glob(f"{short}{_PARTIAL}*")
        if p.is_dir() and any((p / "checkpoints").glob("step-*/state.json"))
    ]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def register(partial: Path, model: TunedModel, *, overwrite: bool = False) -> TunedModel:
    """Write the manifest into ``partial`` and rename it to ``models/NAME``: the model
    becomes visible at once and in full, or not at all."""
    final = models_dir() / model.name
    if final.exists() and not overwrite:
        raise ConfigError(
            f"{model.full_name} already exists ({final}); pick another --out, or pass "
            "--overwrite to replace it."
        )
    shutil.rmtree(partial / "checkpoints", ignore_errors=True)
    manifest = partial / MANIFEST
    tmp = partial / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(model.to_json(), indent=1), encoding="utf-8")
    os.replace(tmp, manifest)
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".{model.name}.replaced-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    partial.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    registered = _read(final)
    assert registered is not None
    return registered


def tuned_catalog_entry(name: str) -> CatalogEntry | None:
    """A catalog row for ``local/NAME``: the base model's facts (licence, size, hosting)
    under the tuned model's name, so ``compare``, ``cost`` and ``fit`` accept it."""
    if not name.startswith(PREFIX):
        return None
    found = tuned_model(name)
    if found is None or found.base_name.strip().lower() == name.strip().lower():
        return None
    from ..catalog import find_model

    base = find_model(found.base_name)
    if base is None or base.kind != "open":
        return None
    how = "LoRA adapter" if not found.merged else f"{found.method} fine-tune (merged weights)"
    return base.model_copy(
        update={
            "id": found.full_name,
            "name": f"{base.name} tuned: {found.name}",
            "aliases": [],
            "backend": "transformers",
            "vendor_model": str(found.weights_path),
            "successor": None,
            "status": "active",
            "fine_tuning": (
                f"{how} on {base.id}, made by `crossroads tune` on {found.created_at[:10]}; "
                f"model card: {found.folder / 'README.md'}. {base.fine_tuning}"
            ),
        }
    )


class TunedModels:
    """The registry as a source of ``local/NAME`` models for the catalog and routing
    (registered under the ``crossroads.local_models`` entry point)."""

    @staticmethod
    def catalog_entry(name: str) -> CatalogEntry | None:
        return tuned_catalog_entry(name)

    @staticmethod
    def deployment(name: str) -> Deployment | None:
        return tuned_deployment(name)

    @staticmethod
    def inventory() -> list[LocalModel]:
        """Tuned models on this machine; an adapter is described by its base model."""
        from ..catalog.local import describe_model_file

        found = []
        for t in list_tuned():
            weights = str(t.folder / t.weights)
            described = weights if t.merged else t.base_model
            row = describe_model_file(f"local/{t.name}", "transformers", described)
            found.append(replace(row, path=weights, licence=row.licence or t.base_licence))
        return found


TUNED_MODELS = TunedModels()
