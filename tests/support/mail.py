"""A real SMTP server on 127.0.0.1 (aiosmtpd) whose inbox the test reads."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller

from tests.support.app import BASE_URL
from tests.support.server import free_port


class Inbox:
    """An aiosmtpd handler that keeps every message it is handed."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], Any]] = []

    async def handle_DATA(self, server: Any, smtp_session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.mails.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def link_to(self, email: str) -> str:
        """The path of the one-time link in the one mail to `email`."""
        bodies = [m.get_body().get_content() for to, m in self.mails if to == [email]]
        assert len(bodies) == 1, self.mails
        url = re.search(rf"{re.escape(BASE_URL)}/dashboard/set-password/\S+", bodies[0])
        assert url, bodies[0]
        return urlsplit(url[0]).path


@contextmanager
def smtp_server() -> Iterator[tuple[str, Inbox]]:
    """A running SMTP server: its `smtp://` URL, and the inbox of what it was handed."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        controller.stop()
