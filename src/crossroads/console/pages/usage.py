"""The Usage page: requests, tokens, cost, errors and latency (p50/p95) per key, model,
route or day, as a bar chart and a table, with CSV export, read from the daily rollups
(``usage_daily``) so it stays fast on a big ledger. The master key sees every key (and
can pick one); a virtual key sees only its own key's usage."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...gateway.usage_rollup import GROUPS, rollup_usage
from .. import usage_view
from ..web import CurrentSession, NavEntry, gateway, no_store, render

__all__ = ["NAV", "routes"]

NAV: NavEntry | None = NavEntry("Usage", "/usage")


def routes(router: APIRouter) -> None:
    @router.get("/usage")
    async def page(
        request: Request,
        session: CurrentSession,
        by: str | None = None,
        since: str | None = None,
        until: str | None = None,
        key: str | None = None,
        metric: str | None = None,
    ) -> Response:
        f = usage_view.filters(session, by=by, since=since, until=until, key=key,
                               metric=metric)
        db = gateway(request).db
        rows = await asyncio.to_thread(usage_view.query, db, f)
        keys = []
        if session.admin:  # the key picker: every key with usage in the range
            keys = await asyncio.to_thread(rollup_usage, db, "key", since=f.since,
                                           until=f.until)
        totals = {n: sum(r[n] for r in rows) for n in
                  ("requests", "errors", "tokens", "cost_usd", "unpriced")}
        return render(request, "usage.html", {
            "f": f, "rows": rows, "totals": totals, "groups": GROUPS,
            "metrics": usage_view.METRICS, "bars": usage_view.bars(rows, f.metric),
            "keys": keys, "csv_query": f.query_string(),
        })

    @router.get("/usage.csv")
    async def export(
        request: Request,
        session: CurrentSession,
        by: str | None = None,
        since: str | None = None,
        until: str | None = None,
        key: str | None = None,
    ) -> Response:
        f = usage_view.filters(session, by=by, since=since, until=until, key=key,
                               metric=None)
        rows = await asyncio.to_thread(usage_view.query, gateway(request).db, f)
        name = f"crossroads-usage-{f.by}-{f.since.isoformat()}-{f.until.isoformat()}.csv"
        return no_store(Response(
            usage_view.to_csv(rows, f.by), media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        ))
