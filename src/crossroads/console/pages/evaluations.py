"""The Evaluations pages: the runs list, a run (figures per model, items filtered and paged
on the server through htmx partials), two runs compared, and runs started, followed,
cancelled and resumed from the browser.

Who sees what: the master key sees every run. A virtual-key session sees the runs it
started from the console (in this process) and may start runs only on models its key
allows.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ...errors import CrossroadsError
from ..choices import model_choices
from ..eval_jobs import MAX_CONCURRENCY, EvalJob, EvalJobs, console_suite, suite_names
from ..evals_view import ItemFilter, compare_runs, item_page, run_overview, runs_list
from ..sessions import Session
from ..web import (
    ConsoleError,
    CsrfSession,
    CurrentSession,
    NavEntry,
    form_lists,
    gateway,
    render,
    state,
    url,
)

__all__ = ["NAV", "routes", "runs_started_by"]

NAV: NavEntry | None = NavEntry("Evaluations", "/evaluations")


def _jobs(request: Request) -> EvalJobs:
    jobs: EvalJobs | None = getattr(request.app.state, "eval_jobs", None)
    if jobs is None:
        jobs = request.app.state.eval_jobs = EvalJobs()
    return jobs


def runs_started_by(request: Request, session: Session) -> set[str]:
    """Run ids a virtual-key session started here (from the console, in this process)."""
    return {
        j.run_id
        for j in _jobs(request).jobs.values()
        if j.owner == session.key_id and j.run_id is not None
    }


def _check_run(request: Request, session: Session, run_id: str) -> None:
    if not session.admin and run_id not in runs_started_by(request, session):
        raise ConsoleError(404, f"No run {run_id!r} that your key started.")


def _job(request: Request, session: Session, job_id: str) -> EvalJob:
    job = _jobs(request).get(job_id)
    if job is None or (not session.admin and job.owner != session.key_id):
        raise ConsoleError(404, "No such run in progress.")
    return job


async def _allowed(request: Request, session: Session, models: list[str]) -> None:
    """403 unless the session's key may call every model (the master key may)."""
    if session.admin:
        return
    record = await gateway(request).keys.authenticate(session.secret)
    refused = [m for m in models if record is None or not record.allows(m)]
    if refused:
        raise ConsoleError(
            403, f"Your key may not call {', '.join(refused)}: pick models it allows."
        )


async def _home(request: Request, session: Session, error: str | None = None) -> Response:
    db = gateway(request).db
    runs = await asyncio.to_thread(runs_list, db)
    if not session.admin:
        mine = runs_started_by(request, session)
        runs = [r for r in runs if r["id"] in mine]
    choices = model_choices(state(request).config)
    if not session.admin:
        record = await gateway(request).keys.authenticate(session.secret)
        choices = [c.for_key(record is not None and record.allows(c.name)) for c in choices]
    jobs = [j for j in _jobs(request).jobs.values() if session.admin or j.owner == session.key_id]
    return render(
        request,
        "evaluations.html",
        {
            "runs": runs,
            "suites": suite_names(),
            "choices": [c for c in choices if c.answers],
            "jobs": jobs,
            "max_concurrency": MAX_CONCURRENCY,
            "error": error,
        },
        status=400 if error else 200,
    )


def _items_context(run_id: str, page: Any) -> dict[str, Any]:
    return {
        "p": page,
        "items_url": url(f"/evaluations/runs/{run_id}/items"),
        "prev_query": urlencode(page.filter.query(page.page - 1)),
        "next_query": urlencode(page.filter.query(page.page + 1)),
    }


def _see_job(request: Request, job: EvalJob) -> Response:
    template = "eval_job_status.html" if request.headers.get("hx-request") else "eval_job.html"
    return render(request, template, {"job": job})


def routes(router: APIRouter) -> None:
    @router.get("/evaluations")
    async def home(request: Request, session: CurrentSession) -> Response:
        return await _home(request, session)

    @router.post("/evaluations/start")
    async def start(request: Request, session: CsrfSession) -> Response:
        fields = await form_lists(request)
        models = [m for m in fields.get("models", []) if m.strip()]
        suite_name = (fields.get("suite") or [""])[-1]
        try:
            concurrency = int((fields.get("concurrency") or ["4"])[-1])
        except ValueError:
            return await _home(request, session, "Concurrency must be a whole number.")
        if not models:
            return await _home(request, session, "Pick at least one model.")
        await _allowed(request, session, models)
        try:
            suite = await asyncio.to_thread(console_suite, suite_name)
            job = _jobs(request).start(
                state(request).config,
                gateway(request).db,
                suite,
                tuple(dict.fromkeys(models)),
                concurrency,
                None if session.admin else session.key_id,
            )
        except CrossroadsError as exc:
            return await _home(request, session, exc.message)
        return RedirectResponse(url(f"/evaluations/jobs/{job.id}"), status_code=303)

    @router.get("/evaluations/jobs/{job_id}")
    async def job_page(request: Request, session: CurrentSession, job_id: str) -> Response:
        return _see_job(request, _job(request, session, job_id))

    @router.post("/evaluations/jobs/{job_id}/cancel")
    async def cancel(request: Request, session: CsrfSession, job_id: str) -> Response:
        job = _job(request, session, job_id)
        await _jobs(request).cancel(job)
        return RedirectResponse(url(f"/evaluations/jobs/{job.id}"), status_code=303)

    @router.post("/evaluations/runs/{run_id}/resume")
    async def resume(request: Request, session: CsrfSession, run_id: str) -> Response:
        _check_run(request, session, run_id)
        db = gateway(request).db
        try:
            stored = await asyncio.to_thread(run_overview, db, run_id)
            await _allowed(request, session, list(stored["run"]["models"]))
            job = _jobs(request).resume(
                state(request).config,
                db,
                run_id,
                4,
                None if session.admin else session.key_id,
            )
        except CrossroadsError as exc:
            raise ConsoleError(400, exc.message) from None
        return RedirectResponse(url(f"/evaluations/jobs/{job.id}"), status_code=303)

    @router.get("/evaluations/runs/{run_id}")
    async def run_page(request: Request, session: CurrentSession, run_id: str) -> Response:
        _check_run(request, session, run_id)
        db = gateway(request).db
        filt = ItemFilter.from_query(dict(request.query_params))
        try:
            overview = await asyncio.to_thread(run_overview, db, run_id)
            page = await asyncio.to_thread(item_page, db, run_id, filt)
        except CrossroadsError as exc:
            raise ConsoleError(404, exc.message) from None
        running = _jobs(request).running_for(run_id) is not None
        context = {"o": overview, "running": running, **_items_context(run_id, page)}
        return render(request, "eval_run.html", context)

    @router.get("/evaluations/runs/{run_id}/items")
    async def items(request: Request, session: CurrentSession, run_id: str) -> Response:
        _check_run(request, session, run_id)
        filt = ItemFilter.from_query(dict(request.query_params))
        try:
            page = await asyncio.to_thread(item_page, gateway(request).db, run_id, filt)
        except CrossroadsError as exc:
            raise ConsoleError(404, exc.message) from None
        return render(request, "eval_items.html", _items_context(run_id, page))

    @router.get("/evaluations/compare")
    async def compare(request: Request, session: CurrentSession, a: str, b: str) -> Response:
        _check_run(request, session, a)
        _check_run(request, session, b)
        try:
            data = await asyncio.to_thread(compare_runs, gateway(request).db, a, b)
        except CrossroadsError as exc:
            raise ConsoleError(400, exc.message) from None
        return render(request, "eval_compare.html", {"c": data})
