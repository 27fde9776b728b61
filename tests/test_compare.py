"""`crossroads compare`: measured and unmeasured models, the report files and page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crossroads.cli import app
from crossroads.report.charts import CLOSED_FILL, OPEN_FILL, PALETTE

from .browser import CHROMIUM_FLAGS, _chromium, _near, _pixels, _region
from .conftest import require
from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply

ROOT = Path(__file__).resolve().parents[1]


def quick_answers(body: dict[str, Any]) -> Reply:
    question = body["messages"][-1]["content"]
    return Reply(text="Paris" if "France" in question else "I do not know.")


def test_closed_model_with_a_key_is_measured_others_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIFake() as fake:
        fake.responder = quick_answers
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url + "/v1")
        out = tmp_path / "report"
        result = CliRunner().invoke(
            app,
            [
                "compare",
                "--models",
                "openai/gpt-4o-mini,meta/llama-3.1-8b,anthropic/claude-haiku-4-5",
                "--volume",
                "50M",
                "--out",
                str(out),
            ],
            env={"COLUMNS": "200"},
        )
        assert result.exit_code == 0, result.output
        assert fake.requests, "the model with a key was called"
    report = json.loads((out / "report.json").read_text())
    models = {m["name"]: m for m in report["models"]}
    assert models["openai/gpt-4o-mini"]["measured"] is True
    # the fake knows one answer ("Paris"): one of the quick suite's 34 items asks it
    quality = models["openai/gpt-4o-mini"]["quality"]
    assert quality["mean"] == pytest.approx(1 / 34)
    assert quality["pass_rate"] == pytest.approx(1 / 34)
    assert quality["ci_low"] == 0.0
    assert models["anthropic/claude-haiku-4-5"]["measured"] is False
    assert "ANTHROPIC_API_KEY" in models["anthropic/claude-haiku-4-5"]["note"]
    assert models["meta/llama-3.1-8b"]["note"].startswith("not measured here")
    assert report["volume"]["tokens_per_month"] == 50e6
    # the fake answers with 11 prompt and 7 completion tokens: TCO uses that measured mix
    assert report["volume"]["input_share"] == pytest.approx(11 / 18)
    # self-hosting the 8B at 50M tokens a month, with the default weights
    assert report["recommendation"]["model"] == "meta/llama-3.1-8b"
    assert [r["model"] for r in report["advice"]["ranking"]] == [
        "meta/llama-3.1-8b", "anthropic/claude-haiku-4-5", "openai/gpt-4o-mini"
    ]
    assert {r["model"] for r in report["advice"]["ranking"]} == set(models)
    assert set(report["dimensions"]["scores"]["openai/gpt-4o-mini"]) == {
        "cost",
        "customization",
        "transparency",
        "performance",
        "ease_of_use",
        "scalability",
        "support",
        "ecosystem",
        "control",
        "ethics_bias",
    }
    sentences = [b["sentence"] for b in report["tco"]["break_even"]]
    assert any("meta/llama-3.1-8b" in s and "openai/gpt-4o-mini" in s for s in sentences)
    md = (out / "report.md").read_text()
    assert report["recommendation"]["summary"][:40] in md
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_hospital_profile_recommends_an_open_model(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "--models",
            "openai/gpt-4o,meta/llama-3.1-8b,meta/llama-3.3-70b",
            "--profile",
            str(ROOT / "examples/profiles/hospital.yaml"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    # on-premises only: GPT-4o is out, and the 70B's quality outweighs the 8B's cost
    assert report["recommendation"]["model"] == "meta/llama-3.3-70b"
    assert [r["model"] for r in report["advice"]["ranking"]] == [
        "meta/llama-3.3-70b", "meta/llama-3.1-8b"
    ]
    assert "openai/gpt-4o" in {x["model"] for x in report["advice"]["excluded"]}


def test_bad_inputs_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_volume = runner.invoke(app, ["compare", "--volume", "lots", "--out", str(tmp_path)])
    assert bad_volume.exit_code == 2 and "--volume" in bad_volume.stderr
    unknown = runner.invoke(app, ["compare", "--models", "my-own-thing", "--out", str(tmp_path)])
    assert unknown.exit_code == 2 and "catalog" in unknown.stderr


def test_offline_defaults_end_to_end(tmp_path: Path) -> None:
    require("llama_cpp", "pip install -e '.[dev]' for the embedded model")
    env = {**os.environ, "CROSSROADS_HOME": str(tmp_path / "home"), "COLUMNS": "120"}
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        env.pop(var, None)
    done = subprocess.run(
        [sys.executable, "-m", "crossroads.cli", "compare", "--out", "reports/first"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "reports" / "first"
    report = json.loads((out / "report.json").read_text())
    smol = next(m for m in report["models"] if m["name"] == "local/smollm2")
    assert smol["measured"] and smol["quality"]["mean"] > 0
    assert all(not m["measured"] for m in report["models"] if m["kind"] == "closed")
    assert "Recommendation:" in done.stdout

    chromium = _chromium()
    page = (out / "report.html").as_uri()
    for chart in ("cost", "quality"):
        png = tmp_path / f"{chart}.png"
        shot = subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                "--window-size=1000,700",
                f"--user-data-dir={tmp_path / ('profile-' + chart)}",
                f"--screenshot={png}",
                f"{page}#chart={chart}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
        assert shot.returncode == 0, shot.stderr[-2000:]
        console = [ln for ln in shot.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
        assert console == []
        width, bpp, rows = _pixels(png.read_bytes())
        assert (width, len(rows)) == (1000, 700)
        if chart == "cost":
            # eight models: every colour of the palette draws its line inside the axes
            plot = _region(rows, bpp, 88, 42, 568, 342)
            for colour in PALETTE:
                assert _near(plot, colour) > 40, colour
        else:
            # offline only the open embedded model is measured: one green bar, no blue
            bars = _region(rows, bpp, 228, 52, 648, 280)
            assert _near(bars, OPEN_FILL, 12) > 1000
            assert _near(bars, CLOSED_FILL, 12) == 0
            assert _near(_region(rows, bpp, 220, 5, 400, 30), CLOSED_FILL, 12) > 50  # legend
        # solo mode: the chart alone at the top left, nothing else on the page
        assert len(set(_region(rows, bpp, 0, 420, width, 700))) == 1, chart
