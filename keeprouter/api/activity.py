"""Usage analytics in OpenRouter's shapes: `GET /api/v1/activity` (per day, model and provider) and
`GET /api/v1/datasets/app-rankings` (the apps leaderboard, from the HTTP-Referer / X-Title headers)."""

from __future__ import annotations

import datetime as dt
import time

from aiohttp import web

from keeprouter.api.http import STATE, authenticate, json_response, with_errors
from keeprouter.billing.pricing import to_float
from keeprouter.errors import InvalidRequest, PermissionDenied
from keeprouter.store.base import ActivityRow, KeyRecord, ReportStore

MAX_DAYS = 366


def _day(raw: str | None, name: str) -> dt.date | None:
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(f"{name}: must be a date, YYYY-MM-DD") from None


def _range(request: web.Request, default_days: int) -> tuple[dt.date, dt.date]:
    """`date` (one day), or `start`..`end`, or the last `default_days` days (UTC)."""
    q = request.query
    today = dt.datetime.now(dt.UTC).date()
    one = _day(q.get("date"), "date")
    if one is not None:
        return one, one
    end = _day(q.get("end"), "end") or today
    start = _day(q.get("start"), "start") or end - dt.timedelta(days=default_days - 1)
    if start > end:
        raise InvalidRequest("start: must not be after end")
    if (end - start).days >= MAX_DAYS:
        raise InvalidRequest(f"the range may cover at most {MAX_DAYS} days")
    return start, end


async def key_activity(
    store: ReportStore, record: KeyRecord, api_key_hash: str | None, start: dt.date, end: dt.date
) -> list[ActivityRow]:
    """What `record` may see: its own rows; the admin everyone's, or one key's with `api_key_hash`.
    The one code path of /api/v1/activity and the console's activity page."""
    key_hash: str | None = record.hash
    if record.is_admin:
        key_hash = api_key_hash
    elif api_key_hash not in (None, record.hash):
        raise PermissionDenied("a key may read only its own activity")
    return await store.activity(start, end, key_hash=key_hash)


@with_errors("openai")
async def activity(request: web.Request) -> web.StreamResponse:
    """A key sees its own activity; the admin key sees everyone's, or one key's with `api_key_hash`."""
    record = await authenticate(request)
    start, end = _range(request, 30)
    rows = await key_activity(request.app[STATE].store, record, request.query.get("api_key_hash"), start, end)
    return json_response(
        {
            "data": [
                {
                    "date": r.date,
                    "model": r.model,
                    "model_permaslug": r.model,
                    "endpoint_id": f"{r.provider}/{r.model}",
                    "provider_name": r.provider,
                    "requests": r.requests,
                    "prompt_tokens": r.prompt_tokens,
                    "completion_tokens": r.completion_tokens,
                    "reasoning_tokens": r.reasoning_tokens,
                    "usage": to_float(r.usage),
                    "byok_usage_inference": 0,
                }
                for r in rows
            ]
        }
    )


@with_errors("openai")
async def app_rankings(request: web.Request) -> web.StreamResponse:
    """Public, like OpenRouter's: apps ranked by tokens, from their HTTP-Referer / X-Title."""
    start, end = _range(request, 30)
    try:
        limit = min(max(int(request.query.get("limit", "50")), 1), 500)
    except ValueError:
        raise InvalidRequest("limit: must be a whole number") from None
    rows = await request.app[STATE].store.app_rankings(start, end, limit=limit)
    return json_response(
        {
            "data": [
                {
                    "rank": i,
                    "app_id": r.app,
                    "app_name": r.app_title or r.app,
                    "total_requests": r.requests,
                    "total_tokens": str(r.tokens),
                }
                for i, r in enumerate(rows, 1)
            ],
            "meta": {
                "start_date": start.isoformat(),
                "end_date": end.isoformat(),
                "as_of": int(time.time()),
                "version": 1,
            },
        }
    )


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/api/v1/activity", activity)
    r.add_get("/api/v1/datasets/app-rankings", app_rankings)
