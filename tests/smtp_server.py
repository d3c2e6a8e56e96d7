"""A real SMTP server on loopback (aiosmtpd) that can refuse, delay and record: the outside world
the reminder tests stand in for."""

import email
import errno
import socket
import threading
import time

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, *, refuse_first=0, refuse_always=False, unknown=(), delay=0.0):
        self.refuse_first, self.refuse_always, self.delay = refuse_first, refuse_always, delay
        self.unknown = set(unknown)
        self.messages, self.refused = [], 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.unknown:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.refuse_always or self.refused < self.refuse_first:
                self.refused += 1
                return "451 4.3.0 Temporarily unable to accept mail, try again later"
        if self.delay:
            time.sleep(self.delay)  # blocks the server loop on purpose: a slow relay
        message = email.message_from_bytes(envelope.content)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def recipients(self):
        with self.lock:
            return [message["To"] for message in self.messages]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SMTPServer:
    def __init__(self, **options):
        self.handler = Handler(**options)

    def __enter__(self):
        # The free port is asked for before the server binds it: with tests running side by side
        # (pytest-xdist), another process may take it in between. Then another port.
        for attempt in range(5):
            self.port = free_port()
            self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
            try:
                self.controller.start()
                return self
            except OSError as error:
                self.controller.loop.close()
                if error.errno != errno.EADDRINUSE or attempt == 4:
                    raise

    def __exit__(self, *exc):
        self.controller.stop()

    @property
    def messages(self):
        return self.handler.messages

    def mailers(self):
        """A MAILERS setting that sends through this server."""
        return {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                            "OPTIONS": {"host": "127.0.0.1", "port": self.port, "timeout": 5}}}

    def env(self):
        """The environment that points a worker process at this server."""
        return {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(self.port), "EMAIL_TIMEOUT": "5"}
