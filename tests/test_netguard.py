"""SSRF guard: which addresses are refused, and that the refusal happens at connect time on every hop."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis

from ingest.config import Settings
from ingest.errors import PermanentError, TransientError
from ingest.fetch import Fetcher
from ingest.netguard import GuardedBackend, IPAddress, build_client, is_blocked
from tests.httpsite import Site

HTML = "<html><body><p>ok</p></body></html>"


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("127.0.0.1", True),  # loopback
        ("127.255.0.9", True),
        ("10.1.2.3", True),  # RFC 1918
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # link-local: cloud metadata endpoints
        ("100.64.0.1", True),  # shared address space (CGNAT)
        ("0.0.0.0", True),  # unspecified
        ("224.0.0.1", True),  # multicast
        ("239.255.255.250", True),
        ("240.0.0.1", True),  # reserved
        ("255.255.255.255", True),  # broadcast
        ("192.0.0.9", True),  # IETF protocol assignments
        ("192.0.2.1", True),  # documentation
        ("198.18.0.1", True),  # benchmarking
        ("::1", True),
        ("::", True),
        ("fe80::1", True),
        ("fc00::1", True),  # unique local
        ("fec0::1", True),  # deprecated site-local
        ("ff02::1", True),  # multicast
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", True),
        ("::127.0.0.1", True),  # IPv4-compatible (deprecated)
        ("64:ff9b::7f00:1", True),  # NAT64 of 127.0.0.1
        ("64:ff9b:1::a00:1", True),  # local-use NAT64
        ("2002:7f00:1::", True),  # 6to4 of 127.0.0.1
        ("2001:db8::1", True),  # documentation
        ("8.8.8.8", False),
        ("1.1.1.1", False),
        ("93.184.215.14", False),
        ("2606:4700:4700::1111", False),
        ("::ffff:8.8.8.8", False),  # IPv4-mapped public address
        ("64:ff9b::808:808", False),  # NAT64 of a public address
        ("2002:808:808::1", False),  # 6to4 of a public address
    ],
)
def test_is_blocked(address: str, blocked: bool) -> None:
    assert is_blocked(ipaddress.ip_address(address)) is blocked


@pytest.fixture
def guarded(settings: Settings) -> Settings:
    """Test settings with the guard on, as in production."""
    return settings.model_copy(update={"allow_private_networks": False})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_targets_are_refused_before_any_request(
    guarded: Settings, r: redis.Redis, site: Site, host: str
) -> None:
    site.add("/a", HTML)
    url = site.url("/a").replace("127.0.0.1", host)
    with Fetcher(guarded, r) as fetcher, pytest.raises(PermanentError) as err:
        fetcher.fetch_article(url)
    assert err.value.reason == "blocked_private_address"
    assert host in err.value.detail and "127.0.0.1" in err.value.detail
    assert "INGEST_ALLOW_PRIVATE_NETWORKS=1" in err.value.detail  # the setting that would allow it
    assert site.requests == []  # not even robots.txt


def test_redirect_to_a_private_address_is_refused(guarded: Settings, r: redis.Redis, site: Site) -> None:
    # Only loopback exists here, so the first hop is let through by name: the guard stays on for
    # every other host, and the redirect target "localhost" resolves to the same 127.0.0.1.
    def only_the_ip_literal(host: str, ip: IPAddress) -> bool:
        return host == "127.0.0.1"

    client = build_client(guarded, exempt=only_the_ip_literal)
    site.add("/start", "", status=302, headers={"Location": site.url("/secret").replace("127.0.0.1", "localhost")})
    site.add("/secret", HTML)
    with client, Fetcher(guarded, r, client=client) as fetcher:
        with pytest.raises(PermanentError) as err:
            fetcher.fetch_article(site.url("/start"))
        assert err.value.reason == "blocked_private_address"
        assert "localhost resolves to 127.0.0.1" in err.value.detail
        assert site.hits("/start") == 1 and site.hits("/secret") == 0
        # The exempted host itself is still reachable: only the hop to "localhost" was refused.
        assert fetcher.fetch_article(site.add("/ok", HTML)).body == HTML.encode()


def test_backend_connects_to_the_vetted_address(site: Site) -> None:
    port = int(site.base.rsplit(":", 1)[1])
    assert GuardedBackend(allow_private=True).resolve("localhost", port) == ["127.0.0.1"]
    stream = GuardedBackend(allow_private=True).connect_tcp("localhost", port, timeout=2)
    try:
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
    finally:
        stream.close()
    with pytest.raises(PermanentError):
        GuardedBackend().connect_tcp("localhost", port, timeout=2)
    with pytest.raises(TransientError) as err:
        GuardedBackend().resolve("no-such-host.invalid", 80)
    assert err.value.reason == "dns_error"


def test_client_timeouts_come_from_settings(settings: Settings) -> None:
    custom = settings.model_copy(update={"connect_timeout": 1.5, "read_timeout": 7.0})
    with build_client(custom) as client:
        assert (client.timeout.connect, client.timeout.read) == (1.5, 7.0)
        assert client.follow_redirects is False and client.trust_env is False
        assert client.headers["user-agent"] == custom.user_agent


def test_proxy_environment_is_ignored(
    settings: Settings, r: redis.Redis, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would open the connections itself, behind the guard's back.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    with Fetcher(settings, r) as fetcher:
        assert fetcher.fetch_article(site.add("/p", HTML)).status == 200


# ---- TLS: we connect to an IP, but SNI and the certificate check use the host name ----


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path, list[str | None]]]:
    """An HTTPS server on 127.0.0.1 whose self-signed certificate names only DNS:localhost."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    seen_sni: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = HTML.encode() if self.path == "/" else b"no"
            self.send_response(200 if self.path == "/" else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def remember_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        seen_sni.append(name)

    context.sni_callback = remember_sni
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1], cert, seen_sni
    server.shutdown()
    server.server_close()


def test_tls_verifies_the_host_name_not_the_ip(
    settings: Settings, r: redis.Redis, tls_server: tuple[int, Path, list[str | None]]
) -> None:
    port, cert, seen_sni = tls_server
    trust = ssl.create_default_context(cafile=str(cert))
    with build_client(settings, verify=trust) as client, Fetcher(settings, r, client=client) as fetcher:
        got = fetcher.fetch_article(f"https://localhost:{port}/")
        assert got.body == HTML.encode()
        assert seen_sni and set(seen_sni) == {"localhost"}
        # The same server by IP: the certificate does not name 127.0.0.1, so TLS must fail.
        with pytest.raises(TransientError) as err:
            fetcher.fetch_article(f"https://127.0.0.1:{port}/")
    assert err.value.reason == "connect_error"
    assert "CERTIFICATE_VERIFY_FAILED" in err.value.detail


def test_multi_member_gzip_is_decoded_whole_however_the_chunks_fall() -> None:
    import gzip

    from ingest.netguard import _Decoder

    body = gzip.compress(b"<html><p>first member</p>") + gzip.compress(b"<p>second member</p></html>") + b"\0" * 4
    for split in range(1, len(body)):
        decoder = _Decoder("gzip")
        out = decoder.decode(body[:split], 10_000) + decoder.decode(body[split:], 10_000) + decoder.flush()
        assert out == b"<html><p>first member</p><p>second member</p></html>"


def test_the_cap_counts_every_member_decoded() -> None:
    import gzip

    from ingest.netguard import _Decoder

    member = gzip.compress(b"a" * 600)
    decoder = _Decoder("gzip")
    assert len(decoder.decode(member * 4, 1001)) == 1001  # stops one byte past a 1000-byte cap
