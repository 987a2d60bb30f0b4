"""Mail of one-time links (invites and password resets) through TAUTAN_SMTP_URL:
`smtps://` speaks TLS from the start, `smtp://` upgrades with STARTTLS when the server
offers it (and must, when the URL holds credentials). Sent by the standard library's client in a thread, with a timeout, so that a
slow mail server holds up only the request that mails."""

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from app.accounts.service import password_url
from app.config import Settings

log = logging.getLogger(__name__)

TIMEOUT_S = 10
SUBJECTS = {
    "invite": "You are invited to Tautan",
    "reset": "Reset your Tautan password",
}
BODIES = {
    "invite": "You have been added to the workspace {workspace} on Tautan.\n\n"
    "Set your password here (the link works once, for 7 days):\n\n{url}\n",
    "reset": "Someone asked to reset the password of this address on Tautan.\n\n"
    "Set a new password here (the link works once, for 24 hours):\n\n{url}\n\n"
    "If it was not you, ignore this mail: your password stays as it is.\n",
}


class MailError(Exception):
    """The mail server could not be reached, or refused the message."""


def sender(settings: Settings) -> str:
    host = urlsplit(settings.base_url).hostname or "localhost"
    return settings.smtp_from or f"Tautan <tautan@{host}>"


async def send_password_link(
    settings: Settings, to: str, url: str, purpose: str, workspace: str = ""
) -> None:
    """Mail `url` to `to`; MailError when it could not be handed to the server."""
    assert settings.smtp_url is not None
    message = EmailMessage()
    message["From"] = sender(settings)
    message["To"] = to
    message["Subject"] = SUBJECTS[purpose]
    message.set_content(BODIES[purpose].format(url=url, workspace=workspace))
    try:
        await asyncio.to_thread(_send, settings.smtp_url, message)
    except (OSError, ValueError, smtplib.SMTPException) as exc:  # ValueError: a bad port
        raise MailError(f"the mail to {to} could not be sent: {exc}") from exc


def _send(smtp_url: str, message: EmailMessage) -> None:
    parts = urlsplit(smtp_url)
    host = parts.hostname or ""
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, parts.port or 465, timeout=TIMEOUT_S, context=context
        )
    else:
        client = smtplib.SMTP(host, parts.port or 25, timeout=TIMEOUT_S)
    with client:
        client.ehlo()
        if parts.scheme == "smtp" and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        elif parts.scheme == "smtp" and parts.username:
            # Else the password (and the link) would cross the network in clear.
            raise smtplib.SMTPException("the server offers no STARTTLS: not sending credentials")
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)


def hand_over(
    settings: Settings, later: Callable[..., object], email: str, token: str | None,
    purpose: str, workspace: str = "",
) -> str | None:  # fmt: skip
    """Get a one-time link to its person: with mail set up, mailed once the answer is sent
    (after the transaction that made the token has committed, and holding no database
    lock while the mail server takes its time); a failure is logged, and an owner can make
    another link. Without mail: its URL, for the caller to pass on (None: no link).
    `later(function, *args)` runs it once the answer is sent (a route's
    `BackgroundTasks.add_task`)."""
    if token is None:
        return None
    url = password_url(settings.base_url, token)
    if not settings.smtp_url:
        return url
    later(_send_logged, settings, email, url, purpose, workspace)
    return None


async def _send_logged(
    settings: Settings, email: str, url: str, purpose: str, workspace: str
) -> None:
    try:
        await send_password_link(settings, email, url, purpose, workspace)
    except MailError as exc:
        log.warning("%s", exc)
