"""Notifications: the outbox's worker and its channels. Rows of ``outbox`` are events written
in the transaction that causes them (a booking confirmed or cancelled by the show actors'
write-behind, a refund by the payments saga, an admission by the waiting room; reminders by the
worker itself two hours before a show); the worker fans each out into one delivery per channel
(email, SMS, push) and device the customer's preferences ask for, and sends each through its
channel's notifier (SMTP, Twilio, Firebase Cloud Messaging), retrying with backoff and never
sending one twice. It imports nothing of ours but ``storage``."""

from notifications.notifier import (
    DeviceGone,
    Notifier,
    NotifierError,
    OutcomeUnknown,
    PermanentError,
    PushMessage,
    SmsMessage,
    TransientError,
    redact,
)
from notifications.push import FcmConfig, FcmNotifier, ServiceAccount
from notifications.render import UnknownTopic, compose
from notifications.sms import TwilioConfig, TwilioNotifier
from notifications.smtp import (
    EmailNotifier,
    PermanentSmtpError,
    SmtpConfig,
    TransientSmtpError,
    send,
)
from notifications.texts import KIND_OF_TOPIC, push_content, sms_text
from notifications.worker import OutboxWorker

__all__ = [
    "KIND_OF_TOPIC",
    "DeviceGone",
    "EmailNotifier",
    "FcmConfig",
    "FcmNotifier",
    "Notifier",
    "NotifierError",
    "OutboxWorker",
    "OutcomeUnknown",
    "PermanentError",
    "PermanentSmtpError",
    "PushMessage",
    "ServiceAccount",
    "SmsMessage",
    "SmtpConfig",
    "TransientError",
    "TransientSmtpError",
    "TwilioConfig",
    "TwilioNotifier",
    "UnknownTopic",
    "compose",
    "push_content",
    "redact",
    "send",
    "sms_text",
]
