"""`crossroads eval quick --models local/smollm2` offline, end to end, and its page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .browser import CHROMIUM_FLAGS, _chromium, _near, _pixels, _region
from .conftest import require

require("llama_cpp", "pip install -e '.[dev]' for the embedded model")


def test_quick_suite_on_the_embedded_model(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "first"
    env = {**os.environ, "CROSSROADS_HOME": str(tmp_path / "home"), "COLUMNS": "120"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crossroads.cli",
            "eval",
            "quick",
            "--models",
            "local/smollm2",
            "--out",
            str(out),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "local/smollm2" in done.stdout and "Run id:" in done.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["run"]["status"] == "complete"
    assert len(data["results"]) == len(data["items"]) >= 30
    summary = data["summary"]["models"]["local/smollm2"]
    assert 0 < summary["mean"] < 1, "a tiny model gets some, not all"
    assert summary["errors"] == 0
    assert data["manifest"]["models"]["local/smollm2"]["backend"] == "llamacpp"
    paris = next(r for r in data["results"] if "Paris" in r["output"])
    assert paris["passed"] is True

    runs = subprocess.run(
        [sys.executable, "-m", "crossroads.cli", "runs"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert data["run"]["id"] in runs.stdout

    chromium = _chromium()
    page = (out / "results.html").as_uri()
    png = tmp_path / "shot.png"
    shots = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            "--window-size=1280,1600",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            page,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert shots.returncode == 0, shots.stderr[-2000:]
    console = [ln for ln in shots.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    assert console == []
    width, bpp, rows = _pixels(png.read_bytes())
    assert (width, len(rows)) == (1280, 1600)
    # the page as rendered: the accent rule under the header, the summary's score bar,
    # and the first items' answers in their pass or fail boxes
    assert _near(_region(rows, bpp, 0, 100, width, 130), "#2f5fd0", 20) > 1000
    assert _near(_region(rows, bpp, 0, 250, width, 330), "#7f9de0", 12) > 500
    items = _region(rows, bpp, 0, 1000, width, 1600)
    assert _near(items, "#e3f4e6", 6) + _near(items, "#fbe4e4", 6) > 20_000
