"""The run store: what a run, its results and the response cache look like in the
database, read back as written."""

from __future__ import annotations

import ast
import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

import crossroads.evals
from crossroads.backends.base import Deployment
from crossroads.client import AsyncClient
from crossroads.config import parse_config
from crossroads.errors import ConfigError
from crossroads.evals.runner import Runner, RunOptions
from crossroads.evals.scoring import Answer
from crossroads.evals.store import ResultRow, RunStore, response_key
from crossroads.evals.suite import Suite, parse_suite
from crossroads.store import Database, open_database

from .fakes.instant import InstantBackend


def _suite(n: int = 3, prompt: str = "Question {{ n }}") -> Suite:
    items = "".join(f"  - {{id: q{i}, n: {i}, expected: '42', tags: [t{i}]}}\n" for i in range(n))
    text = (
        "name: stored\ndefaults: {temperature: 0}\n"
        f"prompt: '{prompt}'\nscorers: [{{type: contains}}]\nitems:\n{items}"
    )
    return parse_suite(text, "stored.yaml")


def _row(run_id: str, item_id: str, model: str = "m", repeat: int = 0) -> ResultRow:
    return {
        "run_id": run_id,
        "item_id": item_id,
        "model": model,
        "repeat": repeat,
        "output": "The answer is 42.",
        "score": 1.0,
        "passed": True,
        "format_error": False,
        "scores": {"contains": {"value": 1.0, "passed": True, "detail": None}},
        "latency_s": 0.5,
        "ttft_s": 0.1,
        "tokens_per_s": 40.0,
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "cost_usd": 0.001,
        "cached": False,
        "error": None,
        "finish_reason": "stop",
        "created_at": datetime.now(UTC),
    }


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(url=f"sqlite:///{tmp_path / 'db.sqlite'}", config=None)


def test_a_run_reads_back_as_written(db: Database) -> None:
    store = RunStore(db)
    suite = _suite()
    run_id = store.create_run(suite, ["m", "n"], 2, {"temperature": 0}, {"suite": "x"})
    store.write_results([_row(run_id, "q1"), _row(run_id, "q0", model="n", repeat=1)])

    stored = store.read_run(run_id)
    assert stored.run["status"] == "running" and stored.run["finished_at"] is None
    assert (list(stored.run["models"]), stored.run["repeat"]) == (["m", "n"], 2)
    assert stored.run["options"] == {"temperature": 0}
    assert stored.run["manifest"] == {"suite": "x"}
    assert stored.run["suite_hash"] == suite.hash
    assert [(i["item_id"], i["prompt"], list(i["tags"])) for i in stored.items] == [
        ("q0", "Question 0", ["t0"]),
        ("q1", "Question 1", ["t1"]),
        ("q2", "Question 2", ["t2"]),
    ]
    assert [(r["item_id"], r["model"], r["repeat"]) for r in stored.results] == [
        ("q1", "m", 0),
        ("q0", "n", 1),
    ]
    assert stored.results[0]["scores"] == _row(run_id, "q1")["scores"]

    store.finish_run(run_id, "interrupted")
    listed = store.list_runs()
    assert [(r["id"], r["status"], r["n"]) for r in listed] == [(run_id, "interrupted", 2)]
    assert store.read_run(run_id).run["finished_at"] is not None

    resumed = store.resume_run(run_id, suite)
    assert resumed.models == ("m", "n") and resumed.repeat == 2
    assert resumed.done == {("q1", "m", 0), ("q0", "n", 1)}
    assert store.read_run(run_id).run["status"] == "running"
    db.dispose()


def test_unknown_runs_and_changed_suites_are_clear_errors(db: Database) -> None:
    store = RunStore(db)
    run_id = store.create_run(_suite(), ["m"], 1, {}, {})
    with pytest.raises(ConfigError, match=r"No run 'nope' to resume \(`crossroads runs`"):
        store.resume_run("nope", _suite())
    with pytest.raises(ConfigError, match=rf"Run {run_id} was made with a different version"):
        store.resume_run(run_id, _suite(prompt="Changed {{ n }}"))
    assert store.read_run(run_id).run["status"] == "running", "a refused resume changes nothing"
    with pytest.raises(ConfigError, match=rf"No run 'nope'. Recent runs: {run_id} "):
        store.read_run("nope")
    db.dispose()


def test_the_cache_keeps_the_first_answer_and_serves_it_free(db: Database) -> None:
    store = RunStore(db)
    assert store.cached_answer("k") is None
    first = Answer(
        text="Paris", model="m", latency_s=1.0, prompt_tokens=7, completion_tokens=2,
        cost_usd=0.5, finish_reason="stop",
    )  # fmt: skip
    store.cache_answer("k", first)
    store.cache_answer("k", Answer(text="Lyon", model="m"))
    assert store.cached_answer("k") == Answer(
        text="Paris", model="m", prompt_tokens=7, completion_tokens=2, cost_usd=0.0,
        finish_reason="stop",
    )  # fmt: skip
    db.dispose()


def test_cache_keys_are_those_earlier_versions_wrote() -> None:
    """A changed key would silently miss every answer already cached."""
    deployment = Deployment(name="strong", backend="openai", model="gpt-4o", base_url="http://x/v1")
    messages = [{"role": "user", "content": "Hi"}]
    key = response_key(deployment, messages, {"temperature": 0, "max_tokens": 20})
    assert key == "339f8c6708e9c7c823a6de371c90b7a49262e1fea061443ae059f45a8094847e"
    assert response_key(deployment, messages, {"temperature": 0, "max_tokens": 21}) != key


def test_a_resumed_run_keeps_its_own_models_and_repeats(tmp_path: Path) -> None:
    config = parse_config(
        f"database_url: sqlite:///{tmp_path / 'db.sqlite'}\nmodels:\n"
        "  - name: fast\n    backend: vllm\n    model: x\n"
        "  - name: other\n    backend: vllm\n    model: y\n"
    )
    suite = _suite()
    with open_database(config=config) as db:
        run_id = RunStore(db).create_run(suite, ["fast"], 2, {"temperature": 0}, {})

        async def main() -> str:
            async with AsyncClient(config) as client:
                for name in ("fast", "other"):
                    client.router.first(name).backend = InstantBackend(client.deployment(name))
                options = RunOptions(models=("fast", "other"), repeat=1, use_cache=False)
                return await Runner(client, db, suite, options).run(resume=run_id)

        assert asyncio.run(main()) == run_id
        stored = RunStore(db).read_run(run_id)
    assert stored.run["status"] == "complete"
    assert sorted((r["item_id"], r["model"], r["repeat"]) for r in stored.results) == [
        (f"q{i}", "fast", repeat) for i in range(3) for repeat in range(2)
    ]


def _module_imports(path: Path, package: str) -> set[str]:
    """The ``crossroads.evals`` modules that ``path`` imports when it is imported
    (``if TYPE_CHECKING:`` blocks included; imports inside functions are not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    nodes: list[ast.stmt] = list(tree.body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If | ast.Try):
            nodes.extend(node.body + node.orelse)
            if isinstance(node, ast.Try):
                for handler in node.handlers:
                    nodes.extend(handler.body)
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            for alias in node.names:
                found.add(target if node.module else f"{target}.{alias.name}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [
                a.name for a in node.names
            ]  # fmt: skip
            found.update(n for n in names if n)
    return {n for n in found if n.startswith("crossroads.evals")}


def test_evals_modules_import_each_other_without_cycles() -> None:
    root = Path(crossroads.evals.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(["crossroads.evals", *(parts[:-1] if is_package else parts)])
        package = name if is_package else name.rpartition(".")[0]
        graph[name] = _module_imports(path, package)
    for start in graph:
        stack, seen = [(start, (start,))], set()
        while stack:
            module, trail = stack.pop()
            for target in graph.get(module, set()) & graph.keys():
                assert target != start, "import cycle: " + " -> ".join([*trail, target])
                if target not in seen:
                    seen.add(target)
                    stack.append((target, (*trail, target)))
