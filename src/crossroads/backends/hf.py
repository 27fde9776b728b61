"""Open models in-process with Hugging Face transformers (torch), with dynamic batching.

``model:`` is a local folder (``config.json`` + weights + tokenizer), a ``.gguf`` file
(dequantized by transformers; needs ``gguf``) or a Hugging Face hub id (downloaded by
``from_pretrained`` when online). Options (``options:`` in crossroads.yaml):

* ``dtype``: ``auto`` (default: bfloat16, else float16, on CUDA; float32 on CPU),
  ``float32``, ``float16`` or ``bfloat16``;
* ``device``: ``auto`` (default: CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``;
* ``max_batch_size`` (8): requests decoded together in one forward pass per step;
* ``batch_wait_ms`` (5): how long a small batch waits for more requests;
* ``n_threads``: ``torch.set_num_threads`` for the process (default: torch's choice);
* ``n_ctx``: context window override (default: the model's);
* ``ignore_eos`` (false): generate past EOS, for benchmarks; a request may also send
  ``ignore_eos: true`` as an extra field, as with vLLM;
* ``trust_remote_code`` (false): run model code shipped on the hub (trusted models only);
* ``attn_implementation``: ``sdpa``, ``eager``, ... passed to ``from_pretrained``;
* ``base_model``: when ``model:`` is a PEFT adapter folder (``crossroads tune`` writes
  one), the model it applies to (folder, .gguf file or hub id); the adapter is merged
  into the base weights in memory at load time, and the tokenizer is read from the
  adapter folder when it holds one.

Requests with ``temperature`` None or 0 decode greedily; otherwise they sample with
``temperature`` and ``top_p`` from a per-request generator seeded by ``seed``.

Each model is loaded once per process (:class:`SharedModels`) and served by one
:class:`~crossroads.backends._batching.BatchingEngine`; the engine's settings come from
the first deployment that loads it. torch and transformers are imported on first use.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import BadRequestError, ConfigError
from ..types import (
    AssistantMessage,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    Usage,
    new_id,
)
from ._local import (
    LOCAL_DEFAULT_MAX_TOKENS,
    PLAIN_STOP,
    SharedModels,
    chat_messages,
    check_prompt_fits,
    parse_options,
    plain_prompt,
)
from .base import Backend, Capabilities, Deployment

if TYPE_CHECKING:
    from ._batching import BatchingEngine, GenerationParams, Job

__all__ = [
    "LoadedModel",
    "TransformersBackend",
    "TransformersOptions",
    "load_model",
    "load_tokenizer",
    "load_weights",
    "model_context_window",
    "pretrained_source",
    "resolve_device",
]

VENDOR = "transformers"
DEFAULT_MAX_TOKENS = LOCAL_DEFAULT_MAX_TOKENS
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "seq_length", "max_seq_len", "n_ctx")
_INSTALL = (
    "Install the CPU build of torch first (pip install torch==2.13.0; a bare "
    "`pip install torch` pulls a multi-GB CUDA build), then "
    "pip install 'crossroads[transformers]'."
)


class TransformersOptions(BaseModel):
    """The ``options:`` of a transformers model entry (see the module docstring).

    Strict (no ``"8"`` for 8, no ``true`` for 1) and frozen: hashable, so the options can
    be part of a cache key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: str = "auto"
    max_batch_size: int = Field(8, ge=1)
    batch_wait_ms: float = Field(5.0, ge=0)
    n_threads: int | None = Field(None, ge=1)
    n_ctx: int | None = Field(None, ge=1)
    ignore_eos: bool = False
    trust_remote_code: bool = False
    attn_implementation: str | None = None
    base_model: str | None = None

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", device):
            raise ValueError("must be cpu, cuda, cuda:N, mps or auto")
        return device

    @classmethod
    def parse(cls, name: str, options: Mapping[str, object]) -> TransformersOptions:
        """Validated options; a ConfigError names the model and the bad option."""
        return parse_options(cls, name, "transformers", options)


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model, its tokenizer and its batching engine, shared by every deployment."""

    model: Any
    tokenizer: Any
    engine: BatchingEngine
    context_window: int  # the model's own (deployments may set a smaller one)
    chat_template: bool
    architecture: str


_MODELS: SharedModels[LoadedModel] = SharedModels()
T = TypeVar("T")
#: ``from_pretrained`` patches module-level state while it builds a model (empty-weight
#: initialisation on the meta device, weight tying): two loads in two threads can corrupt
#: each other ("Cannot copy out of meta tensor"), so loads take turns.
_LOAD_LOCK = threading.Lock()


def _import_runtime() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ConfigError(
            f"The transformers backend needs torch and transformers. {_INSTALL}"
        ) from exc
    return torch, transformers


def pretrained_source(model: str) -> tuple[str, dict[str, Any]]:
    """``from_pretrained``'s first argument and extra keywords for ``model:``."""
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ConfigError(
                f"{path} is a file but not a .gguf file: give a model folder (config.json, "
                "weights and tokenizer files), a .gguf file or a Hugging Face hub id."
            )
        return str(path.parent), {"gguf_file": path.name, "local_files_only": True}
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return str(path), {"gguf_file": ggufs[0].name, "local_files_only": True}
            raise ConfigError(
                f"Model folder {path} has no config.json: it must hold a transformers model "
                "(config.json, weights and tokenizer files), a PEFT adapter "
                "(adapter_config.json) or exactly one .gguf file."
            )
        return str(path), {"local_files_only": True}
    if not _HUB_ID.fullmatch(model) or model.endswith(".gguf"):
        raise ConfigError(
            f"Model folder {path} does not exist. Point `model:` at a folder with config.json, "
            "weights and tokenizer files, a .gguf file, or a Hugging Face hub id."
        )
    return model, {}


def _architecture(source: str) -> str:
    try:
        raw = json.loads((Path(source) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown"
    names = raw.get("architectures") or [raw.get("model_type") or "unknown"]
    return ", ".join(str(n) for n in names)


def model_context_window(config: Any, tokenizer: Any) -> int:
    for key in _CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    return 2048


def _resolve_device(torch: Any, device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device: cuda was requested but torch sees no CUDA GPU.")
    return device


def _resolve_dtype(torch: Any, dtype: str, device: str) -> Any:
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; a missing GPU is an error."""
    torch, _ = _import_runtime()
    return _resolve_device(torch, device)


def _model_key(model: str, options: TransformersOptions) -> tuple[Hashable, TransformersOptions]:
    """The process-wide cache key of a model, and its options with device/dtype resolved."""
    torch, _ = _import_runtime()
    device = _resolve_device(torch, options.device)
    dtype = str(_resolve_dtype(torch, options.dtype, device)).removeprefix("torch.")
    resolved = options.model_copy(update={"device": device, "dtype": dtype})
    path = Path(model).expanduser()
    where = str(path.resolve()) if path.exists() else model
    return (
        where,
        device,
        dtype,
        options.trust_remote_code,
        options.attn_implementation,
        options.base_model,
    ), resolved


def _from_pretrained(model: str, hub: bool, load: Callable[[], T]) -> T:
    """Run a ``from_pretrained`` call, turning its failures into ConfigErrors."""
    try:
        return load()
    except ImportError as exc:  # e.g. gguf, or a package some model code needs
        raise ConfigError(f"Loading {model!r} needs a missing package: {exc}. {_INSTALL}") from exc
    except (ValueError, KeyError) as exc:
        if hub:
            raise ConfigError(f"Could not load {model!r} with transformers: {exc}") from exc
        raise ConfigError(
            f"transformers cannot load the architecture {_architecture(model)} of {model}: "
            f"{exc}. Upgrade transformers, or set trust_remote_code: true for a model that "
            "ships its own code (only if you trust it)."
        ) from exc
    except OSError as exc:
        if not hub:
            raise ConfigError(f"Could not load the model in {model}: {exc}") from exc
        raise ConfigError(
            f"{model!r} is not a local folder and could not be fetched from the Hugging Face "
            f"hub: {exc}. Offline (HF_HUB_OFFLINE=1 or no network) a hub id works only once "
            "it is in the local cache (huggingface-cli download ...); otherwise point `model:` "
            "at a local folder or .gguf file."
        ) from exc


def _is_adapter(model: str) -> bool:
    return (Path(model).expanduser() / "adapter_config.json").is_file()


def load_tokenizer(model: str, options: TransformersOptions) -> Any:
    """The tokenizer of ``model`` (of an adapter folder when it holds one, else its base)."""
    _, transformers = _import_runtime()
    if options.base_model and not (Path(model).expanduser() / "tokenizer_config.json").is_file():
        model = options.base_model
    source, extra = pretrained_source(model)
    kwargs: dict[str, Any] = {**extra, "trust_remote_code": options.trust_remote_code}
    with _LOAD_LOCK:
        return _from_pretrained(
            model, not extra, lambda: transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        )


def load_weights(model: str, options: TransformersOptions, device: str) -> Any:
    """The causal LM of ``model`` on ``device`` (a PEFT adapter merged into ``base_model``)."""
    torch, _ = _import_runtime()
    adapter: str | None = None
    if options.base_model or _is_adapter(model):
        if not options.base_model:
            raise ConfigError(
                f"{model} is a PEFT adapter: give the model it applies to as the option "
                "base_model (a folder, .gguf file or hub id)."
            )
        adapter, model = model, options.base_model
    source, extra = pretrained_source(model)
    kwargs: dict[str, Any] = {**extra, "trust_remote_code": options.trust_remote_code}
    if options.attn_implementation:
        kwargs["attn_implementation"] = options.attn_implementation
    dtype = _resolve_dtype(torch, options.dtype, device)
    with _LOAD_LOCK:
        return _load_weights(model, source, kwargs, dtype, adapter, options, device)


def _load_weights(
    model: str,
    source: str,
    kwargs: dict[str, Any],
    dtype: Any,
    adapter: str | None,
    options: TransformersOptions,
    device: str,
) -> Any:
    torch, transformers = _import_runtime()
    loaded = _from_pretrained(
        model,
        "local_files_only" not in kwargs,
        lambda: transformers.AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs),
    )
    if adapter is not None:
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise ConfigError(f"{adapter} is a LoRA adapter: it needs peft. {_INSTALL}") from exc
        try:
            with warnings.catch_warnings():
                # peft reads an attribute transformers 5 deprecates, and notes that merging
                # unties tied embeddings (LoRA never touches them): neither needs the user.
                warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*", FutureWarning)
                warnings.filterwarnings("ignore", ".*no longer tied after merging.*", UserWarning)
                loaded = PeftModel.from_pretrained(loaded, adapter).merge_and_unload()
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ConfigError(f"Could not apply the adapter {adapter} to {model}: {exc}") from exc
    if options.n_threads:
        torch.set_num_threads(options.n_threads)
    try:
        loaded.to(device)
    except (RuntimeError, AssertionError) as exc:
        raise ConfigError(f"Could not move {model!r} to device {device}: {exc}") from exc
    return loaded


def load_model(model: str, options: TransformersOptions) -> LoadedModel:
    """Load ``model`` (folder, .gguf file, hub id or adapter) and start its batching engine."""
    torch, _ = _import_runtime()
    from ._batching import BatchingEngine

    device = _resolve_device(torch, options.device)
    tokenizer = load_tokenizer(model, options)
    loaded = load_weights(model, options, device)
    loaded.eval()
    eos: set[int] = set()
    for value in (loaded.generation_config.eos_token_id, tokenizer.eos_token_id):
        eos.update([value] if isinstance(value, int) else list(value or []))
    pad = tokenizer.pad_token_id
    pad = pad if pad is not None else (min(eos) if eos else 0)
    engine = BatchingEngine(
        loaded,
        tokenizer,
        device=device,
        eos_token_ids=frozenset(eos),
        pad_token_id=pad,
        max_batch_size=options.max_batch_size,
        batch_wait_ms=options.batch_wait_ms,
    )
    return LoadedModel(
        model=loaded,
        tokenizer=tokenizer,
        engine=engine,
        context_window=model_context_window(loaded.config, tokenizer),
        chat_template=bool(getattr(tokenizer, "chat_template", None)),
        architecture=type(loaded).__name__,
    )


class TransformersBackend(Backend):
    """Open models in-process via transformers, batching concurrent requests."""

    name: ClassVar[str] = "transformers"
    requires_key: ClassVar[bool] = False
    api_key_env: ClassVar[str | None] = None

    def __init__(self, deployment: Deployment, *, http: httpx.AsyncClient | None = None) -> None:
        super().__init__(deployment, http=http)
        self.options = TransformersOptions.parse(deployment.name, deployment.options)
        self._loaded: LoadedModel | None = None

    async def load(self) -> LoadedModel:
        """The shared model (loaded off the event loop on first use)."""
        if self._loaded is None:
            # Importing torch and touching the disk take time: not on the event loop.
            key, resolved = await asyncio.to_thread(_model_key, self.deployment.model, self.options)
            self._loaded = await _MODELS.aget(
                key, lambda: load_model(self.deployment.model, resolved)
            )
        return self._loaded

    @property
    def engine(self) -> BatchingEngine | None:
        """The batching engine, once the model is loaded (for stats)."""
        return self._loaded.engine if self._loaded else None

    @property
    def context_window(self) -> int | None:
        if self.options.n_ctx or self.deployment.context_window:
            return self.options.n_ctx or self.deployment.context_window
        if self._loaded is not None:
            return self._loaded.context_window
        config = Path(self.deployment.model).expanduser() / "config.json"
        try:
            raw = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        found = (raw.get(k) for k in _CONTEXT_KEYS)
        return next((v for v in found if isinstance(v, int) and v > 0), None)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(streaming=True, context_window=self.context_window)

    def _params(self, loaded: LoadedModel, request: ChatRequest) -> GenerationParams:
        from ._batching import GenerationParams

        if request.n not in (None, 1):
            raise BadRequestError("n > 1 is not supported by local models", vendor=VENDOR)
        stops = request.stop_list()
        tokenizer = loaded.tokenizer
        try:
            if loaded.chat_template:
                text = tokenizer.apply_chat_template(
                    chat_messages(request), add_generation_prompt=True, tokenize=False
                )
                ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            else:
                ids = tokenizer(plain_prompt(request))["input_ids"]
                stops.append(PLAIN_STOP)
        except Exception as exc:  # jinja errors, e.g. a role the template refuses
            raise BadRequestError(f"Could not build the prompt: {exc}", vendor=VENDOR) from exc
        window = self.context_window or loaded.context_window
        check_prompt_fits(len(ids), window, request)
        wanted = request.max_tokens or self.deployment.max_output_tokens or DEFAULT_MAX_TOKENS
        ignore_eos = (request.model_extra or {}).get("ignore_eos", self.options.ignore_eos)
        return GenerationParams(
            prompt_ids=list(ids),
            max_new_tokens=max(1, min(wanted, window - len(ids))),
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            stops=tuple(stops),
            ignore_eos=bool(ignore_eos),
        )

    async def _start(self, request: ChatRequest) -> Job:
        loaded = await self.load()
        return loaded.engine.submit(self._params(loaded, request))

    async def complete(self, request: ChatRequest) -> ChatResponse:
        job = await self._start(request)
        try:
            text = "".join([piece async for piece in job.deltas()])
        finally:
            job.cancel()
        done = job.done
        assert done is not None
        return ChatResponse(
            model=request.model,
            choices=[
                Choice(message=AssistantMessage(content=text), finish_reason=done.finish_reason)
            ],
            usage=Usage.of(done.prompt_tokens, done.completion_tokens),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        job = await self._start(request)
        chunk_id = new_id()
        try:
            yield ChatChunk(
                id=chunk_id,
                model=request.model,
                choices=[ChunkChoice(delta=Delta(role="assistant"))],
            )
            async for piece in job.deltas():
                yield ChatChunk(
                    id=chunk_id,
                    model=request.model,
                    choices=[ChunkChoice(delta=Delta(content=piece))],
                )
        finally:
            job.cancel()
        done = job.done
        assert done is not None
        yield ChatChunk(
            id=chunk_id,
            model=request.model,
            choices=[ChunkChoice(delta=Delta(), finish_reason=done.finish_reason)],
        )
        yield ChatChunk(
            id=chunk_id,
            model=request.model,
            choices=[],
            usage=Usage.of(done.prompt_tokens, done.completion_tokens),
        )
