"""A real HTTP server on 127.0.0.1 whose pages each test declares."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Page:
    """A canned response: status, headers, body; delay sleeps before answering (slow servers)."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0  # seconds between body chunks of 1 KiB: a slow-loris body
    chunked: bool = False  # Transfer-Encoding: chunked (1 KiB chunks) instead of Content-Length


Responder = Callable[[BaseHTTPRequestHandler], Page]


class Site:
    """Serve pages registered per path; records every request line and its headers."""

    def __init__(self) -> None:
        self.pages: dict[str, Page | Responder] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep pytest output readable
                pass

            def handle(self) -> None:
                # A client may abort a body it does not want (too large, wrong type).
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def do_GET(self) -> None:
                site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                entry = site.pages.get(self.path)
                if entry is None:
                    page = Page(b"not found", 404, {"Content-Type": "text/plain"})
                elif isinstance(entry, Page):
                    page = entry
                else:
                    page = entry(self)
                if page.delay:
                    time.sleep(page.delay)
                self.send_response(page.status)
                framing = {"Transfer-Encoding": "chunked"} if page.chunked else {"Content-Length": str(len(page.body))}
                headers = {**framing, **page.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    if page.chunked:
                        for i in range(0, len(page.body), 1024):
                            piece = page.body[i : i + 1024]
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                            self.wfile.flush()
                            time.sleep(page.drip)
                        self.wfile.write(b"0\r\n\r\n")
                    elif page.drip:
                        for i in range(0, len(page.body), 1024):
                            self.wfile.write(page.body[i : i + 1024])
                            self.wfile.flush()
                            time.sleep(page.drip)
                    else:
                        self.wfile.write(page.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        """Absolute URL of a path on this site."""
        return self.base + path

    def add(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        drip: float = 0.0,
        chunked: bool = False,
    ) -> str:
        """Register a page; returns its URL."""
        data = body.encode() if isinstance(body, str) else body
        self.pages[path] = Page(data, status, {"Content-Type": content_type, **(headers or {})}, delay, drip, chunked)
        return self.url(path)

    def route(self, path: str, responder: Responder) -> str:
        """Register a function that builds the response from the request."""
        self.pages[path] = responder
        return self.url(path)

    def hits(self, path: str) -> int:
        """How many requests this path received."""
        return sum(1 for p, _ in self.requests if p == path)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
