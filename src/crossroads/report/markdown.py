"""The decision report as Markdown: the HTML page's sections as tables and lists (no charts).

Text from the report is one line per cell and never raw HTML (``<`` and ``>`` become
entities); the reproducibility manifest is the one verbatim block, inside a code fence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .._pages import DASH, strict_dumps
from ..decide.decision import DecisionReport
from .charts import NOT_MEASURED
from .html import as_report
from .view import build_view

__all__ = ["render_report_markdown"]


def _md(text: str) -> str:
    """Inline Markdown text: one line, no raw HTML (``<`` / ``>`` become entities)."""
    s = re.sub(r"\s*[\r\n]+\s*", " ", text)
    return s.replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    return _md(text).replace("|", "\\|") or " "


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _fence(text: str, lang: str = "") -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return [ticks + lang, text, ticks, ""]


def render_report_markdown(report: DecisionReport | Mapping[str, Any]) -> str:
    """The decision report as Markdown: the HTML page's sections as tables and lists."""
    v = build_view(as_report(report))
    rec = v.recommendation
    lines = [f"# {_md(v.title)}", ""]
    meta = [f"Generated: {_md(v.generated)}"]
    if v.profile_name:
        meta.append(f"Profile: {_md(v.profile_name)}")
    meta.append(f"Volume: {_md(v.volume)}")
    lines += [" · ".join(meta), ""]

    lines += ["## Recommendation", ""]
    if rec.model:
        kind = f" ({rec.kind})" if rec.kind else ""
        lines += [f"**{_md(rec.model)}**{kind}", ""]
    else:
        lines += ["No recommendation.", ""]
    if rec.summary:
        lines += [_md(rec.summary), ""]
    if rec.flip_summary:
        lines += [f"**What would change this:** {_md(rec.flip_summary)}", ""]
    if rec.stats:
        lines += _table(["Figure", "Value"], [[k, val] for k, val in rec.stats])
    if v.ranking:
        lines += ["### Ranking", ""]
        lines += _table(
            ["#", "Model", "Score", "Reasons"],
            [[str(r.rank), r.model, r.score, "; ".join(r.reasons)] for r in v.ranking],
        )

    prof = v.profile
    if v.profile_description or prof.weights or prof.constraints:
        lines += ["## Profile", ""]
        if v.profile_description:
            lines += [_md(v.profile_description), ""]
        if prof.weights:
            lines += _table(["Dimension", "Weight"], [[w.dim, w.weight] for w in prof.weights])
        if prof.constraints:
            lines += ["Constraints:", ""]
            lines += [f"- {_md(c.key)}: {_md(c.value)}" for c in prof.constraints]
            lines += [""]

    lines += ["## Ten dimensions (0–10, higher is better for you)", ""]
    dims = v.dimensions
    labels = [m.label + (f" ({NOT_MEASURED})" if m.unmeasured else "") for m in v.models]
    if dims.rows:
        rows = [[r.name, r.weight, *(c.text for c in r.cells)] for r in dims.rows]
        if dims.totals:
            rows.append(["**Weighted score**", "", *dims.totals])
        lines += _table(["Dimension", "Weight", *labels], rows)
        evidence = [
            f"- **{_md(r.name)}**, {_md(m.label)}: {'; '.join(_md(e) for e in c.evidence)}"
            for r in dims.rows
            for m, c in zip(v.models, r.cells, strict=False)
            if c.evidence
        ]
        if evidence:
            lines += ["<details><summary>Evidence</summary>", "", *evidence, "", "</details>", ""]
    else:
        lines += ["No dimension scores.", ""]
    if v.unmeasured:
        missing = "; ".join(f"{_md(u.model)} ({_md(u.note)})" for u in v.unmeasured)
        lines += [f"Not measured here: {missing}", ""]

    q = v.quality
    lines += ["## Quality", ""]
    if q.suite or q.run_id:
        lines += [f"Suite: {_md(q.suite or DASH)} · run {_md(q.run_id or DASH)}", ""]
    if q.rows:
        lines += _table(
            ["Model", "Kind", "Mean [CI]", "Pass rate", "Measured here"],
            [
                [
                    r.model,
                    r.kind or DASH,
                    r.mean,
                    r.pass_rate,
                    "yes" if r.measured else f"no: {r.note or NOT_MEASURED}",
                ]
                for r in q.rows
            ],
        )
    if q.benchmarks:
        lines += ["### Published benchmarks", ""]
        lines += _table(
            ["Model", "Benchmark", "Score", "Source", "As of"],
            [[b.model, b.name, b.score, b.source, b.as_of] for b in q.benchmarks],
        )
    if q.pairs:
        lines += ["### Significance", ""]
        lines += _table(
            ["A", "B", "Significant", "Verdict"],
            [[p.a, p.b, "yes" if p.significant else "no", p.verdict] for p in q.pairs],
        )

    lines += ["## Latency and throughput", ""]
    if v.perf:
        lines += _table(
            ["Model", "Kind", "p50", "p95", "Tokens/s", "Context", "Params", "Licence"],
            [
                [
                    r.model,
                    r.kind or DASH,
                    r.p50,
                    r.p95,
                    r.tps,
                    r.context,
                    r.params,
                    r.licence,
                ]
                for r in v.perf
            ],
        )
    else:
        lines += ["No models.", ""]

    t = v.tco
    lines += ["## Cost vs volume", ""]
    if v.perf:
        lines += [f"At your volume ({_md(v.volume)}):", ""]
        lines += _table(
            ["Model", "Monthly cost", "Cost per 1M tokens"],
            [[r.model, r.monthly, r.per_1m] for r in v.perf],
        )
    if t.table and t.models:
        lines += _table(["Tokens/month", *t.models], [[r.volume, *r.cells] for r in t.table])
    if t.break_even:
        lines += ["### Break-even", ""]
        for be in t.break_even:
            sentence = be.sentence or f"{be.open} vs {be.closed}"
            lines.append(f"- {_md(sentence)} ({_md(be.volume)})")
        lines += [""]

    lines += ["## Flip points", ""]
    if v.flips:
        lines += _table(
            ["Parameter", "Current", "Flips at", "New top"],
            [[f.parameter, f.current, f.flip_at, f.new_top] for f in v.flips],
        )
        lines += [f"- {_md(f.sentence)}" for f in v.flips if f.sentence] + [""]
    else:
        lines += ["No flip points within the explored ranges.", ""]

    lines += ["## Excluded options", ""]
    if v.excluded:
        lines += [
            f"- **{_md(e.model)}**: {'; '.join(_md(r) for r in e.reasons) or DASH}"
            for e in v.excluded
        ]
        lines += [""]
    else:
        lines += ["No option was excluded.", ""]

    lines += ["## Assumptions and sources", ""]
    if t.assumptions:
        lines += [f"- {_md(a)}" for a in t.assumptions] + [""]
    if v.sources:
        lines += ["Sources:", ""] + [f"- {_md(s)}" for s in v.sources] + [""]
    if not t.assumptions and not v.sources:
        lines += ["No assumptions or sources recorded.", ""]

    lines += ["## Reproducibility manifest", ""]
    if v.manifest:
        lines += _fence(strict_dumps(v.manifest, indent=2, sort_keys=True), "json")
    else:
        lines += ["No manifest.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
