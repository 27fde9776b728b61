"""GGUF models in-process through llama.cpp (the ``llama-cpp-python`` package).

``model`` is the path of a GGUF file (``~`` is expanded). ``options`` in crossroads.yaml:

- ``n_ctx``: context size in tokens; default the model's trained context, capped at 8192;
- ``n_threads``: CPU threads for generation and prompt processing; default all cores;
- ``n_batch``: prompt-processing batch size (llama-cpp-python's default when unset);
- ``chat_format``: a llama-cpp-python chat format name (``chatml``, ``llama-3``, ...)
  that overrides the model's own template;
- ``verbose``: llama.cpp's own logging on stderr (default False);
- any other ``llama_cpp.Llama`` argument with a scalar value (``n_gpu_layers``, ...).

The chat template is the model's own: without ``chat_format``, llama-cpp-python renders
``tokenizer.chat_template`` from the GGUF metadata with Jinja2 (or the identical built-in
format it recognises), and appends the template's end-of-turn token to the stop list.

Each model is loaded once per process (:class:`~._local.SharedModels`) and served by one
worker thread of its own: a llama.cpp model is not thread-safe, so requests queue on that
thread and run one at a time in arrival order. Streams hand text from the worker to the
event loop through an ``asyncio.Queue``; closing a stream stops generation at the next
token. Temperature 0 (or below) is greedy decoding; with a temperature above 0 and no
``seed`` every call draws a fresh random seed.

Usage counts the formatted prompt's tokens and the tokens sampled (end-of-turn excluded),
as llama-cpp-python reports them for a non-streamed completion.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator

from ..errors import APIError, BadRequestError, ConfigError, CrossroadsError
from ..errors import ContextWindowExceededError as ContextError
from ..types import (
    AssistantMessage,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    FinishReason,
    Usage,
    new_id,
    now,
)
from ._local import (
    LOCAL_DEFAULT_MAX_TOKENS,
    SharedModels,
    StopMatcher,
    chat_messages,
    check_prompt_fits,
    parse_options,
)
from .base import Backend, Capabilities, Deployment

__all__ = [
    "MODELS",
    "LlamaCppBackend",
    "LlamaCppOptions",
    "LoadOptions",
    "LoadedModel",
    "load_options",
    "request_to_llamacpp",
]

VENDOR = "llamacpp"
#: llama-cpp-python's refusal: "Requested tokens (9000) exceed context window of 8192".
_TOKENS_OVER_WINDOW = re.compile(r"\((\d+)\)\D+?(\d+)")
#: Default context size when ``n_ctx`` is not set: the trained context, at most this.
MAX_DEFAULT_CONTEXT = 8192


def _scalar(value: object) -> str | int | float | bool:
    if isinstance(value, str | int | float | bool):
        return value
    raise ValueError("must be a string, number or boolean")


class LlamaCppOptions(BaseModel):
    """The ``options:`` of a llamacpp model entry (see the module docstring).

    Options not named here go to ``llama_cpp.Llama`` as they are (``llama_kwargs``);
    :func:`_load` refuses those that ``Llama`` does not take. The cache key of a loaded
    model is :class:`LoadOptions`, built from these by :func:`load_options`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    n_ctx: int | None = Field(None, ge=1)
    n_threads: int | None = Field(None, ge=1)
    n_batch: int | None = Field(None, ge=1)
    chat_format: str | None = None
    verbose: bool = False
    llama_kwargs: dict[str, Annotated[str | int | float | bool, PlainValidator(_scalar)]] = Field(
        default_factory=dict
    )

    @model_validator(mode="before")
    @classmethod
    def _gather_llama_kwargs(cls, data: Any) -> Any:
        """``options:`` writes pass-through arguments beside the named ones."""
        if not isinstance(data, Mapping) or "llama_kwargs" in data:
            return data
        named = {k: v for k, v in data.items() if k in cls.model_fields}
        passed = {k: v for k, v in data.items() if k not in cls.model_fields}
        return {**named, "llama_kwargs": passed} if passed else named

    @classmethod
    def parse(cls, name: str, options: Mapping[str, object]) -> LlamaCppOptions:
        """Validated options; a ConfigError names the model and the bad option."""
        return parse_options(cls, name, "llamacpp", options, passthrough="llama_kwargs")


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """Everything that makes two loads of a model different (the cache key)."""

    path: Path
    n_ctx: int | None
    n_threads: int
    n_batch: int | None
    chat_format: str | None
    verbose: bool
    extra: tuple[tuple[str, str | int | float | bool], ...] = ()


@dataclass(frozen=True, slots=True)
class LoadedModel:
    llama: Any  # llama_cpp.Llama
    n_ctx: int
    #: One thread per model: requests run one at a time, first come first served.
    worker: ThreadPoolExecutor


#: Models loaded in this process, shared by every backend instance.
MODELS: SharedModels[LoadedModel] = SharedModels()


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ConfigError(
            "The llamacpp backend needs llama-cpp-python: pip install 'crossroads[local]'."
        ) from exc
    return llama_cpp


def load_options(deployment: Deployment) -> LoadOptions:
    """The load options of a deployment (raises ConfigError on a bad option)."""
    options = LlamaCppOptions.parse(deployment.name, deployment.options)
    return LoadOptions(
        path=Path(deployment.model).expanduser().resolve(),
        n_ctx=options.n_ctx,
        n_threads=options.n_threads or os.cpu_count() or 1,
        n_batch=options.n_batch,
        chat_format=options.chat_format,
        verbose=options.verbose,
        extra=tuple(sorted(options.llama_kwargs.items())),
    )


def _trained_context(llama_cpp: Any, path: Path, verbose: bool) -> int:
    """The context length the model was trained with (reads the vocabulary only)."""
    # llama-cpp-python's log callback obeys this logger; Llama(verbose=...) sets it too.
    logging.getLogger("llama-cpp-python").setLevel(logging.DEBUG if verbose else logging.ERROR)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        raise ValueError("llama.cpp could not read its header and vocabulary")
    try:
        return int(llama_cpp.llama_model_n_ctx_train(model))
    finally:
        llama_cpp.llama_model_free(model)


def _load(options: LoadOptions) -> LoadedModel:
    """Load a GGUF file (blocking; runs in a worker thread)."""
    llama_cpp = _llama_cpp()
    path = options.path
    kwargs: dict[str, Any] = dict(options.extra)
    unknown = set(kwargs) - set(inspect.signature(llama_cpp.Llama).parameters)
    if unknown:  # Llama() would silently ignore them
        raise ConfigError(f"Unknown llamacpp option(s) for {path}: {', '.join(sorted(unknown))}")
    if options.n_batch is not None:
        kwargs["n_batch"] = options.n_batch
    try:
        n_ctx = options.n_ctx or min(
            _trained_context(llama_cpp, path, options.verbose), MAX_DEFAULT_CONTEXT
        )
        llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=options.n_threads,
            n_threads_batch=options.n_threads,
            chat_format=options.chat_format,
            verbose=options.verbose,
            **kwargs,
        )
    except TypeError as exc:  # a pass-through option of the wrong type
        raise ConfigError(f"Invalid llamacpp option for {path}: {exc}") from exc
    except (ValueError, RuntimeError, OSError) as exc:
        raise ConfigError(f"not a valid GGUF file: {path} ({exc})") from exc
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llamacpp-{path.stem}")
    return LoadedModel(llama=llama, n_ctx=int(llama.n_ctx()), worker=worker)


def _json_grammar(schema: dict[str, Any]) -> Any:
    try:
        return _llama_cpp().LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except CrossroadsError:
        raise
    except Exception as exc:
        raise BadRequestError(
            f"llama.cpp cannot turn this JSON schema into a grammar: {exc}", vendor=VENDOR
        ) from exc


def request_to_llamacpp(
    request: ChatRequest, default_max_tokens: int | None = None
) -> dict[str, Any]:
    """Keyword arguments of ``Llama.create_chat_completion`` (all but the messages).

    Without ``max_tokens`` the answer is capped at ``default_max_tokens`` (the entry's
    ``max_output_tokens``), else :data:`~._local.LOCAL_DEFAULT_MAX_TOKENS`, never "until
    the context is full".

    Stop sequences are not among them: they are applied by :class:`StopMatcher`, so the
    end of an answer is known to be a stop sequence and not the end-of-turn token.
    """
    unsupported = {
        "tools": bool(request.tools) and request.tool_choice != "none",
        "n > 1": request.n not in (None, 1),
        "logprobs": bool(request.logprobs),
        "max_tokens < 1": request.max_tokens is not None and request.max_tokens < 1,
    }
    for what, asked in unsupported.items():
        if asked:
            raise BadRequestError(f"the llamacpp backend does not support {what}", vendor=VENDOR)
    kwargs: dict[str, Any] = {}
    temperature = request.temperature
    if temperature is not None:
        # llama.cpp samples greedily at exactly 0 but samples *unscaled* below 0.
        kwargs["temperature"] = max(temperature, 0.0)
    if request.seed is not None:
        kwargs["seed"] = request.seed
    elif temperature is not None and temperature <= 0:
        kwargs["seed"] = 0  # greedy: the seed plays no part
    else:
        kwargs["seed"] = secrets.randbits(31)  # llama.cpp's own default is a fixed chain
    for key in ("top_p", "max_tokens", "presence_penalty", "frequency_penalty"):
        value = getattr(request, key)
        if value is not None:
            kwargs[key] = value
    kwargs.setdefault("max_tokens", default_max_tokens or LOCAL_DEFAULT_MAX_TOKENS)
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        schema = fmt.json_schema.schema_ if fmt.json_schema is not None else None
        if fmt.type == "json_schema" and schema is not None:
            kwargs["grammar"] = _json_grammar(schema)
        else:
            kwargs["response_format"] = {"type": "json_object"}
    return kwargs


@dataclass(frozen=True, slots=True)
class _Outcome:
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


class _Watch:
    """Stands in for the ``Llama`` object inside its own ``create_chat_completion``.

    The chat handler renders the template, tokenizes the prompt and calls
    ``create_completion(prompt=tokens, ...)``; intercepting that one call gives the exact
    prompt size, so an oversized prompt is refused before anything is evaluated.
    Everything else is forwarded to the real model.
    """

    def __init__(self, llama: Any, check: Callable[[int], None]) -> None:
        self._llama = llama
        self._check = check
        self.prompt_tokens = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, prompt: list[int], **kwargs: Any) -> Any:
        self.prompt_tokens = len(prompt)
        self._check(len(prompt))
        return self._llama.create_completion(prompt=prompt, **kwargs)


def _mapped(exc: Exception) -> APIError:
    message = str(exc)
    if isinstance(exc, ValueError | TypeError):
        if "context window" in message:
            found = _TOKENS_OVER_WINDOW.search(message)
            counts = [int(n) for n in found.groups()] if found else [None, None]
            return ContextError(
                message, vendor=VENDOR, prompt_tokens=counts[0], context_window=counts[1]
            )
        return BadRequestError(message, vendor=VENDOR)
    return APIError(f"llama.cpp failed: {message}", vendor=VENDOR)


def _generate(
    model: LoadedModel,
    request: ChatRequest,
    kwargs: dict[str, Any],
    emit: Callable[[str], None],
    cancel: threading.Event,
) -> _Outcome:
    """Generate one answer on the model's worker thread, passing text pieces to ``emit``."""
    llama = model.llama
    watch = _Watch(llama, lambda n: check_prompt_fits(n, model.n_ctx, request))
    stops = StopMatcher(request.stop_list())
    finish: FinishReason = "length"
    try:
        chunks = type(llama).create_chat_completion(
            watch, messages=chat_messages(request), stream=True, **kwargs
        )
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                text = stops.feed(choice["delta"].get("content") or "")
                if text:
                    emit(text)
                if stops.stopped or cancel.is_set():
                    finish = "stop"
                    break
                if choice["finish_reason"] is not None:
                    finish = "length" if choice["finish_reason"] == "length" else "stop"
        finally:
            chunks.close()
    except CrossroadsError:
        raise
    except Exception as exc:
        raise _mapped(exc) from exc
    tail = stops.flush()
    if tail:
        emit(tail)
    # The token that ended generation was sampled but never evaluated, so n_tokens is
    # prompt + sampled - 1; the end-of-turn token itself is not part of the answer.
    sampled = llama.n_tokens - watch.prompt_tokens + 1
    ended_by_model = finish == "stop" and not stops.stopped
    return _Outcome(finish, watch.prompt_tokens, max(sampled - ended_by_model, 0))


class LlamaCppBackend(Backend):
    """A GGUF file run in-process by llama.cpp."""

    name: ClassVar[str] = "llamacpp"
    requires_key: ClassVar[bool] = False
    api_key_env: ClassVar[str | None] = None

    def __init__(self, deployment: Deployment, *, http: httpx.AsyncClient | None = None) -> None:
        super().__init__(deployment, http=http)
        self.load_options = load_options(deployment)
        self._loaded: LoadedModel | None = None

    @property
    def capabilities(self) -> Capabilities:
        loaded = self._loaded
        window = loaded.n_ctx if loaded else self.load_options.n_ctx
        return Capabilities(
            streaming=True,
            tools=False,
            json_schema=True,
            vision=False,
            logprobs=False,
            context_window=window or self.deployment.context_window,
            max_concurrency=1,
        )

    async def load(self) -> LoadedModel:
        """The loaded model, loading it (off the event loop) on first use."""
        if self._loaded is None:
            options = self.load_options
            if not options.path.is_file():
                raise ConfigError(
                    f"Model {self.deployment.name!r}: GGUF file not found: {options.path}. "
                    "Set `model:` to the path of a .gguf file."
                )
            self._loaded = await MODELS.aget(options, lambda: _load(options))
        return self._loaded

    async def check(self) -> bool:
        await self.load()
        return True

    async def complete(self, request: ChatRequest) -> ChatResponse:
        model = await self.load()
        kwargs = request_to_llamacpp(request, self.deployment.max_output_tokens)
        pieces: list[str] = []
        cancel = threading.Event()
        job = asyncio.get_running_loop().run_in_executor(
            model.worker, _generate, model, request, kwargs, pieces.append, cancel
        )
        try:
            outcome = await job
        finally:
            cancel.set()  # a cancelled caller stops generation at the next token
        return ChatResponse(
            model=request.model,
            choices=[
                Choice(
                    message=AssistantMessage(content="".join(pieces)),
                    finish_reason=outcome.finish_reason,
                )
            ],
            usage=Usage.of(outcome.prompt_tokens, outcome.completion_tokens),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        model = await self.load()
        kwargs = request_to_llamacpp(request, self.deployment.max_output_tokens)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | _Outcome | BaseException] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: str | _Outcome | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is closed: nobody is listening
                cancel.set()

        def run() -> None:
            try:
                put(_generate(model, request, kwargs, put, cancel))
            except BaseException as exc:
                put(exc)

        job = loop.run_in_executor(model.worker, run)
        chunk_id, created = new_id(), now()

        def chunk(**fields: Any) -> ChatChunk:
            return ChatChunk(id=chunk_id, created=created, model=request.model, **fields)

        started = False
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if not started:
                    started = True
                    yield chunk(choices=[ChunkChoice(delta=Delta(role="assistant", content=""))])
                if isinstance(item, str):
                    yield chunk(choices=[ChunkChoice(delta=Delta(content=item))])
                    continue
                yield chunk(choices=[ChunkChoice(finish_reason=item.finish_reason)])
                yield chunk(usage=Usage.of(item.prompt_tokens, item.completion_tokens))
                return
        finally:
            cancel.set()  # stop generating at the next token if the consumer left early
            job.cancel()  # or never start, if the request was still waiting its turn
