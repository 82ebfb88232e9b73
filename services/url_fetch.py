"""Fetch a URL a client named, without letting it reach into the server's network.

Server-side request forgery is the risk: a client names ``http://169.254.169.254/``
or a host whose name resolves to ``10.0.0.5`` and the server fetches it for
them. So, for every hop (the URL and each redirect, at most three):

* only ``http`` and ``https`` URLs without credentials are accepted;
* the host is resolved once, and the fetch is refused if *any* of its addresses
  is loopback, link-local, private, multicast, reserved, unspecified or
  otherwise not public (IPv4 inside IPv6, as ``::ffff:127.0.0.1``, counts as
  the IPv4 address);
* the connection goes to a checked address itself, with the ``Host`` header and
  TLS SNI/certificate check done for the name, so a second DNS answer (DNS
  rebinding) cannot swap the target;
* redirects are followed by hand and checked like the first URL.

The body is streamed and abandoned as soon as it passes the size cap, and the
whole fetch (all hops) has one deadline. HTTP/1.1 is spoken with h11 on asyncio
streams. Which addresses are allowed is an :class:`AddressPolicy`, so tests can
allow a loopback server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote, urljoin, urlsplit

import h11

from voxwire.engine.errors import PayloadTooLarge, PeerError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""(host, port) -> every address the host resolves to."""

USER_AGENT = "voxwire-url-fetch/1"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_READ_CHUNK = 64 * 1024
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UrlInputsDisabled(PeerError, code="url_inputs_disabled"):
    """The server was not started with URL inputs allowed."""


class UrlRefused(PeerError, code="url_refused"):
    """A URL the server will not fetch (scheme, credentials, or a non-public address)."""


class UrlFetchFailed(PeerError, code="url_fetch_failed"):
    """The URL could not be fetched (not found, unreachable, HTTP error, too slow)."""


class AddressPolicy(Protocol):
    """Decides which resolved addresses may be connected to."""

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` may not be fetched from (e.g. "a loopback address"), or None."""
        ...


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64, compatible)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (int(address) >> 32 == 0 and int(address) > 0xFFFF):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


_KINDS: tuple[tuple[str, str], ...] = (
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_reserved", "a reserved address"),
    ("is_private", "a private address"),
)


class PublicAddressesOnly:
    """The default policy: only globally routable unicast addresses."""

    def refusal(self, address: IPAddress) -> str | None:
        if isinstance(address, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                reason = self.refusal(embedded)
                if reason is not None:
                    return f"{reason} (inside an IPv6 address)"
        for attribute, kind in _KINDS:
            if getattr(address, attribute):
                return kind
        if not address.is_global:
            return "a non-public address"
        return None


PUBLIC_ONLY = PublicAddressesOnly()


class AnyAddress:
    """Every address, loopback and private ones included: for URLs a local user names
    on the command line (never for URLs a network peer names)."""

    def refusal(self, address: IPAddress) -> str | None:
        return None


ANY_ADDRESS = AnyAddress()


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every IPv4 and IPv6 address `host` resolves to (getaddrinfo, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    """The name (IDNA, ASCII) or the IP literal, without brackets."""
    port: int
    path: str
    """Path and query, percent-encoded."""

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _parse(url: str) -> _Target:
    if len(url) > 8192 or any(c in url for c in "\r\n\t\x00"):
        raise UrlRefused("not a valid URL")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UrlRefused("not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        shown = parts.scheme[:20] or "none"
        raise UrlRefused(f"only http and https URLs are fetched (scheme: {shown})")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("URLs with credentials (user:password@) are not fetched")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UrlRefused("the URL's host name is not valid") from None
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    default_port = 443 if parts.scheme == "https" else 80
    return _Target(parts.scheme, host, port or default_port, path)


@dataclass(frozen=True)
class _Redirect:
    location: str


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


@dataclass(frozen=True)
class UrlFetcher:
    """Fetches public http(s) URLs with a size cap, a deadline and checked redirects."""

    max_bytes: int
    timeout_s: float
    max_redirects: int = 3
    policy: AddressPolicy = PUBLIC_ONLY
    resolver: Resolver = resolve_host
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)

    async def fetch(self, url: str) -> bytes:
        """The body of `url` (after at most `max_redirects` checked redirects).

        Raises UrlRefused, UrlFetchFailed or PayloadTooLarge, each with a message
        that is safe to show to whoever named the URL.
        """
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._follow(url)
        except TimeoutError:
            raise UrlFetchFailed(
                f"fetching the URL took longer than {self.timeout_s:g} s"
            ) from None

    async def _follow(self, url: str) -> bytes:
        current = url
        for _hop in range(self.max_redirects + 1):
            target = _parse(current)
            addresses = await self._checked_addresses(target)
            answer = await self._get(target, addresses)
            if isinstance(answer, bytes):
                return answer
            current = urljoin(current, answer.location)
        raise UrlFetchFailed(f"the URL redirects more than {self.max_redirects} times")

    async def _checked_addresses(self, target: _Target) -> list[IPAddress]:
        try:
            addresses: list[IPAddress] = [ipaddress.ip_address(target.host)]
        except ValueError:
            try:
                addresses = await self.resolver(target.host, target.port)
            except (OSError, UnicodeError):
                raise UrlFetchFailed(f"the host {target.host} was not found") from None
        if not addresses:
            raise UrlFetchFailed(f"the host {target.host} was not found")
        for address in addresses:
            reason = self.policy.refusal(address)
            if reason is not None:
                raise UrlRefused(
                    f"refused to fetch from {target.host}: it resolves to {reason}; "
                    "only public addresses are fetched"
                )
        return addresses

    async def _get(self, target: _Target, addresses: list[IPAddress]) -> bytes | _Redirect:
        context: ssl.SSLContext | None = None
        if target.scheme == "https":
            context = self.ssl_context or ssl.create_default_context()
        for address in addresses:
            try:
                reader, writer = await asyncio.open_connection(
                    str(address),
                    target.port,
                    ssl=context,
                    server_hostname=target.host if context is not None else None,
                )
            except ssl.SSLError:
                raise UrlFetchFailed(
                    f"the TLS connection to {target.host} failed (certificate or handshake)"
                ) from None
            except OSError:
                continue
            try:
                return await self._exchange(reader, writer, target)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
        raise UrlFetchFailed(f"could not connect to {target.host} port {target.port}")

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: _Target
    ) -> bytes | _Redirect:
        connection = h11.Connection(our_role=h11.CLIENT)
        request = h11.Request(
            method="GET",
            target=target.path,
            headers=[
                ("Host", target.host_header),
                ("User-Agent", USER_AGENT),
                ("Accept", "*/*"),
                ("Accept-Encoding", "identity"),
                ("Connection", "close"),
            ],
        )
        try:
            writer.write(
                (connection.send(request) or b"") + (connection.send(h11.EndOfMessage()) or b"")
            )
            await writer.drain()
            return await self._read_answer(connection, reader)
        except h11.ProtocolError:
            raise UrlFetchFailed("the server's answer is not valid HTTP") from None
        except OSError:
            raise UrlFetchFailed(f"the connection to {target.host} failed") from None

    async def _read_answer(
        self, connection: h11.Connection, reader: asyncio.StreamReader
    ) -> bytes | _Redirect:
        body = bytearray()
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(_READ_CHUNK))
            elif isinstance(event, h11.Response):
                answer = self._check_response(event)
                if answer is not None:
                    return answer
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_bytes:
                    raise self._too_large()
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                raise UrlFetchFailed("the server closed the connection before the end")
            # InformationalResponse (1xx): wait for the real answer.

    def _check_response(self, response: h11.Response) -> _Redirect | None:
        status = response.status_code
        if status in REDIRECT_STATUSES:
            location = _header(response.headers, b"location")
            if not location:
                raise UrlFetchFailed(f"the server answered HTTP {status} without a Location")
            return _Redirect(location.decode("latin-1").strip())
        if not 200 <= status < 300:
            raise UrlFetchFailed(f"the server answered HTTP {status}")
        length = _header(response.headers, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            raise self._too_large()
        return None

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the URL's content is more than the limit of {self.max_bytes} bytes"
        )
