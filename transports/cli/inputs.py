"""Audio inputs named on the command line: a file, ``-`` (stdin) or an http(s) URL.

A file that is not there ends the command at once with one line naming it (exit
code 2, as for any other usage error). A URL is fetched through
:mod:`voxwire.services.url_fetch` with its size cap and deadline; by default only
public addresses, as for a server, unless the user allows private ones.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from voxwire.services.url_fetch import ANY_ADDRESS, PUBLIC_ONLY, UrlFetcher
from voxwire.transports.cli.main import fail

EXIT_USAGE: Final = 2
"""A command line that names something that is not there."""

URL_TIMEOUT_S: Final = 60.0
"""The whole fetch of one URL (every redirect included)."""

STDIN: Final = "-"


def is_url(name: str) -> bool:
    """Whether `name` is an http(s) URL rather than a path."""
    return name.lower().startswith(("http://", "https://"))


def require_files(names: Iterable[str]) -> None:
    """Leave with one line naming the first of `names` that is not ``-``, a URL or an
    existing file (exit code 2), before any model loads."""
    for name in names:
        if name == STDIN or is_url(name):
            continue
        path = Path(name)
        if not path.exists():
            fail(f"{name}: file not found", EXIT_USAGE)
        if path.is_dir():
            fail(f"{name}: is a directory, not an audio file", EXIT_USAGE)


def read_input(name: str, *, max_bytes: int, allow_private_urls: bool = False) -> Path | bytes:
    """What to decode for `name`: the path, stdin's bytes, or the URL's body (at most
    `max_bytes`; a URL that cannot be fetched raises a peer error that says why)."""
    if name == STDIN:
        return sys.stdin.buffer.read(max_bytes + 1)
    if is_url(name):
        fetcher = UrlFetcher(
            max_bytes=max_bytes,
            timeout_s=URL_TIMEOUT_S,
            policy=ANY_ADDRESS if allow_private_urls else PUBLIC_ONLY,
        )
        return asyncio.run(fetcher.fetch(name))
    return Path(name)


def display_name(name: str) -> str:
    """How an input is named in messages."""
    return "<stdin>" if name == STDIN else name
