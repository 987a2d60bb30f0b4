"""Mail of one-time links (invites and password resets) through TAUTAN_SMTP_URL:
`smtps://` speaks TLS from the start, `smtp://` upgrades with STARTTLS when the server
offers it. Sent by the standard library's client in a thread, with a timeout, so that a
slow mail server holds up only the request that mails."""

import asyncio
import logging
import smtplib
import ssl
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
    except (OSError, smtplib.SMTPException) as exc:
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
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)


async def hand_over(
    settings: Settings, email: str, token: str | None, purpose: str, workspace: str = ""
) -> tuple[str | None, bool]:
    """A one-time link's (URL to show the caller, whether mailed): mailed to `email` when
    mail is set up; else, or when the mail server failed, the URL, to pass on by hand."""
    if token is None:
        return None, False
    url = password_url(settings.base_url, token)
    if settings.smtp_url:
        try:
            await send_password_link(settings, email, url, purpose, workspace)
            return None, True
        except MailError as exc:
            log.warning("%s", exc)
    return url, False
