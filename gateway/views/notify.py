"""A customer's notification settings: which kinds arrive on which channel, the phone number
texts go to, and the devices pushes go to; with the endpoints that serve them (``ENDPOINTS``,
joined into the gateway's one table).

The phone number is sealed at rest (``storage.set_phone``); answers show only its last two
digits. Device tokens are never echoed. Turning SMS on without a phone number is refused (409
``phone_required``); removing the number turns SMS off for every kind.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StringConstraints, model_validator

import storage
from gateway import keys
from gateway.endpoint import Call, Endpoint
from gateway.errors import Conflict, ResourceNotFound, Unauthorized
from gateway.schemas import Id, Strict
from storage import notify

Kind = Literal["confirmation", "reminder", "cancellation", "admission"]
Platform = Literal["web", "android", "ios"]
E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
# An FCM registration token: URL-safe characters and colons.
PushToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_:\-]{16,4096}$")]


class Cells(Strict):
    email: StrictBool | None = None
    sms: StrictBool | None = None
    push: StrictBool | None = None


class PreferencesIn(Strict):
    preferences: dict[Kind, Cells] = Field(
        description="kind → channel → on/off; cells left out keep their value"
    )

    @model_validator(mode="after")
    def _something(self) -> PreferencesIn:
        if not self.cells():
            raise ValueError("set at least one kind and channel")
        return self

    def cells(self) -> dict[tuple[str, str], bool]:
        return {
            (kind, channel): on
            for kind, cells in self.preferences.items()
            for channel, on in cells.model_dump().items()
            if on is not None
        }


class PhoneIn(Strict):
    phone: E164 = Field(description="the number texts go to, in E.164 (+14155550100)")


class DeviceIn(Strict):
    token: PushToken = Field(description="the device's Firebase Cloud Messaging token")
    platform: Platform


class DevicePath(Strict):
    device_id: Id


class ChannelsOut(BaseModel):
    email: bool
    sms: bool
    push: bool


class MatrixOut(BaseModel):
    confirmation: ChannelsOut
    reminder: ChannelsOut
    cancellation: ChannelsOut
    admission: ChannelsOut


class PhoneOut(BaseModel):
    set: bool
    ending: str | None = Field(description="the number's last two digits")


class DeviceOut(BaseModel):
    id: int
    platform: Platform
    created_at: dt.datetime
    last_seen_at: dt.datetime


class NotificationsOut(BaseModel):
    preferences: MatrixOut
    phone: PhoneOut
    devices: list[DeviceOut]


def _phone(number: str | None) -> dict[str, Any]:
    return {"set": number is not None, "ending": number[-2:] if number else None}


async def _user(call: Call, conn: Any) -> storage.User:
    try:
        return await storage.get_user(conn, call.user.user_id, keyring=call.app[keys.KEYRING])
    except storage.NotFound as exc:
        raise Unauthorized("this account no longer exists", code="invalid_token") from exc


async def _settings(call: Call, conn: Any) -> dict[str, Any]:
    user = await _user(call, conn)
    return {
        "preferences": await notify.preferences(conn, user.id),
        "phone": _phone(user.phone),
        "devices": [d.public() for d in await notify.devices_of(conn, user.id)],
    }


async def get_notifications(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        return await _settings(call, conn)


async def set_notifications(call: Call) -> dict[str, Any]:
    cells = call.body.cells()
    async with call.app[keys.POOL].acquire() as conn, conn.transaction():
        user = await _user(call, conn)
        turning_on_sms = [kind for (kind, channel), on in cells.items() if channel == "sms" and on]
        if turning_on_sms and user.phone is None:
            raise Conflict(
                "add a phone number before turning text messages on",
                {"kinds": sorted(turning_on_sms)},
                code="phone_required",
            )
        await notify.set_preferences(conn, user.id, cells)
        return await _settings(call, conn)


async def set_phone(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        await storage.set_phone(
            conn, call.user.user_id, call.body.phone, keyring=call.app[keys.KEYRING]
        )
    return _phone(call.body.phone)


async def delete_phone(call: Call) -> None:
    async with call.app[keys.POOL].acquire() as conn, conn.transaction():
        await storage.set_phone(conn, call.user.user_id, None, keyring=call.app[keys.KEYRING])
        await notify.turn_off_channel(conn, call.user.user_id, "sms")


async def register_device(call: Call) -> dict[str, Any]:
    async with call.app[keys.POOL].acquire() as conn:
        await _user(call, conn)
        device = await notify.register_device(
            conn, call.user.user_id, call.body.token, call.body.platform
        )
    return device.public()


async def delete_device(call: Call) -> None:
    async with call.app[keys.POOL].acquire() as conn:
        if not await notify.delete_device(conn, call.user.user_id, call.path.device_id):
            raise ResourceNotFound("you have no such device", {"device_id": call.path.device_id})


API = "/api/v1/me"
USER = ("user",)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        API + "/notifications",
        get_notifications,
        "Your notification settings: each kind × channel on or off, your phone number's "
        "ending, your push devices",
        "accounts",
        response=NotificationsOut,
        auth=USER,
        audit="personal_data.notifications",
        errors=(401,),
    ),
    Endpoint(
        "PUT",
        API + "/notifications",
        set_notifications,
        "Turn kinds of notification on or off per channel (email, sms, push); SMS needs a "
        "phone number",
        "accounts",
        body=PreferencesIn,
        response=NotificationsOut,
        auth=USER,
        audit="personal_data.notifications",
        errors=(401, 409, 422),
    ),
    Endpoint(
        "PUT",
        API + "/phone",
        set_phone,
        "Set the phone number text messages go to (E.164; kept encrypted)",
        "accounts",
        body=PhoneIn,
        response=PhoneOut,
        auth=USER,
        audit="personal_data.phone",
        errors=(401, 404, 422),
    ),
    Endpoint(
        "DELETE",
        API + "/phone",
        delete_phone,
        "Remove your phone number (text messages stop)",
        "accounts",
        auth=USER,
        audit="personal_data.phone",
        errors=(401, 404),
    ),
    Endpoint(
        "POST",
        API + "/devices",
        register_device,
        "Register a device for push notifications (its Firebase Cloud Messaging token)",
        "accounts",
        body=DeviceIn,
        response=DeviceOut,
        status=201,
        auth=USER,
        audit="personal_data.device",
        errors=(401, 422),
    ),
    Endpoint(
        "DELETE",
        API + "/devices/{device_id}",
        delete_device,
        "Stop pushes to one of your devices",
        "accounts",
        path_model=DevicePath,
        auth=USER,
        audit="personal_data.device",
        errors=(401, 404, 422),
    ),
)
