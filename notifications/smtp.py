"""Sending one message over SMTP (aiosmtplib), with failures sorted into worth retrying or not,
and the email channel's notifier around it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from notifications.notifier import PermanentError, TransientError


class TransientSmtpError(TransientError):
    """Try again later: the server was unreachable, timed out, or answered 4xx."""


class PermanentSmtpError(PermanentError):
    """Do not try again: the server answered 5xx (a recipient refused, say)."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    use_tls: bool = False
    mail_from: str = "SeatServer <tickets@seatserver.localhost>"
    timeout_s: float = 30.0


async def send(config: SmtpConfig, message: EmailMessage) -> None:
    try:
        await aiosmtplib.send(
            message,
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            start_tls=config.starttls if not config.use_tls else False,
            use_tls=config.use_tls,
            timeout=config.timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [error.code for error in exc.recipients]
        error = PermanentSmtpError if codes and min(codes) >= 500 else TransientSmtpError
        raise error(f"recipients refused: {codes}") from exc
    except aiosmtplib.SMTPResponseException as exc:
        if 400 <= exc.code < 500:
            raise TransientSmtpError(f"{exc.code} {exc.message}") from exc
        raise PermanentSmtpError(f"{exc.code} {exc.message}") from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise TransientSmtpError(str(exc) or type(exc).__name__) from exc


class EmailNotifier:
    """The email channel: SMTP. A message sent again after an attempt whose outcome was lost
    carries the same Message-ID, so receivers drop the copy (``settle`` cannot ask an SMTP
    server what it accepted, and a lost ticket is worse than a duplicate one).

    >>> notifier = EmailNotifier(SmtpConfig(host="smtp.example.com"))
    >>> message_id = await notifier.send(mail)
    """

    channel = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: EmailMessage) -> str:
        await send(self.config, message)
        return str(message["Message-ID"])

    async def settle(self, message: EmailMessage, since: dt.datetime) -> str | None:
        return None

    async def close(self) -> None:
        return None
