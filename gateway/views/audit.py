"""Reading the audit log (``GET /api/v1/admin/audit``, ops admins only): filtered by actor,
subject, action, target and time range, newest first, in keyset pages (a page's ``next`` is
the next one's ``after``). Reading it is itself recorded (``audit_log.read``, the filters in
its details)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from gateway import audit, keys
from gateway.endpoint import Call
from gateway.schemas import Id, Strict
from storage import audit as store

ACTION_PATTERN = r"^[a-z][a-z0-9_.]{0,63}$"
TARGET_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
TARGET_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class AuditQuery(Strict):
    actor_id: Id | None = Field(None, description="only what this user did")
    subject_id: Id | None = Field(None, description="only what touched this user's data")
    action: str | None = Field(
        None, pattern=ACTION_PATTERN, description="only this action (create_show, …)"
    )
    target_type: str | None = Field(None, pattern=TARGET_TYPE_PATTERN)
    target_id: str | None = Field(
        None, pattern=TARGET_ID_PATTERN, description="with target_type: only this target"
    )
    from_: dt.datetime | None = Field(None, alias="from", description="at or after this instant")
    to: dt.datetime | None = Field(None, description="before this instant")
    after: Id | None = Field(None, description="the previous page's `next`")
    limit: int = Field(100, ge=1, le=store.MAX_PAGE)

    @model_validator(mode="after")
    def _consistent(self) -> AuditQuery:
        if self.target_id is not None and self.target_type is None:
            raise ValueError("target_id needs target_type")
        if self.from_ is not None and self.to is not None and _utc(self.to) <= _utc(self.from_):
            raise ValueError("to must be after from")
        return self


class AuditEntryOut(BaseModel):
    id: int
    at: dt.datetime
    actor_id: int | None = Field(description="the user who acted; null: the system")
    actor_role: Literal["customer", "theater_admin", "admin", "system"] = Field(
        description="their role then"
    )
    action: str
    target_type: str | None
    target_id: str | None
    subject_id: int | None = Field(description="whose personal data; null: nobody's")
    method: str | None
    route: str | None = Field(description="the route template called")
    status: int | None = Field(description="the HTTP status answered: the outcome")
    request_id: str | None
    details: dict[str, Any] = Field(description="ids and counts only")


class AuditOut(BaseModel):
    entries: list[AuditEntryOut]
    next: int | None = Field(None, description="pass as `after` for the next page; null: no more")


def _utc(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


async def list_audit(call: Call) -> dict[str, Any]:
    q: AuditQuery = call.query
    filters = store.AuditFilters(
        actor_id=q.actor_id,
        subject_id=q.subject_id,
        action=q.action,
        target_type=q.target_type,
        target_id=q.target_id,
        since=_utc(q.from_) if q.from_ else None,
        until=_utc(q.to) if q.to else None,
    )
    audit.note(call.request, **_noted(filters, q.after))
    async with call.app[keys.POOL].acquire() as conn:
        found = await store.list_entries(conn, filters, after=q.after, limit=q.limit)
    more = found[-1].id if len(found) == q.limit else None
    return {"entries": [r.public() for r in found], "next": more}


def _noted(filters: store.AuditFilters, after: int | None) -> dict[str, Any]:
    """The filters as the read's own row keeps them (instants as epoch seconds)."""
    noted: dict[str, Any] = {
        f"filter_{name}": getattr(filters, name)
        for name in ("actor_id", "subject_id", "action", "target_type", "target_id")
        if getattr(filters, name) is not None
    }
    if filters.since is not None:
        noted["filter_from_s"] = int(filters.since.timestamp())
    if filters.until is not None:
        noted["filter_to_s"] = int(filters.until.timestamp())
    if after is not None:
        noted["after"] = after
    return noted
