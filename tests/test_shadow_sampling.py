"""Which requests a shadow rule copies, and how its configuration errors read."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from crossroads.config import parse_config
from crossroads.errors import ConfigError
from crossroads.gateway.call import new_request_id
from crossroads.shadow import Dispatcher, sampled, share_of
from crossroads.store import open_database


class _NoUpstream:  # the dispatcher is only asked which requests it takes
    async def guard(self, *args: object) -> object:
        raise AssertionError("not called")

    def worst_usd(self, *args: object) -> float:
        raise AssertionError("not called")

    async def complete(self, *args: object) -> object:
        raise AssertionError("not called")

    async def record(self, *args: object) -> None:
        raise AssertionError("not called")


def _dispatcher(tmp_path: Path, seed: int, sample: float = 0.25) -> Dispatcher:
    config = parse_config(
        f"shadow:\n  - {{name: s, match: 'gpt-4o*', candidates: [c], sample: {sample}, "
        f"seed: {seed}, scorers: [{{type: exact}}]}}\n"
    )
    db = open_database(url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    return Dispatcher(config.shadow, _NoUpstream(), db, store_bodies=False)  # type: ignore[arg-type]


def test_a_quarter_of_400_requests_is_100_within_three_sigma_and_fixed_by_the_seed(
    tmp_path: Path,
) -> None:
    ids = [new_request_id() for _ in range(400)]
    first = _dispatcher(tmp_path, seed=7)
    chosen = [i for i in ids if first.select(i, "gpt-4o-mini")]
    sigma = math.sqrt(400 * 0.25 * 0.75)
    assert abs(len(chosen) - 100) <= 3 * sigma
    again = _dispatcher(tmp_path, seed=7)  # another process, the same seed
    assert [i for i in ids if again.select(i, "gpt-4o-mini")] == chosen
    other = _dispatcher(tmp_path, seed=8)
    assert [i for i in ids if other.select(i, "gpt-4o-mini")] != chosen
    assert not any(first.select(i, "claude-haiku") for i in ids)  # no rule matches it


def test_the_selection_is_a_stable_hash_of_request_id_and_seed() -> None:
    assert share_of("req_0123456789ab000000000001", 0) == pytest.approx(0.800240761007801)
    assert sampled("req_0123456789ab000000000001", 0, 0.81)
    assert not sampled("req_0123456789ab000000000001", 0, 0.80)
    assert all(sampled(f"r{i}", 3, 1.0) for i in range(50))
    assert not any(sampled(f"r{i}", 3, 0.0) for i in range(50))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "shadow:\n  - name: a\n    match: m\n    candidates: [x]\n    sample: 1.5\n",
            "c.yaml:5: shadow.0.sample: Input should be less than or equal to 1",
        ),
        (
            "shadow:\n  - {name: a, match: m, candidates: [x], sample: 0.1}\n"
            "  - {name: a, match: m, candidates: [y], sample: 0.1}\n",
            "shadow rule names used twice: a",
        ),
        (
            "shadow:\n  - name: a\n    match: m\n    candidates: [x]\n    sample: 0.5\n"
            "    scorers: [{threshold: 1}]\n",
            "c.yaml:6: shadow.0.scorers: Value error, scorer 1 needs a `type`",
        ),
        (
            "shadow:\n  - name: a\n    match: m\n    candidates: []\n    sample: 0.5\n",
            "c.yaml:4: shadow.0.candidates",
        ),
    ],
)
def test_a_bad_rule_is_refused_with_its_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    assert message in caught.value.message


def test_an_unknown_scorer_names_the_rule(tmp_path: Path) -> None:
    config = parse_config(
        "shadow:\n  - {name: r1, match: m, candidates: [c], sample: 1, scorers: [{type: nope}]}\n"
    )
    db = open_database(url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(ConfigError) as caught:
        Dispatcher(config.shadow, _NoUpstream(), db, store_bodies=False)  # type: ignore[arg-type]
    assert "shadow rule 'r1': scorers[0]" in caught.value.message
    assert "Unknown scorer type 'nope'" in caught.value.message
