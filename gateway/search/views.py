"""The search endpoints: the query, and autocomplete."""

from __future__ import annotations

from typing import Any

from gateway import keys
from gateway.endpoint import Call
from gateway.errors import ValidationFailed
from gateway.search.service import SearchService


async def search(call: Call) -> dict[str, Any]:
    q = call.query
    if (q.lat is None) != (q.lon is None):
        raise ValidationFailed("send lat and lon together", {"fields": ["lat", "lon"]})
    near = (q.lat, q.lon) if q.lat is not None else None
    service: SearchService = call.app[keys.SEARCH]
    result = await service.search(q.q, city_id=q.city_id, near=near, limit=q.limit)
    return result.to_json()


async def autocomplete(call: Call) -> dict[str, Any]:
    q = call.query
    service: SearchService = call.app[keys.SEARCH]
    found = await service.autocomplete(q.q, city_id=q.city_id, limit=q.limit)
    return {"suggestions": found}
