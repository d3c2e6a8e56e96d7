"""A webhook receiver on loopback for the tests and the benchmark: a real HTTP server in a thread that
keeps every request and answers each path with the statuses it is given (the last one repeats)."""

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict
    body: bytes

    def verify(self, secret):
        """The payload, if the signature is right (standardwebhooks, the reference library); raises otherwise."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """`with Receiver({"/flaky": [500, 500, 204]}) as receiver:`; any other path answers 204."""

    def __init__(self, answers=None, keep_bodies=True):
        self.answers = {path: list(statuses) for path, statuses in (answers or {}).items()}
        self.keep_bodies = keep_bodies
        self.received = []
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: a worker reuses its connection, as with a real receiver

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = receiver._answer(self.path, Received(self.path, headers, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    def _answer(self, path, received):
        with self.lock:
            self.count += 1
            if self.keep_bodies:
                self.received.append(received)
            statuses = self.answers.get(path)
            if not statuses:
                return 204
            return statuses.pop(0) if len(statuses) > 1 else statuses[0]

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, path):
        with self.lock:
            return [received for received in self.received if received.path == path]

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
