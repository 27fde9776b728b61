"""The open models on this machine: the embedded default and configured GGUF files/folders.

Facts come from the files themselves — GGUF metadata (``general.architecture``,
``general.file_type``, ``general.license``) read with the ``gguf`` package without
loading weights, or a folder's ``config.json`` — and from the catalog for the licence
when the file does not say.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..backends.embedded import EMBEDDED_MODELS, embedded_model_path
from ..config import Config
from ..errors import ConfigError
from . import find_model

__all__ = ["LOCAL_BACKENDS", "LocalModel", "describe_model_file", "find_local_models"]

LOCAL_BACKENDS = ("llamacpp", "transformers")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


@dataclass(frozen=True, slots=True)
class LocalModel:
    name: str
    backend: str
    path: str
    present: bool
    size_bytes: int | None = None
    architecture: str | None = None
    quantisation: str | None = None
    licence: str | None = None
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _gguf_facts(path: Path) -> dict[str, str | None]:
    try:
        from gguf import GGUFReader, LlamaFileType
    except ImportError:  # pragma: no cover - gguf ships with the local extra
        return {}
    reader = GGUFReader(str(path), "r")

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        return field.contents() if field is not None else None

    file_type = value("general.file_type")
    try:
        quant = LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_") if file_type else None
    except ValueError:
        quant = f"type {file_type}"
    return {
        "architecture": value("general.architecture"),
        "quantisation": quant,
        "licence": value("general.license"),
        "name": value("general.basename") or value("general.name"),
    }


def _folder_facts(path: Path) -> dict[str, str | None]:
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    architectures = config.get("architectures") or [config.get("model_type")]
    quant = (config.get("quantization_config") or {}).get("quant_method")
    dtype = config.get("torch_dtype") or config.get("dtype")
    return {
        "architecture": architectures[0] if architectures else None,
        "quantisation": quant or (str(dtype) if dtype else None),
        "licence": None,
        "name": config.get("_name_or_path"),
    }


def describe_model_file(name: str, backend: str, model: str) -> LocalModel:
    """What can be told about one local model without loading it."""
    path = Path(model).expanduser()
    if not path.exists():
        looks_like_hub_id = backend == "transformers" and model.count("/") == 1
        problem = "hub id (downloads on first use)" if looks_like_hub_id else "path not found"
        return LocalModel(name, backend, model, False, problem=problem)
    try:
        facts = _gguf_facts(path) if path.is_file() else _folder_facts(path)
    except (OSError, ValueError, KeyError) as exc:
        return LocalModel(name, backend, str(path), True, problem=f"unreadable: {exc}")
    if path.is_file():
        size = path.stat().st_size
    else:
        size = sum(p.stat().st_size for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
    basename = facts.get("name")
    row = find_model(name) or (find_model(basename) if basename else None)
    licence = facts.get("licence") or (row.licence.name if row is not None else None)
    return LocalModel(
        name,
        backend,
        str(path),
        True,
        size_bytes=size,
        architecture=facts.get("architecture"),
        quantisation=facts.get("quantisation"),
        licence=licence,
    )


def find_local_models(config: Config) -> list[LocalModel]:
    """The embedded models, every configured ``llamacpp`` / ``transformers`` model and the
    models made by ``crossroads tune``."""
    found: list[LocalModel] = []
    for name, embedded in EMBEDDED_MODELS.items():
        try:
            path = embedded_model_path(name)
        except ConfigError as exc:
            found.append(LocalModel(name, embedded.backend, "", False, problem=exc.message))
            continue
        found.append(describe_model_file(name, embedded.backend, str(path)))
    for entry in config.models:
        if entry.backend in LOCAL_BACKENDS:
            found.append(describe_model_file(entry.name, entry.backend, entry.model))
    from .hooks import local_inventory

    found.extend(local_inventory())  # e.g. made by `crossroads tune`
    return found
