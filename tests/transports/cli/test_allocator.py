"""`voxwire serve` caps glibc's malloc arenas (transports/cli/allocator.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

# Sixteen threads allocate at once through ctypes (which releases the GIL), which makes
# glibc open a new arena per contended thread; each arena beyond the main one is a heap
# mapped at a 64 MiB boundary, counted from /proc/self/maps.
PROBE = textwrap.dedent(
    """
    import ctypes, sys, threading
    from voxwire.transports.cli.allocator import limit_malloc_arenas
    print(limit_malloc_arenas(int(sys.argv[1])))
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    barrier = threading.Barrier(16)
    held = []
    def work():
        barrier.wait()
        for _ in range(20000):
            libc.free(libc.malloc(1000))
        held.append(libc.malloc(100))
    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads: t.start()
    for t in threads: t.join()
    heaps = 0
    for line in open("/proc/self/maps"):
        fields = line.split()
        start = int(fields[0].split("-")[0], 16)
        anonymous = len(fields) < 6
        if start % (64 << 20) == 0 and fields[1].startswith("rw") and anonymous:
            heaps += 1
    print(heaps)
    """
)


def _probe(arenas: int, **env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(arenas)],
        capture_output=True,
        text=True,
        env=environ,
        check=True,
        timeout=60,
    )
    capped, heaps = done.stdout.split()
    return capped, int(heaps)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_cap_holds_under_thread_contention() -> None:
    capped, heaps = _probe(2)
    assert capped == "True"
    assert heaps <= 1  # the main arena (brk) plus at most one mapped heap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_an_explicit_environment_setting_wins() -> None:
    capped, heaps = _probe(2, MALLOC_ARENA_MAX="4")
    assert capped == "False"
    assert heaps <= 3
