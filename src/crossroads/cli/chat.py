"""``crossroads chat``: talk to any model, streamed to stdout."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..client import Client
    from ..types import ChatResponse

__all__ = ["chat"]


def _stream_once(
    client: Client,
    model: str,
    messages: list[dict[str, Any]],
    options: dict[str, Any],
    *,
    echo: bool = True,
) -> ChatResponse:
    """Stream one answer (to stdout when ``echo``) and return it assembled."""
    from ..streaming import StreamAccumulator

    acc = StreamAccumulator()
    wrote_any = False
    for chunk in client.stream_chat(model, messages, **options):
        acc.add(chunk)
        if not echo:
            continue
        for choice in chunk.choices:
            if choice.index == 0 and choice.delta.content:
                sys.stdout.write(choice.delta.content)
                sys.stdout.flush()
                wrote_any = True
    response = acc.response()
    if not echo:
        return response
    for call in response.tool_calls:
        sys.stdout.write(
            f"{'' if not wrote_any else chr(10)}[tool call] "
            f"{call.function.name}({call.function.arguments})"
        )
        wrote_any = True
    if response.finish_reason == "content_filter":
        sys.stdout.write("\n[blocked by the provider's content filter]")
    elif response.finish_reason == "length":
        sys.stdout.write("\n[stopped: max tokens reached]")
    sys.stdout.write("\n")
    sys.stdout.flush()
    return response


def _as_json(client: Client, model: str, response: ChatResponse) -> str:
    import json

    data = response.model_dump(mode="json", exclude_none=True)
    deployment = client.deployment(model)
    prices = deployment.prices
    u = response.usage
    data["cost_usd"] = (
        prices.cost(u.prompt_tokens, u.completion_tokens, u.cached_tokens) if prices else None
    )
    data["deployment"] = {"backend": deployment.backend, "model": deployment.model}
    return json.dumps(data, indent=2, ensure_ascii=False)


def chat(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name: provider/model, alias or config name.")],
    prompt: Annotated[
        str | None, typer.Argument(help="The prompt; omit for an interactive session.")
    ] = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Most tokens to generate.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full response with usage and timings.")
    ] = False,
) -> None:
    """Send a prompt to MODEL and stream the answer (interactive when no prompt is given)."""
    from ..client import Client
    from ._common import config_path, run_guarded

    options: dict[str, Any] = {}
    if temperature is not None:
        options["temperature"] = temperature
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    base: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []

    def one_shot(text: str) -> None:
        client = Client(config_path(ctx))
        try:
            client.deployment(model)  # fail on unknown models / missing keys before reading
            messages = [*base, {"role": "user", "content": text}]
            if as_json:
                response = _stream_once(client, model, messages, options, echo=False)
                typer.echo(_as_json(client, model, response))
            else:
                _stream_once(client, model, messages, options)
        finally:
            client.close()

    def interactive() -> None:
        client = Client(config_path(ctx))
        try:
            client.deployment(model)
            history = list(base)
            typer.echo(f"Chatting with {model}. Ctrl-D or 'exit' to quit.", err=True)
            while True:
                try:
                    text = input("> ")
                except EOFError:
                    typer.echo("", err=True)
                    return
                if text.strip() in ("exit", "quit"):
                    return
                if not text.strip():
                    continue
                history.append({"role": "user", "content": text})
                response = _stream_once(client, model, history, options)
                history.append(response.choices[0].message.model_dump(exclude_none=True))
        finally:
            client.close()

    if prompt is None and sys.stdin.isatty():
        run_guarded(interactive)
        return
    if prompt is None:
        prompt = sys.stdin.read()
        if not prompt.strip():
            typer.echo("error: no prompt given (as an argument or on stdin).", err=True)
            raise typer.Exit(2)
    text = prompt
    run_guarded(lambda: one_shot(text))
