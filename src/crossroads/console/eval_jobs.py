"""Evaluation runs started from the console: the runner of ``crossroads eval`` as a task
of the server's event loop, with live progress, cancel and resume.

* The suite is a built-in suite or one saved from the playground
  (``$CROSSROADS_HOME/suites/NAME.yaml``, :mod:`.suites`): never a path the browser names.
* Calls go through :class:`~crossroads.client.AsyncClient` over the gateway's
  configuration: the same routes, fallbacks and retries as every other caller. A
  virtual-key session may only name models its key allows (checked before anything runs).
* Cancel stops the task: the runner writes what finished and marks the run
  ``interrupted`` (its ``finally``); resume runs the rest with ``Runner.run(resume=ID)``
  (finished items are not redone), as ``crossroads eval --resume`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from typing import Literal

from ..client import AsyncClient
from ..config import Config
from ..errors import ConfigError, CrossroadsError
from ..evals.runner import ProgressEvent, Runner, RunOptions
from ..evals.store import RunStore
from ..evals.suite import Suite, builtin_suites, load_suite, parse_suite
from ..store import Database
from .suites import SUITE_NAME, suite_path

__all__ = ["MAX_CONCURRENCY", "MAX_RUNNING", "EvalJob", "EvalJobs", "console_suite", "suite_names"]

#: The most concurrent calls a run started from the console may make.
MAX_CONCURRENCY = 32
#: The most runs one key (or the master key) may have going at once.
MAX_RUNNING = 4

JobStatus = Literal["running", "complete", "interrupted", "failed"]


def suite_names() -> list[str]:
    """Built-in suites, then the suites saved under ``$CROSSROADS_HOME/suites``."""
    names = list(builtin_suites())
    folder = suite_path("playground").parent
    if folder.is_dir():
        names += sorted(
            p.stem for p in folder.glob("*.yaml") if SUITE_NAME.fullmatch(p.stem) and p.stem
        )
    return list(dict.fromkeys(names))


def console_suite(name: str) -> Suite:
    """The suite ``name``: built-in, or saved under ``$CROSSROADS_HOME/suites``."""
    if name in builtin_suites():
        return load_suite(name)
    path = suite_path(name)  # a clear error for a name that is not a plain file name
    if not path.is_file():
        known = ", ".join(suite_names())
        raise ConfigError(f"No suite {name!r}: pick one of {known}.")
    return parse_suite(path.read_text(encoding="utf-8"), str(path), path.parent)


class _Runner(Runner):
    """The runner, telling its job the run id as soon as the run exists."""

    def __init__(self, job: EvalJob, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._job = job

    def _create_run(self) -> str:
        run_id = super()._create_run()
        self._job.run_id = run_id
        return run_id


@dataclass
class EvalJob:
    """One run in progress (or just finished) in this process."""

    id: str
    suite: str
    models: tuple[str, ...]
    concurrency: int
    #: The virtual key that started it (None: the master key).
    owner: str | None
    run_id: str | None = None
    status: JobStatus = "running"
    error: str | None = None
    done: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    #: The client its calls go through, until the run ends and closes it.
    client: AsyncClient | None = field(default=None, repr=False)

    @property
    def n_done(self) -> int:
        return sum(self.done.values())

    @property
    def n_total(self) -> int:
        return sum(self.total.values())

    def on_progress(self, event: ProgressEvent) -> None:
        self.done[event.model] = event.done
        self.total[event.model] = event.total


class EvalJobs:
    """The console's runs in progress, by job id."""

    def __init__(self) -> None:
        self.jobs: dict[str, EvalJob] = {}

    def get(self, job_id: str) -> EvalJob | None:
        return self.jobs.get(job_id)

    def running_for(self, run_id: str) -> EvalJob | None:
        return next(
            (j for j in self.jobs.values() if j.run_id == run_id and j.status == "running"), None
        )

    def start(
        self,
        config: Config,
        db: Database,
        suite: Suite,
        models: tuple[str, ...],
        concurrency: int,
        owner: str | None,
        *,
        resume: str | None = None,
    ) -> EvalJob:
        """Start (or resume) a run as a task of the running loop; errors that can be
        known up front (unknown model, missing key) are raised here."""
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ConfigError(f"Concurrency must be between 1 and {MAX_CONCURRENCY}.")
        if resume is not None and self.running_for(resume) is not None:
            raise ConfigError(f"Run {resume} is running already.")
        going = sum(1 for j in self.jobs.values() if j.owner == owner and j.status == "running")
        if going >= MAX_RUNNING:
            raise ConfigError(
                f"{going} runs are going already: wait for one to finish or cancel one."
            )
        client = AsyncClient(config)
        try:
            for model in models:
                client.deployment(model)  # unknown models / missing keys: said now
        except CrossroadsError:
            asyncio.get_running_loop().create_task(client.aclose())
            raise
        job = EvalJob(secrets.token_hex(6), suite.name, models, concurrency, owner, run_id=resume)
        options = RunOptions(
            models=models, concurrency=concurrency, per_model_concurrency=concurrency
        )
        job.client = client
        runner = _Runner(job, client, db, suite, options, progress=job.on_progress)
        for model in models:
            job.total[model] = len(suite.items) * options.repeat
            job.done[model] = 0
        job.task = asyncio.get_running_loop().create_task(self._run(job, runner, client, resume))
        self.jobs[job.id] = job
        return job

    async def _run(
        self, job: EvalJob, runner: Runner, client: AsyncClient, resume: str | None
    ) -> None:
        try:
            job.run_id = await runner.run(resume=resume)
            job.status = "complete"
        except asyncio.CancelledError:
            job.status = "interrupted"
        except CrossroadsError as exc:
            job.status, job.error = "failed", exc.message
        except Exception as exc:  # a bug must not leave the job "running" forever
            job.status, job.error = "failed", f"{exc.__class__.__name__}: {exc}"
        finally:
            job.client = None
            with contextlib.suppress(Exception):
                await client.aclose()

    async def cancel(self, job: EvalJob) -> None:
        """Stop the run; what finished is kept and the run can be resumed."""
        if job.task is not None and not job.task.done():
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job.task
            if job.status == "running":  # cancelled before it started
                job.status = "interrupted"
            if job.client is not None:
                client, job.client = job.client, None
                with contextlib.suppress(Exception):
                    await client.aclose()

    def resume(
        self,
        config: Config,
        db: Database,
        run_id: str,
        concurrency: int,
        owner: str | None,
    ) -> EvalJob:
        """Finish ``run_id``: its suite (same version) and models, the rest of its items."""
        stored = RunStore(db).read_run(run_id)
        suite = console_suite(str(stored.run["suite"]))
        models = tuple(stored.run["models"])
        return self.start(config, db, suite, models, concurrency, owner, resume=run_id)
