"""A raw asyncio HTTP server on 127.0.0.1 that misbehaves at the byte level, on several ports (origins)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import threading
import zlib
from collections.abc import Awaitable, Callable

Writer = asyncio.StreamWriter
Behaviour = Callable[["Hostile", Writer, int], Awaitable[None]]


def html_page(title: str, words: str) -> bytes:
    """A small article page whose text is made of `words` (distinct per case, so no dedup between cases)."""
    paragraphs = "".join(
        f"<p>{title}: paragraph {n} says {words} in a sentence long enough to count as article text.</p>"
        for n in range(8)
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><article><h1>{title}</h1>{paragraphs}</article></body></html>"
    ).encode()


def head(status: str = "200 OK", **headers: str | int) -> bytes:
    """A response head; header names are given with underscores for dashes."""
    lines = [f"HTTP/1.1 {status}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Hostile:
    """Serve `behaviours[path]` on every port; `/robots.txt` is a quick 404 unless a behaviour says otherwise."""

    def __init__(self, origins: int = 1) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self.ports: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        for _ in range(origins):
            server = asyncio.run_coroutine_threadsafe(
                asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
            ).result(10)
            self._servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])

    def url(self, path: str, origin: int = 0) -> str:
        """URL of path on one of the origins."""
        return f"http://127.0.0.1:{self.ports[origin]}{path}"

    def close(self) -> None:
        """Stop listening and drop every connection."""

        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        port = writer.get_extra_info("sockname")[1]
        with contextlib.suppress(
            ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError
        ):
            while True:  # keep-alive: one request after another on the connection
                request = await reader.readuntil(b"\r\n\r\n")
                path = request.split(b" ", 2)[1].decode("latin-1")
                behaviour = self.behaviours.get(path) or (robots_404 if path == "/robots.txt" else not_found)
                await behaviour(self, writer, port)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()


async def not_found(server: Hostile, w: Writer, port: int) -> None:
    w.write(head("404 Not Found", Content_Type="text/plain", Content_Length=9) + b"not found")


async def robots_404(server: Hostile, w: Writer, port: int) -> None:
    w.write(head("404 Not Found", Content_Length=0))


def send(body: bytes, status: str = "200 OK", **headers: str | int) -> Behaviour:
    """A well-formed response (Content-Length from the body unless given)."""
    headers.setdefault("Content_Length", len(body))

    async def run(server: Hostile, w: Writer, port: int) -> None:
        w.write(head(status, **headers) + body)

    return run


def delayed(seconds: float, then: Behaviour) -> Behaviour:
    """Say nothing for a while, then behave."""

    async def run(server: Hostile, w: Writer, port: int) -> None:
        await asyncio.sleep(seconds)
        await then(server, w, port)

    return run


def redirect(location: str) -> Behaviour:
    return send(b"", "302 Found", Location=location)


async def slow_headers(server: Hostile, w: Writer, port: int) -> None:
    """The status line, then one header byte every 0.3 s, forever."""
    w.write(b"HTTP/1.1 200 OK\r\n")
    while True:
        w.write(b"X")
        await w.drain()
        await asyncio.sleep(0.3)


async def slow_body(server: Hostile, w: Writer, port: int) -> None:
    """A promised 100 kB body, dripped 16 bytes every 0.2 s."""
    w.write(head(Content_Type="text/html", Content_Length=100_000) + b"<html><body><p>")
    while True:
        w.write(b"slow slow slow. ")
        await w.drain()
        await asyncio.sleep(0.2)


async def endless_chunks(server: Hostile, w: Writer, port: int) -> None:
    """Chunked transfer that never sends its last chunk."""
    w.write(head(Content_Type="text/html", Transfer_Encoding="chunked"))
    piece = b"<p>" + b"more " * 800 + b"</p>"
    while True:
        w.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await w.drain()
        await asyncio.sleep(0)


async def short_body(server: Hostile, w: Writer, port: int) -> None:
    """Content-Length says 5000, 100 bytes come, then the connection closes."""
    w.write(head(Content_Type="text/html", Content_Length=5000) + b"<html><body>" + b"x" * 88)
    await w.drain()
    w.close()
    raise ConnectionResetError  # end this connection's loop


def bomb(coding: str, size: int = 64 * 1024 * 1024) -> Behaviour:
    """A body that inflates to `size` bytes of zeros."""
    if coding == "gzip":
        body = gzip.compress(b"\0" * size, 9)
    else:
        c = zlib.compressobj(9)
        body = c.compress(b"\0" * size) + c.flush()
    return send(body, Content_Type="text/html", Content_Encoding=coding)


def multi_member_gzip(page: bytes) -> Behaviour:
    """RFC 1952: two gzip members, each with half of the page."""
    half = len(page) // 2
    body = gzip.compress(page[:half]) + gzip.compress(page[half:])
    return send(body, Content_Type="text/html; charset=utf-8", Content_Encoding="gzip")
