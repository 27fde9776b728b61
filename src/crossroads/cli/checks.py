"""What ``crossroads config check`` reports: the file, the keys, the reachable models."""

from __future__ import annotations

import asyncio
import os

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..backends.base import Deployment, available_backends, load_backend
from ..config import Config
from ..errors import APIError, ConfigError, CrossroadsError
from ..routing import resolve

__all__ = ["check_backends", "check_models", "describe_sources"]

PROBE_TIMEOUT_S = 6.0


def check_backends(config: Config) -> None:
    """Every configured model names an installed backend and only options it reads;
    otherwise a ConfigError listing each problem (the config is invalid, not just down)."""
    from ..routing.resolve import entry_backend

    problems = []
    for entry in config.models:
        try:
            entry_backend(entry)
        except ConfigError as exc:
            problems.append(exc.message)
    if problems:
        where = config.path or "the configuration"
        raise ConfigError(f"Invalid configuration {where}:\n  " + "\n  ".join(problems))


def describe_sources(config: Config, console: Console) -> None:
    """Which file was read and which vendor keys the environment provides."""
    if config.path is None:
        console.print(
            "No crossroads.yaml found (looked at --config, $CROSSROADS_CONFIG, "
            "./crossroads.yaml, $CROSSROADS_HOME/crossroads.yaml)."
        )
    else:
        console.print(f"Config: {config.path} — valid, {len(config.models)} model(s).")
    for name in sorted(available_backends()):
        try:
            cls = load_backend(name)
        except (ConfigError, ImportError) as exc:
            console.print(f"  backend {name}: [red]cannot load[/] ({escape(str(exc))})")
            continue
        if cls.api_key_env:
            state = "set" if os.environ.get(cls.api_key_env) else "not set"
            console.print(f"  {cls.api_key_env}: {state} (for {name}/<model>)")


async def _probe(deployment: Deployment) -> str:
    backend = load_backend(deployment.backend)(deployment)
    try:
        probed = await asyncio.wait_for(backend.check(), PROBE_TIMEOUT_S)
    except (APIError, TimeoutError) as exc:
        detail = getattr(exc, "message", None) or str(exc) or "timed out"
        return f"[red]unreachable[/]: {escape(detail)}"
    finally:
        await backend.aclose()
    return "[green]reachable[/]" if probed else "ready (nothing to probe)"


def _targets(config: Config) -> list[tuple[str, Deployment | str]]:
    """Each configured model (and each provider with a key in the env) to check."""
    rows: list[tuple[str, Deployment | str]] = []
    for entry in config.models:
        try:
            rows.append((entry.name, resolve(entry.name, config)))
        except CrossroadsError as exc:
            rows.append((entry.name, exc.message))
    for name in sorted(available_backends()):
        cls = load_backend(name)
        if cls.api_key_env and os.environ.get(cls.api_key_env):
            rows.append(
                (
                    f"{name}/*",
                    Deployment(
                        name=f"{name}/*",
                        backend=name,
                        model="*",
                        base_url=os.environ.get(cls.base_url_env or "") or None,
                        api_key=os.environ[cls.api_key_env],
                    ),
                )
            )
    return rows


def check_models(config: Config, console: Console, *, probe: bool = True) -> int:
    """Print a table of models and their state; returns the number of problems."""
    rows = _targets(config)
    if not rows:
        console.print(
            "No models configured and no vendor key in the environment: no vendor model can "
            "be called (only the embedded local/smollm2). Set OPENAI_API_KEY, "
            "ANTHROPIC_API_KEY or GEMINI_API_KEY, or add models to crossroads.yaml."
        )
        return 1  # a problem: --strict fails

    async def run_probes() -> list[str]:
        jobs = [
            _probe(target) if isinstance(target, Deployment) and probe else _static(target)
            for _, target in rows
        ]
        return list(await asyncio.gather(*jobs))

    async def _static(target: Deployment | str) -> str:
        if isinstance(target, str):
            return f"[yellow]not callable[/]: {escape(target)}"
        return "configured (not probed)"

    states = asyncio.run(run_probes())
    table = Table(title="Models")
    table.add_column("model")
    table.add_column("backend")
    table.add_column("vendor model")
    table.add_column("state", overflow="fold")
    problems = 0
    for (name, target), state in zip(rows, states, strict=True):
        if isinstance(target, Deployment):
            table.add_row(name, target.backend, target.model, state)
        else:
            table.add_row(name, "", "", state)
        problems += "[red]" in state or "[yellow]" in state
    console.print(table)
    return problems
