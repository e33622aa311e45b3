"""The network edge of fetching: SSRF guard, total deadline and size cap, enforced at the socket.

Checking a URL's host before the request is not enough: the name can resolve to another address
by the time the connection is made (DNS rebinding), and every redirect hop or robots.txt request
opens connections of its own. So the check lives in the httpcore network backend: the host is
resolved once, every address it resolves to is vetted, and the socket connects to a vetted IP
literal, never to the name again. TLS still runs against the host name (httpcore passes the
origin host as server_hostname to start_tls), so SNI and certificate checks are unchanged.

The same backend wraps every stream so that no read, write or connect outlives the deadline of
the response being fetched (see ``deadline``): a server that drips its headers or body a byte at
a time cannot hold a worker longer than ``settings.fetch_deadline``. Bodies are read in a stream
and decoded here (not by httpx), so neither a huge body nor a compression bomb is ever held in
memory beyond the cap; httpx's own exceptions are translated to IngestErrors at this edge too.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

from ingest.config import Settings
from ingest.errors import InvalidURL, PermanentError, TransientError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Called for an address the guard would refuse; True lets it through (tests, allow-lists).
Exemption = Callable[[str, IPAddress], bool]

# Ranges that ipaddress.is_global does not treat as non-global on every Python version we support,
# or that are not globally routable in practice.
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # shared address space, carrier-grade NAT (RFC 6598)
        "192.0.0.0/24",  # IETF protocol assignments (RFC 6890)
        "198.18.0.0/15",  # benchmarking (RFC 2544)
        "240.0.0.0/4",  # reserved, and the broadcast address
        "fec0::/10",  # deprecated site-local (RFC 3879), still routed inside some networks
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix (RFC 6052)

# Absolute time.monotonic() by which the current response must be complete, if any.
_DEADLINE: ContextVar[float | None] = ContextVar("ingest_fetch_deadline", default=None)


def is_blocked(ip: IPAddress) -> bool:
    """True for any address that is not a public unicast address (loopback, private, shared...)."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 one reaches that IPv4 host: judge the IPv4 address.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_blocked(embedded)
    if any(ip.version == net.version and ip in net for net in _EXTRA_BLOCKED):
        return True
    # is_global is False for loopback, private, link-local, unspecified, documentation and most
    # reserved ranges, but True for multicast, which is never a web server.
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_link_local


@contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Bound every socket operation inside the block to end by now + seconds; yields that time."""
    ends = time.monotonic() + seconds
    token = _DEADLINE.set(ends)
    try:
        yield ends
    finally:
        _DEADLINE.reset(token)


def _clamp(timeout: float | None, exc: type[Exception]) -> float | None:
    """The socket timeout to use now: the given one, cut to what is left of the deadline."""
    ends = _DEADLINE.get()
    if ends is None:
        return timeout
    left = ends - time.monotonic()
    if left <= 0:
        raise exc("total fetch deadline reached")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A stream whose every operation honours the deadline of the response in progress."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        # server_hostname is the URL's host name, not the IP we connected to: SNI and
        # certificate verification work exactly as without the guard.
        inner = self._inner.start_tls(ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """Resolve, refuse non-public addresses, then connect to a vetted IP literal only."""

    def __init__(self, allow_private: bool = False, exempt: Exemption | None = None) -> None:
        self.allow_private = allow_private
        self.exempt = exempt

    def resolve(self, host: str, port: int) -> list[str]:
        """Every address of host, or PermanentError(blocked_private_address) if any is refused."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise TransientError("dns_error", f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise TransientError("dns_error", f"{host} has no address")
        if not self.allow_private:
            for address in addresses:
                ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 scope id
                if is_blocked(ip) and not (self.exempt is not None and self.exempt(host, ip)):
                    # One bad address refuses the host: a name mixing public and private
                    # addresses is exactly what a rebinding attack looks like.
                    raise PermanentError(
                        "blocked_private_address",
                        f"{host} resolves to {ip}, a private address: set INGEST_ALLOW_PRIVATE_NETWORKS=1 "
                        "for the workers to fetch it, then `ingest retry --reason blocked_private_address`",
                    )
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect to the first reachable vetted address of host (httpcore's backend interface)."""
        # getaddrinfo has no timeout of its own; the system resolver's timeouts bound it.
        options = list(socket_options or ())
        error: Exception = httpcore.ConnectError(f"no address to connect to for {host}")
        for address in self.resolve(host, port):
            try:
                stream = super().connect_tcp(
                    address, port, _clamp(timeout, httpcore.ConnectTimeout), local_address, options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # try the host's next address, as browsers do
                continue
            return _DeadlineStream(stream)
        raise error


def build_client(
    settings: Settings, *, exempt: Exemption | None = None, verify: ssl.SSLContext | bool = True
) -> httpx.Client:
    """An httpx.Client whose every connection goes through the guard and the deadline."""
    # trust_env=False: an HTTP(S)_PROXY from the environment would make the proxy open the
    # connections, after our guard, and it would happily connect to private addresses.
    ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
    transport = httpx.HTTPTransport(verify=ssl_context, trust_env=False)
    # httpx has no public hook for the network backend, so replace the pool HTTPTransport built
    # with an identical one (same TLS context, httpx's default limits) using the guarded backend.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context,
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(settings.allow_private_networks, exempt),
    )
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.connect_timeout,
    )
    return httpx.Client(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,  # followed by hand in ingest.fetch, so every hop is checked
        trust_env=False,
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
    )


class _Decoder:
    """Undo Content-Encoding ourselves, bounded, so a compression bomb cannot outgrow the cap."""

    def __init__(self, header: str | None) -> None:
        codings = [c.strip().lower() for c in (header or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise PermanentError("bad_encoding", f"unsupported Content-Encoding {header!r}")
        # wbits | 32 accepts a zlib or a gzip header.
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32) if codings else None
        self._raw_deflate_ok = codings == ["deflate"]
        # RFC 1952 2.2: a gzip file is a series of members, each a complete gzip stream.
        self._members = codings in (["gzip"], ["x-gzip"])

    def decode(self, data: bytes, max_length: int) -> bytes:
        """Decoded bytes of one chunk, at most max_length of them (max_length >= 1)."""
        if self._zlib is None:
            return data
        out = b""
        while data and len(out) < max_length:
            if self._zlib.eof:
                # What follows a complete member: the next member, or padding (zeros) and junk,
                # which gzip(1) and browsers ignore.
                if not (self._members and data.startswith(b"\x1f")):
                    break
                self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
            out += self._decompress(data, max_length - len(out))
            data = self._zlib.unused_data if self._zlib.eof else b""
        return out

    def _decompress(self, data: bytes, max_length: int) -> bytes:
        assert self._zlib is not None
        try:
            return self._zlib.decompress(data, max_length)
        except zlib.error as exc:
            # RFC 9110 8.4.1.2 says "deflate" is zlib-wrapped, but servers send raw deflate too.
            if self._raw_deflate_ok:
                self._raw_deflate_ok = False
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self._decompress(data, max_length)
            raise PermanentError("bad_encoding", f"corrupt compressed body: {exc}") from None
        finally:
            self._raw_deflate_ok = False  # the raw fallback only makes sense on the first chunk

    def flush(self) -> bytes:
        """Whatever the decompressor still holds."""
        return self._zlib.flush() if self._zlib is not None else b""


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn httpx's exceptions raised inside the block into IngestErrors with stable reasons."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransientError("timeout", f"{url}: {type(exc).__name__} {exc}") from None
    except httpx.ConnectError as exc:
        raise TransientError("connect_error", f"{url}: {exc}") from None
    except httpx.UnsupportedProtocol as exc:
        raise PermanentError("unsupported_scheme", f"{url}: {exc}") from None
    except httpx.RemoteProtocolError as exc:
        raise TransientError("protocol_error", f"{url}: {exc}") from None
    except httpx.TransportError as exc:  # read/write errors: the connection broke mid-way
        raise TransientError("connect_error", f"{url}: {type(exc).__name__} {exc}") from None
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise InvalidURL(f"{url}: {exc}") from None


def read_body(response: httpx.Response, url: str, limit: int, ends_at: float, *, truncate: bool = False) -> bytes:
    """Stream and decode a body: too_large past limit bytes (or cut there), timeout past ends_at."""
    length = response.headers.get("content-length", "")
    if not truncate and length.isdigit() and int(length) > limit:
        raise PermanentError("too_large", f"{url}: Content-Length {length} over {limit} bytes")
    decoder = _Decoder(response.headers.get("content-encoding"))
    body = bytearray()
    with translate_errors(url):
        for chunk in response.iter_raw():
            # Each socket read is already bounded by the deadline; this catches a server that
            # always has the next chunk ready but never finishes.
            if time.monotonic() > ends_at:
                raise TransientError("timeout", f"{url}: body not complete within the deadline")
            body += decoder.decode(chunk, limit - len(body) + 1)
            if len(body) > limit:
                break
        else:
            body += decoder.flush()
    if len(body) > limit:
        if truncate:
            return bytes(body[:limit])
        raise PermanentError("too_large", f"{url}: body over {limit} bytes")
    return bytes(body)
