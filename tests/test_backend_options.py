"""The ``options:`` of local-model entries: pydantic models, errors naming model and option."""

from __future__ import annotations

import pytest

from crossroads.backends.base import Deployment
from crossroads.backends.hf import TransformersOptions
from crossroads.backends.llamacpp import LlamaCppOptions, load_options
from crossroads.errors import ConfigError


def llamacpp(**options: object) -> Deployment:
    return Deployment(name="smol", backend="llamacpp", model="/m/smol.gguf", options=options)


def test_transformers_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        TransformersOptions.parse("tiny", {"max_batch": 4})
    message = str(info.value)
    assert message.startswith("Model 'tiny': unknown transformers option max_batch (valid: ")
    assert "max_batch_size" in message and "base_model" in message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_batch_size": "8"}, r"option max_batch_size: .*integer \(got '8'\)"),
        ({"n_threads": True}, r"option n_threads: .*integer \(got True\)"),
        ({"n_ctx": 0}, r"option n_ctx: .*greater than or equal to 1 \(got 0\)"),
        ({"dtype": "float8"}, r"option dtype: .*'bfloat16' \(got 'float8'\)"),
        ({"device": "tpu"}, r"option device: must be cpu, cuda, cuda:N, mps or auto"),
        ({"trust_remote_code": "yes"}, r"option trust_remote_code: .*boolean"),
    ],
)
def test_transformers_bad_values_name_model_and_option(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^Model 'tiny': {message}"):
        TransformersOptions.parse("tiny", options)


def test_transformers_options_are_frozen_values() -> None:
    options = TransformersOptions.parse("tiny", {"device": "cuda:1", "batch_wait_ms": 2})
    assert options.batch_wait_ms == 2.0 and options.max_batch_size == 8
    assert hash(options) == hash(TransformersOptions(device="cuda:1", batch_wait_ms=2.0))
    resolved = options.model_copy(update={"dtype": "bfloat16"})
    assert (resolved.dtype, resolved.device, options.dtype) == ("bfloat16", "cuda:1", "auto")


def test_llamacpp_named_options_and_pass_through() -> None:
    loaded = load_options(llamacpp(n_ctx=512, n_threads=2, n_gpu_layers=99, flash_attn=True))
    assert (loaded.n_ctx, loaded.n_threads, loaded.n_batch) == (512, 2, None)
    assert loaded.extra == (("flash_attn", True), ("n_gpu_layers", 99))  # sorted: a cache key
    assert hash(loaded) == hash(
        load_options(llamacpp(flash_attn=True, n_gpu_layers=99, n_ctx=512, n_threads=2))
    )
    assert LlamaCppOptions(n_gpu_layers=1).llama_kwargs == {"n_gpu_layers": 1}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_ctx": "big"}, r"option n_ctx: .*integer \(got 'big'\)"),
        ({"n_batch": -1}, r"option n_batch: .*greater than or equal to 1"),
        ({"verbose": 1}, r"option verbose: .*boolean \(got 1\)"),
        ({"chat_format": 3}, r"option chat_format: .*string \(got 3\)"),
        ({"tensor_split": [1, 2]}, r"option tensor_split: must be a string, number or boolean"),
    ],
)
def test_llamacpp_bad_values_name_model_and_option(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^Model 'smol': {message}"):
        load_options(llamacpp(**options))
