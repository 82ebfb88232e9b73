"""Fetching client-named URLs: non-public addresses are refused before any
connection, redirects are re-checked, and size and time are capped.

No network: successful fetches go to a local HTTP server on 127.0.0.1, which
a test policy allows (the default policy refuses it, as tested below).
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import pytest

from voxwire.engine.errors import PayloadTooLarge
from voxwire.services.url_fetch import (
    PUBLIC_ONLY,
    IPAddress,
    UrlFetcher,
    UrlFetchFailed,
    UrlRefused,
)

PAYLOAD = bytes(range(256)) * 40  # 10 240 bytes
LIMIT = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        port = cast(ThreadingHTTPServer, self.server).server_port
        if self.path == "/audio.bin":
            self._send(200, PAYLOAD)
        elif self.path == "/host":
            self._send(200, (self.headers.get("Host") or "").encode())
        elif self.path == "/redirect":
            self._send(302, headers={"Location": "/audio.bin"})
        elif self.path == "/redirect-absolute":
            self._send(301, headers={"Location": f"http://127.0.0.1:{port}/audio.bin"})
        elif self.path == "/redirect-private":
            self._send(302, headers={"Location": "http://10.1.2.3/secret"})
        elif self.path == "/redirect-metadata":
            self._send(307, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        elif self.path == "/loop":
            self._send(302, headers={"Location": "/loop"})
        elif self.path == "/big-declared":
            self._stream(declared=True)
        elif self.path == "/big-undeclared":
            self._stream(declared=False)
        elif self.path == "/slow":
            time.sleep(3.0)
            self._send(200, PAYLOAD)
        else:
            self._send(404, b"not here")

    def _stream(self, *, declared: bool) -> None:
        """Far more than the limit: 10 MB, declared or sent until the connection closes."""
        self.send_response(200)
        if declared:
            self.send_header("Content-Length", str(10_000_000))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            for _ in range(10_000_000 // 16_384):
                self.wfile.write(b"\x00" * 16_384)
        except OSError:
            pass  # the client hung up at its limit, as it should


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, name="url-fetch-test", daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class AllowLoopbackV4:
    """The public policy, plus 127.0.0.1 (the test server)."""

    def refusal(self, address: IPAddress) -> str | None:
        if address == ipaddress.ip_address("127.0.0.1"):
            return None
        return PUBLIC_ONLY.refusal(address)


def fetcher(**overrides: object) -> UrlFetcher:
    options: dict[str, object] = {
        "max_bytes": LIMIT,
        "timeout_s": 5.0,
        "policy": AllowLoopbackV4(),
    }
    options.update(overrides)
    return UrlFetcher(**options)  # type: ignore[arg-type]


def fetch(url: str, **overrides: object) -> bytes:
    return asyncio.run(fetcher(**overrides).fetch(url))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
    ],
)
def test_the_public_policy_refuses_non_public_addresses(address: str, kind: str) -> None:
    reason = PUBLIC_ONLY.refusal(ipaddress.ip_address(address))
    assert reason is not None and kind in reason


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_the_public_policy_allows_public_addresses(address: str) -> None:
    assert PUBLIC_ONLY.refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/a.wav", "loopback"),
        ("http://localhost:8080/a.wav", "loopback"),  # resolved by getaddrinfo
        ("http://10.0.0.1/a.wav", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/a.wav", "loopback"),
        ("http://[::ffff:127.0.0.1]/a.wav", "loopback"),
        ("https://0.0.0.0/a.wav", "unspecified"),
        ("ftp://example.com/a.wav", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("example.com/a.wav", "only http and https"),
        ("http://user:secret@example.com/a.wav", "credentials"),
        ("http:///a.wav", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
    ],
)
def test_refused_urls_never_connect(url: str, message: str) -> None:
    with pytest.raises(UrlRefused, match=message):
        asyncio.run(UrlFetcher(max_bytes=LIMIT, timeout_s=5.0).fetch(url))


def test_a_name_is_refused_if_any_of_its_addresses_is(http_port: int) -> None:
    async def resolver(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.0.0.7")]

    with pytest.raises(UrlRefused, match="private"):
        fetch(f"http://mixed.example:{http_port}/audio.bin", resolver=resolver)


def test_a_fetch_from_an_allowed_server(http_port: int) -> None:
    assert fetch(f"http://127.0.0.1:{http_port}/audio.bin") == PAYLOAD


def test_it_connects_to_the_checked_address_and_names_the_host(http_port: int) -> None:
    """The resolved, checked address is what is connected to; the name goes in Host."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    body = fetch(f"http://media.example:{http_port}/host", resolver=resolver)
    assert body == f"media.example:{http_port}".encode()
    assert asked == ["media.example"]  # resolved once, not again by a client library


def test_redirects_are_followed_and_checked_again(http_port: int) -> None:
    base = f"http://127.0.0.1:{http_port}"
    assert fetch(base + "/redirect") == PAYLOAD
    assert fetch(base + "/redirect-absolute") == PAYLOAD
    with pytest.raises(UrlRefused, match="private"):
        fetch(base + "/redirect-private")
    with pytest.raises(UrlRefused, match="link-local"):
        fetch(base + "/redirect-metadata")
    with pytest.raises(UrlFetchFailed, match="redirects more than 3 times"):
        fetch(base + "/loop")


def test_the_size_cap_stops_reading(http_port: int) -> None:
    base = f"http://127.0.0.1:{http_port}"
    for path in ("/big-declared", "/big-undeclared"):
        started = time.monotonic()
        with pytest.raises(PayloadTooLarge, match=f"limit of {LIMIT} bytes"):
            fetch(base + path)
        assert time.monotonic() - started < 2.0
    assert fetch(base + "/audio.bin", max_bytes=len(PAYLOAD)) == PAYLOAD
    with pytest.raises(PayloadTooLarge):
        fetch(base + "/audio.bin", max_bytes=len(PAYLOAD) - 1)


def test_a_slow_server_hits_the_total_timeout(http_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(UrlFetchFailed, match=r"longer than 0\.5 s"):
        fetch(f"http://127.0.0.1:{http_port}/slow", timeout_s=0.5)
    assert time.monotonic() - started < 1.5


def test_http_errors_and_unreachable_hosts_fail_clearly(http_port: int) -> None:
    with pytest.raises(UrlFetchFailed, match="HTTP 404"):
        fetch(f"http://127.0.0.1:{http_port}/missing")
    with pytest.raises(UrlFetchFailed, match="could not connect"):
        fetch("http://127.0.0.1:1/audio.bin")

    async def nowhere(host: str, port: int) -> list[IPAddress]:
        raise OSError("no such host")

    with pytest.raises(UrlFetchFailed, match="not found"):
        fetch("http://nowhere.example/a.wav", resolver=nowhere)
