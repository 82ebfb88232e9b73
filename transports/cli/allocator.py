"""Keep glibc's malloc from hoarding freed memory in a long-running server.

Two habits of glibc make a server that frees everything it allocates still climb for
an hour (docs/soak.md): each thread that allocates under contention gets its own 64 MB
arena (up to 8 per core, ~30 threads here), and the mmap threshold rises to the size of
the largest block freed (up to 32 MB), after which audio buffers and model tensors are
carved from the heaps, where a small live block pins the pages around it. The server
caps the arenas, fixes the threshold (large blocks are mapped and unmapped, so freeing
them returns the memory) and trims the heaps now and then.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from typing import Final

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
M_ARENA_MAX: Final = -8
"""mallopt parameter numbers (glibc malloc.h)."""

SERVER_ARENAS: Final = 2
MMAP_THRESHOLD_BYTES: Final = 256 * 1024
TRIM_THRESHOLD_BYTES: Final = 4 * 1024 * 1024
TRIM_EVERY_S: Final = 60.0


def _libc() -> ctypes.CDLL | None:
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
    """Cap the arenas, fix the mmap and trim thresholds, and start trimming every minute.

    True when glibc took the settings. ``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``
    and ``MALLOC_TRIM_THRESHOLD_`` in the environment each win over voxwire's value.
    """
    libc = _libc()
    if libc is None:
        return False
    limit_malloc_arenas()
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
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
