"""What FCM's HTTP v1 ``messages:send`` accepts, as its reference documents the ``Message``
resource: the loopback catcher refuses the rest with the field at fault (``Invalid``).

    >>> message, validate_only = check_request(body, "application/json")
"""

from __future__ import annotations

import json
import re
from typing import Any

from notifications.push import GRANT_TYPE, SCOPE

__all__ = ["GRANT_TYPE", "SCOPES", "Invalid", "check_request"]

SCOPES = {SCOPE, "https://www.googleapis.com/auth/cloud-platform"}
PAYLOAD_LIMIT = 4096  # bytes of data and notification together
_TOKEN = re.compile(r"^[A-Za-z0-9_:\-]{16,4096}$")
_TOPIC = re.compile(r"^(/topics/)?[a-zA-Z0-9\-_.~%]{1,900}$")
_DURATION = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,9})?s$")
_MESSAGE = {
    "name", "data", "notification", "android", "webpush", "apns", "fcm_options", "token",
    "topic", "condition",
}  # fmt: skip
_NOTIFICATION = {"title", "body", "image"}
_ANDROID = {
    "collapse_key", "priority", "ttl", "restricted_package_name", "data", "notification",
    "fcm_options", "direct_boot_ok", "bandwidth_constrained_ok", "restricted_satellite_ok",
}  # fmt: skip
_ANDROID_NOTIFICATION = {
    "title", "body", "icon", "color", "sound", "tag", "click_action", "body_loc_key",
    "body_loc_args", "title_loc_key", "title_loc_args", "channel_id", "ticker", "sticky",
    "event_time", "local_only", "notification_priority", "default_sound",
    "default_vibrate_timings", "default_light_settings", "vibrate_timings", "visibility",
    "notification_count", "light_settings", "image", "bypass_proxy_notification", "proxy",
}  # fmt: skip
_WEBPUSH = {"headers", "data", "notification", "fcm_options"}
_APNS = {"headers", "payload", "fcm_options", "live_activity_token"}
_RESERVED_DATA = {"from", "notification", "message_type"}


class Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _object(value: Any, field: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(field, f"Invalid value at '{field}': not an object")
    for key in value:
        if key not in allowed:
            raise Invalid(field, f"Invalid JSON payload received. Unknown name \"{key}\" at "
                          f"'{field}': Cannot find field.")  # fmt: skip
    return value


def _strings(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise Invalid(field, f"Invalid value at '{field}': a map of strings to strings")
    return value


def _check_data(value: Any, field: str) -> None:
    for key in _strings(value, field):
        if key in _RESERVED_DATA or key.startswith(("google", "gcm")):
            raise Invalid(field, f"Invalid data payload key: {key}")


def _check_android(value: Any) -> None:
    android = _object(value, "message.android", _ANDROID)
    if "priority" in android and android["priority"] not in ("normal", "high", "NORMAL", "HIGH"):
        raise Invalid("message.android.priority", "Invalid value at 'message.android.priority'")
    if "ttl" in android and not (
        isinstance(android["ttl"], str) and _DURATION.fullmatch(android["ttl"])
    ):
        raise Invalid("message.android.ttl", "Invalid value at 'message.android.ttl'")
    if "collapse_key" in android and not isinstance(android["collapse_key"], str):
        raise Invalid("message.android.collapse_key", "Invalid value: not a string")
    if "data" in android:
        _check_data(android["data"], "message.android.data")
    if "notification" in android:
        _object(android["notification"], "message.android.notification", _ANDROID_NOTIFICATION)


def _check_webpush(value: Any) -> None:
    webpush = _object(value, "message.webpush", _WEBPUSH)
    if "headers" in webpush:
        _strings(webpush["headers"], "message.webpush.headers")
    if "data" in webpush:
        _check_data(webpush["data"], "message.webpush.data")
    if "notification" in webpush and not isinstance(webpush["notification"], dict):
        raise Invalid("message.webpush.notification", "Invalid value: not an object")
    options = _object(webpush.get("fcm_options", {}), "message.webpush.fcm_options",
                      {"link", "analytics_label"})  # fmt: skip
    link = options.get("link")
    if link is not None and not (isinstance(link, str) and link.startswith("https://")):
        raise Invalid("message.webpush.fcm_options.link", "The link must be an HTTPS URL")


def _check_apns(value: Any) -> None:
    apns = _object(value, "message.apns", _APNS)
    if "headers" in apns:
        _strings(apns["headers"], "message.apns.headers")
    if "payload" in apns and not isinstance(apns["payload"], dict):
        raise Invalid("message.apns.payload", "Invalid value: not an object")


def check_request(body: Any, content_type: str) -> tuple[dict[str, Any], bool]:
    """The message of a ``messages:send`` body and whether it only asks for validation;
    ``Invalid`` when FCM would refuse it (``ValueError`` for a body that is not JSON)."""
    if content_type != "application/json":
        raise ValueError("not JSON")
    top = _object(body, "", {"message", "validate_only"})
    if "message" not in top:
        raise Invalid("message", "Request contains an invalid argument: no message")
    validate_only = top.get("validate_only", False)
    if not isinstance(validate_only, bool):
        raise Invalid("validate_only", "Invalid value at 'validate_only'")
    message = _object(top["message"], "message", _MESSAGE)
    targets = [key for key in ("token", "topic", "condition") if key in message]
    if len(targets) != 1:
        raise Invalid("message", "Exactly one of token, topic or condition must be specified")
    target = message[targets[0]]
    if not isinstance(target, str):
        raise Invalid(f"message.{targets[0]}", "Invalid value: not a string")
    if targets[0] == "token" and not _TOKEN.fullmatch(target):
        raise Invalid("message.token", "The registration token is not a valid FCM registration "
                      "token")  # fmt: skip
    if targets[0] == "topic" and not _TOPIC.fullmatch(target):
        raise Invalid("message.topic", "Invalid topic name")
    if "data" in message:
        _check_data(message["data"], "message.data")
    if "notification" in message:
        notification = _object(message["notification"], "message.notification", _NOTIFICATION)
        for key, value in notification.items():
            if not isinstance(value, str):
                raise Invalid(f"message.notification.{key}", "Invalid value: not a string")
    for key, check in (("android", _check_android), ("webpush", _check_webpush),
                       ("apns", _check_apns)):  # fmt: skip
        if key in message:
            check(message[key])
    size = len(json.dumps([message.get("data"), message.get("notification")]).encode())
    if size > PAYLOAD_LIMIT:
        raise Invalid("message", "Message is too big")
    return message, validate_only
