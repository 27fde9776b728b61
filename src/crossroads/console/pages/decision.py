"""The Decision page: the compare report made interactive.

Sliders for the ten weights, the hard constraints and the monthly volume; the ranking, the
flip points and the cost-vs-volume chart are recomputed in the browser by
``static/decide.js`` (a port of :mod:`crossroads.decide.advisor`) from the numbers
``report.json`` holds, with no round trip. The exports (profile YAML, report HTML /
Markdown / JSON) are rendered on the server by the code ``crossroads compare --profile``
writes its files with (:mod:`crossroads.console.decision_model`).

Inputs: the models ``crossroads compare`` compares by default (the embedded model, the
configured models, the reference set) or ``?models=a,b,c`` (catalog ids, as ``compare
--models``), with catalog facts; ``?run=ID`` adds the
measurements of a finished evaluation run (the models it measured join the list).
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from ..._pages import strict_dumps
from ...decide.advisor import Profile
from ...decide.compare import default_profile
from ...errors import CrossroadsError
from ...evals.results import list_runs, load_evidence
from ..decision_model import (
    DecisionInputs,
    browser_model,
    decide,
    decision_inputs,
    export_report,
    profile_yaml,
)
from ..sessions import Session
from ..web import ConsoleError, CurrentSession, NavEntry, gateway, render, state
from .evaluations import runs_started_by

__all__ = ["NAV", "routes"]

NAV: NavEntry | None = NavEntry("Decision", "/decision")

_EXPORTS = {
    "yaml": ("application/yaml; charset=utf-8", "profile.yaml"),
    "html": ("text/html; charset=utf-8", "report.html"),
    "md": ("text/markdown; charset=utf-8", "report.md"),
    "json": ("application/json; charset=utf-8", "report.json"),
}


def _profile(text: str | None) -> Profile:
    """The profile the page sends (JSON, the ``--profile`` fields), or the default."""
    if not text:
        return default_profile()
    try:
        return Profile.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        where = ".".join(str(p) for p in first["loc"]) if first else "?"
        why = first["msg"] if first else str(exc)
        raise ConsoleError(
            400, f"The profile is not valid ({where}: {why}): reset the sliders and try again."
        ) from None


async def _inputs(request: Request, run_id: str | None, models: str) -> DecisionInputs:
    names = list(dict.fromkeys(m.strip() for m in models.split(",") if m.strip())) or None
    run = None
    if run_id:
        db = gateway(request).db
        try:
            run = await asyncio.to_thread(load_evidence, db, run_id)
        except CrossroadsError as exc:
            raise ConsoleError(404, f"No evaluation run {run_id!r} to decide from: {exc}") from None
    try:
        return await decision_inputs(state(request).config, names, run=run)
    except CrossroadsError as exc:
        raise ConsoleError(400, f"models: {exc}") from None


def _runs(request: Request, session: Session) -> list[dict[str, Any]]:
    """Finished runs to decide from (a virtual key: those it started, as on Evaluations)."""
    runs = [r for r in list_runs(gateway(request).db, 50) if r.get("status") == "complete"]
    if not session.admin:
        mine = runs_started_by(request, session)
        runs = [r for r in runs if r["id"] in mine]
    return runs


def _check_run(request: Request, session: Session, run: str) -> None:
    if run and not session.admin and run not in runs_started_by(request, session):
        raise ConsoleError(404, f"No evaluation run {run!r} that your key started.")


def routes(router: APIRouter) -> None:
    @router.get("/decision")
    async def page(
        request: Request,
        session: CurrentSession,
        run: str = "",
        profile: str = "",
        models: str = "",
    ) -> Response:
        chosen = _profile(profile)
        _check_run(request, session, run)
        inputs = await _inputs(request, run or None, models)
        report, _ = await asyncio.to_thread(decide, inputs, chosen)
        model = browser_model(inputs, report, chosen.constraints.languages)
        runs = await asyncio.to_thread(_runs, request, session)
        return render(
            request,
            "decision.html",
            {
                # (an attribute, autoescaped: the page has no inline script, not even data)
                "data_json": strict_dumps(
                    {
                        "model": model,
                        "profile": chosen.model_dump(),
                        "run": run,
                        "models": models,
                    }
                ),
                "dimensions": model["dimensions"],
                "profile": chosen,
                "languages": model["languages"],
                "inputs": inputs,
                "runs": runs,
                "run": run,
                "models": models,
                "volume_log": f"{math.log10(chosen.constraints.volume_tokens_per_month):.4f}",
            },
        )

    @router.get("/decision/export.{fmt}")
    async def export(
        request: Request,
        session: CurrentSession,
        fmt: str,
        run: str = "",
        profile: str = "",
        models: str = "",
    ) -> Response:
        if fmt not in _EXPORTS:
            raise ConsoleError(404, f"No export as {fmt!r}: yaml, html, md or json.")
        chosen = _profile(profile)
        _check_run(request, session, run)
        media, filename = _EXPORTS[fmt]
        if fmt == "yaml":
            body = profile_yaml(chosen)
        else:
            inputs = await _inputs(request, run or None, models)
            report, _ = await asyncio.to_thread(decide, inputs, chosen)
            body = export_report(report, fmt)  # type: ignore[arg-type]
        return Response(
            body,
            media_type=media,
            headers={
                "content-disposition": f'attachment; filename="{filename}"',
                "cache-control": "no-store",
            },
        )
