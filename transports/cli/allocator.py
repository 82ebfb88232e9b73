"""Keep glibc's malloc from hoarding freed memory in a long-running server.

glibc makes a server that frees what it allocates still climb for an hour
(docs/soak.md): each thread that allocates under contention gets its own 64 MB arena
(up to 8 per core, ~30 threads here), and free pages inside a heap stay resident until
something trims them. The server caps the arenas and trims the heaps once a minute.
Fixing the mmap threshold as well (so large blocks are mapped and unmapped) held memory
down further but cost Whisper ~15 % more CPU in page faults, so it is not done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import threading
import time
from typing import Final

log = logging.getLogger(__name__)

M_ARENA_MAX: Final = -8
"""mallopt's parameter number for the arena cap (glibc malloc.h)."""

SERVER_ARENAS: Final = 2
TRIM_EVERY_S: Final = 60.0


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library with mallopt and malloc_trim typed, loaded once; None if not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    return libc


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Cap the process's malloc arenas at `arenas`; True when the cap was set.

    Call before the server starts its threads. An explicit ``MALLOC_ARENA_MAX`` in the
    environment wins (glibc has already applied it); on a C library without mallopt
    nothing happens.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        log.debug("malloc arenas left to MALLOC_ARENA_MAX=%s", os.environ["MALLOC_ARENA_MAX"])
        return False
    libc = _libc()
    if libc is None or libc.mallopt(M_ARENA_MAX, arenas) != 1:
        return False
    log.debug("malloc arenas capped at %d", arenas)
    return True


def tune_server_allocator() -> bool:
    """Cap the arenas and start trimming the heaps every minute; True on glibc.

    ``MALLOC_ARENA_MAX`` in the environment wins over voxwire's cap.
    """
    libc = _libc()
    if libc is None:
        return False
    limit_malloc_arenas()
    threading.Thread(
        target=_trim_forever, args=(libc, TRIM_EVERY_S), name="malloc-trim", daemon=True
    ).start()
    return True


def _trim_forever(libc: ctypes.CDLL, every_s: float) -> None:
    # malloc_trim(0) also gives back free pages inside the heaps (not only their tops);
    # ctypes releases the GIL for the call, so Python threads run on meanwhile.
    while True:
        time.sleep(every_s)
        libc.malloc_trim(0)
