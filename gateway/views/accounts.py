"""Register, log in, refresh, log out, and who am I.

Register, log in and refresh answer the account (email, display name): each names its caller
to the audit log once they proved who they are (``audit.identify``); a failed login names
nobody.
"""

from __future__ import annotations

from typing import Any

import storage
from gateway import audit, keys
from gateway.endpoint import Call
from gateway.errors import Unauthorized


async def register(call: Call) -> dict[str, Any]:
    auth, body = call.app[keys.AUTH], call.body
    password_hash = await auth.hash_password(body.password)
    async with call.app[keys.POOL].acquire() as conn, conn.transaction():
        user = await storage.create_user(
            conn,
            body.email,
            password_hash,
            keyring=call.app[keys.KEYRING],
            display_name=body.display_name,
            home_city_id=body.home_city_id,
        )
        tokens = await auth.issue(conn, user)
    audit.identify(call.request, user.id, user.role)
    return tokens.body(user)


async def login(call: Call) -> dict[str, Any]:
    auth, body = call.app[keys.AUTH], call.body
    async with call.app[keys.POOL].acquire() as conn:
        user = await storage.find_user_by_email(conn, body.email, keyring=call.app[keys.KEYRING])
    if not await auth.verify_password(user.password_hash if user else None, body.password):
        raise Unauthorized("wrong email or password", code="invalid_credentials")
    assert user is not None
    async with call.app[keys.POOL].acquire() as conn:
        tokens = await auth.issue(conn, user)
    audit.identify(call.request, user.id, user.role)
    return tokens.body(user)


async def refresh(call: Call) -> dict[str, Any]:
    user, tokens = await call.app[keys.AUTH].refresh(call.body.refresh_token)
    audit.identify(call.request, user.id, user.role)
    return tokens.body(user)


async def logout(call: Call) -> None:
    await call.app[keys.AUTH].logout(call.user, call.body.refresh_token)


async def me(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        try:
            user = await storage.get_user(conn, call.user.user_id, keyring=call.app[keys.KEYRING])
        except storage.NotFound as exc:
            raise Unauthorized("this account no longer exists", code="invalid_token") from exc
        theaters = await storage.theaters_of(conn, user.id)
    return {**user.public(), "theaters": theaters}
