"""Presets of the ``openai`` backend for the servers people run open models behind.

Each preset is the OpenAI backend with the server's default address, its optional key
variable and its quirks; ``vllm/<model>``, ``ollama/<model>`` etc. then work with no
config file, and ``backend: vllm`` works in ``crossroads.yaml``.

| preset | default base URL | base URL env | key env (optional) |
|---|---|---|---|
| ``vllm`` | http://localhost:8000/v1 | ``VLLM_BASE_URL`` | ``VLLM_API_KEY`` |
| ``tgi`` | http://localhost:8080/v1 | ``TGI_BASE_URL`` | ``TGI_API_KEY`` |
| ``ollama`` | http://localhost:11434/v1 | ``OLLAMA_HOST`` | — |
| ``llamacpp-server`` | http://localhost:8080/v1 | ``LLAMACPP_BASE_URL`` | ``LLAMA_API_KEY`` |
| ``lmstudio`` | http://localhost:1234/v1 | ``LMSTUDIO_BASE_URL`` | — |
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..types import ChatRequest
from .base import Capabilities
from .openai import OpenAIBackend, request_to_openai

__all__ = [
    "LMStudioBackend",
    "LlamaCppServerBackend",
    "OllamaBackend",
    "TGIBackend",
    "VLLMBackend",
]


class _ServerBackend(OpenAIBackend):
    requires_key: ClassVar[bool] = False
    features: ClassVar[Capabilities] = Capabilities(tools=True, json_schema=True, logprobs=True)
    #: Whether the server honours ``stream_options.include_usage``.
    stream_usage: ClassVar[bool] = True

    def _body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        body = request_to_openai(request, self.deployment.model, stream=stream)
        if stream and not self.stream_usage:
            body.pop("stream_options", None)
        return body


class VLLMBackend(_ServerBackend):
    """vLLM's OpenAI-compatible server (``vllm serve MODEL``). ``model`` is the served
    name (``--served-model-name``, default the hub id); JSON schema runs through its
    guided decoding; ``--api-key`` on the server pairs with ``VLLM_API_KEY`` here."""

    name: ClassVar[str] = "vllm"
    default_base_url: ClassVar[str | None] = "http://localhost:8000/v1"
    api_key_env: ClassVar[str | None] = "VLLM_API_KEY"
    base_url_env: ClassVar[str | None] = "VLLM_BASE_URL"


class TGIBackend(_ServerBackend):
    """Hugging Face Text Generation Inference (Messages API). TGI serves one model and
    ignores the model name (send ``tgi``); ``json_schema`` and ``json_object`` are
    translated to TGI's grammar form ``{"type": "json", "value": schema}``."""

    name: ClassVar[str] = "tgi"
    default_base_url: ClassVar[str | None] = "http://localhost:8080/v1"
    api_key_env: ClassVar[str | None] = "TGI_API_KEY"
    base_url_env: ClassVar[str | None] = "TGI_BASE_URL"

    def _body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        body = super()._body(request, stream)
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
            body["response_format"] = {"type": "json", "value": schema}
        elif fmt.get("type") == "json_object":
            body["response_format"] = {"type": "json", "value": {"type": "object"}}
        return body


class OllamaBackend(_ServerBackend):
    """Ollama's OpenAI-compatible endpoint. ``model`` is an Ollama tag (``llama3.1:8b``);
    ``OLLAMA_HOST`` may be ``host:port`` as Ollama itself accepts; no key is needed."""

    name: ClassVar[str] = "ollama"
    default_base_url: ClassVar[str | None] = "http://localhost:11434/v1"
    api_key_env: ClassVar[str | None] = None
    base_url_env: ClassVar[str | None] = "OLLAMA_HOST"

    def base_url(self) -> str:
        url = super().base_url()
        if "://" not in url:
            url = "http://" + url
        return url if url.endswith("/v1") else url + "/v1"


class LlamaCppServerBackend(_ServerBackend):
    """llama.cpp's ``llama-server``: serves one GGUF and ignores the model name; JSON
    schema is grammar-constrained by the server."""

    name: ClassVar[str] = "llamacpp-server"
    default_base_url: ClassVar[str | None] = "http://localhost:8080/v1"
    api_key_env: ClassVar[str | None] = "LLAMA_API_KEY"
    base_url_env: ClassVar[str | None] = "LLAMACPP_BASE_URL"


class LMStudioBackend(_ServerBackend):
    """LM Studio's local server."""

    name: ClassVar[str] = "lmstudio"
    default_base_url: ClassVar[str | None] = "http://localhost:1234/v1"
    api_key_env: ClassVar[str | None] = None
    base_url_env: ClassVar[str | None] = "LMSTUDIO_BASE_URL"
