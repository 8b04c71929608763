"""Notifications: the outbox's mail worker. Rows of ``outbox`` are written in the transaction
that causes them (a booking confirmed or cancelled by the show actors' write-behind, a refund by
the payments saga); the worker renders each as an email (with a calendar attachment for
bookings), sends it over SMTP, retries with backoff and never sends one twice."""

from notifications.render import UnknownTopic, compose
from notifications.smtp import PermanentSmtpError, SmtpConfig, TransientSmtpError, send
from notifications.worker import OutboxWorker

__all__ = [
    "OutboxWorker",
    "PermanentSmtpError",
    "SmtpConfig",
    "TransientSmtpError",
    "UnknownTopic",
    "compose",
    "send",
]
