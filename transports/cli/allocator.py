"""Cap glibc's malloc arenas for a long-running server.

glibc gives each thread that allocates under contention its own 64 MB arena (up to
8 per core), and memory freed in an arena is rarely returned to the system. A server
with ~30 threads (model workers, onnxruntime and CTranslate2 pools, the asyncio
executor) then climbs in steps for an hour (docs/soak.md, run 1: +36 % RSS) although
nothing leaks. Two arenas keep the same work within a few percent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from typing import Final

log = logging.getLogger(__name__)

M_ARENA_MAX: Final = -8
"""mallopt's parameter number for the arena cap (glibc malloc.h)."""

SERVER_ARENAS: Final = 2


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Cap the process's malloc arenas at `arenas`; True when the cap was set.

    Call before the server starts its threads. An explicit ``MALLOC_ARENA_MAX`` in the
    environment wins (glibc has already applied it); on a C library without mallopt
    (musl, macOS) nothing happens.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        log.debug("malloc arenas left to MALLOC_ARENA_MAX=%s", os.environ["MALLOC_ARENA_MAX"])
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(M_ARENA_MAX, arenas) != 1:
        return False
    log.debug("malloc arenas capped at %d", arenas)
    return True
