"""Sending one message over SMTP (aiosmtplib), with failures sorted into worth retrying or not."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib


class TransientSmtpError(Exception):
    """Try again later: the server was unreachable, timed out, or answered 4xx."""


class PermanentSmtpError(Exception):
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
