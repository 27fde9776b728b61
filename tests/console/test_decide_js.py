"""decide.js against the Python advisor: same ranking, scores, reasons, exclusions and flip
points for the example profiles and for random weights and constraints, run in headless
Chromium (the console re-ranks in the browser with it)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import pytest

from crossroads.console.decision_model import LANGUAGES, browser_model, decide
from crossroads.decide.advisor import Advice, Profile, with_overrides
from crossroads.decide.compare import default_profile

from .decide_inputs import MODELS, fake_run, inputs_for, profiles

DECIDE_JS = files("crossroads.console").joinpath("static").joinpath("decide.js").read_text("utf-8")


@pytest.fixture(scope="module")
def js_page(chromium: Any) -> Iterator[Any]:
    """A blank page with decide.js loaded (Chromium from tests/console/conftest.py)."""
    context = chromium.new_context()
    page = context.new_page()
    page.add_script_tag(content=DECIDE_JS)
    yield page
    context.close()


def _js_advice(page: Any, model: dict[str, Any], profile: Profile) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "([m, p]) => CrossroadsDecide.advise(m, p)", [model, profile.model_dump()]
    )
    return result


def _close(a: float | None, b: float | None, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def _assert_same(js: dict[str, Any], py: dict[str, Any], raw: list[float]) -> None:
    assert [r["name"] for r in js["ranking"]] == [r["name"] for r in py["ranking"]]
    for j, p, exact in zip(js["ranking"], py["ranking"], raw, strict=True):
        assert abs(j["raw_score"] - exact) <= 1e-9, (j["name"], j["raw_score"], exact)
        assert j["score"] == p["score"]
        assert _close(j["monthly_cost_usd"], p["monthly_cost_usd"])
        assert all(abs(j["scores"][k] - v) <= 1e-9 for k, v in p["scores"].items())
        assert j["reasons"] == p["reasons"]
        assert j["notes"] == p["notes"]
    assert js["excluded"] == py["excluded"]
    assert len(js["flip_points"]) == len(py["flip_points"])
    for j, p in zip(js["flip_points"], py["flip_points"], strict=True):
        for key in ("kind", "parameter", "direction", "new_top", "sentence"):
            assert j[key] == p[key], (key, j, p)
        for key in ("current", "value", "searched_to"):
            assert _close(j[key], p[key]), (key, j, p)


def _raw_scores(advice: Advice, profile: Profile) -> list[float]:
    """The advisor's unrounded weighted scores, best first (``ranking.weighted_score`` on
    the scores it ranked with)."""
    weights = profile.weights.as_dict()
    total = math.fsum(weights.values())
    return [
        math.fsum(w * row.scores[k] for k, w in weights.items()) / total for row in advice.ranking
    ]


def _random_profile(rng: random.Random) -> Profile:
    base = default_profile()
    weights = {
        k: (0.0 if rng.random() < 0.15 else round(rng.uniform(0, 5), rng.choice([0, 1, 2, 6])))
        for k in base.weights.as_dict()
    }
    if not any(weights.values()):
        weights["performance"] = 1.0
    langs = rng.sample(LANGUAGES, rng.choice([0, 0, 1, 2]))
    return with_overrides(
        base,
        weights=weights,
        on_premises=rng.random() < 0.25,
        monthly_budget_usd=rng.choice([None, None, 500.0, 5_000.0, 40_000.0]),
        no_ml_engineers=rng.random() < 0.3,
        regulated=rng.random() < 0.2,
        languages=langs,
        languages_strict=rng.random() < 0.3,
        p95_latency_s=rng.choice([None, None, 1.0, 2.5]),
        volume_tokens_per_month=10 ** rng.uniform(5.5, 11),
    )


@pytest.mark.parametrize("measured", [False, True], ids=["catalog", "with-run"])
def test_js_advisor_equals_python_on_profiles_and_random_weights(
    js_page: Any, measured: bool
) -> None:
    inputs = inputs_for(MODELS, run=fake_run() if measured else None)
    report, _ = decide(inputs, default_profile())
    chosen = profiles()
    extra = sorted({lang for p in chosen for lang in p.constraints.languages})
    model = browser_model(inputs, report, extra)
    rng = random.Random(1414 + measured)
    chosen += [_random_profile(rng) for _ in range(14)]
    flips_seen = 0
    for profile in chosen:
        _, advice = decide(inputs, profile)
        py = advice.model_dump(mode="json")
        _assert_same(_js_advice(js_page, model, profile), py, _raw_scores(advice, profile))
        flips_seen += sum(f["value"] is not None for f in py["flip_points"])
    assert flips_seen >= 10  # the comparison covered real flip points, not only "none"


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ("g", 2.5, "2.5"),
        ("g", 1e6, "1e+06"),
        ("g", 123456789.0, "1.23457e+08"),
        ("g", 0.0001, "0.0001"),
        ("g", 0.00001234, "1.234e-05"),
        (".3g", 0.125, "0.125"),
        (".2g", 0.125, "0.12"),
        (".3g", 999.5, "1e+03"),
        (".3g", 3.14159, "3.14"),
        (".4g", 0.15000000000000002, "0.15"),
        (".1f", 7.25, "7.2"),
        (".1f", 7.35, "7.3"),
        (".2f", 2.675, "2.67"),
        (",.0f", 1234567.5, "1,234,568"),
        (",.2f", 0.005, "0.01"),
        (",.0f", 2.5, "2"),
    ],
)
def test_js_formats_numbers_as_python_does(
    js_page: Any, spec: str, value: float, expected: str
) -> None:
    assert format(value, spec) == expected  # the case itself is right
    if spec.endswith("g"):
        digits = int(spec[1:-1]) if spec != "g" else 6
        got = js_page.evaluate("([x, p]) => CrossroadsDecide.fmt.g(x, p)", [value, digits])
    else:
        comma = spec.startswith(",")
        digits = int(spec.rstrip("f").split(".")[1])
        got = js_page.evaluate(
            "([x, d, c]) => CrossroadsDecide.fmt.f(x, d, c)", [value, digits, comma]
        )
    assert got == expected


def test_js_fsum_is_exact(js_page: Any) -> None:
    rng = random.Random(7)
    for _ in range(50):
        xs = [rng.uniform(-1, 1) * 10 ** rng.randint(-20, 20) for _ in range(rng.randint(1, 30))]
        # (float(): Playwright hands back integral numbers as ints, in shortest decimal form)
        assert float(js_page.evaluate("(xs) => CrossroadsDecide.fsum(xs)", xs)) == math.fsum(xs)
    for x in (2.675, 0.125, 7.25, 1.0005, 123.45675):
        for d in (1, 2, 3, 4):
            assert js_page.evaluate("([x, d]) => CrossroadsDecide.pyRound(x, d)", [x, d]) == round(
                x, d
            )
