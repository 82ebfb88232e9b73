"""Opt-in record of what Python holds, for hunting memory growth (docs/soak.md).

``VOXWIRE_MEMORY_PROBE=FILE voxwire serve`` appends one JSON line a minute to FILE: the
live objects by type (the 25 most numerous), the count and bytes of numpy arrays, and
the gc generations. Counting walks every object (about half a second for a loaded
server, with the GIL held), so it is for diagnosis, not for production.
"""

from __future__ import annotations

import collections
import gc
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

ENVIRONMENT_VARIABLE = "VOXWIRE_MEMORY_PROBE"
EVERY_S = 60.0
TOP_TYPES = 25


def start_memory_probe() -> Path | None:
    """Start the probe thread when the environment asks for it; the file it writes."""
    target = os.environ.get(ENVIRONMENT_VARIABLE)
    if not target:
        return None
    path = Path(target)
    threading.Thread(target=_probe_forever, args=(path,), name="memory-probe", daemon=True).start()
    log.warning("memory probe on: one line a minute to %s (costs ~0.5 s a minute)", path)
    return path


def snapshot() -> dict[str, object]:
    """Tracked objects by type, allocated blocks and gc counts, now."""
    started = time.monotonic()
    objects = gc.get_objects()
    types = collections.Counter(type(o).__qualname__ for o in objects)
    record = {
        "time": time.time(),
        "objects": len(objects),
        "top_types": types.most_common(TOP_TYPES),
        "allocated_blocks": sys.getallocatedblocks(),
        "gc_counts": gc.get_count(),
    }
    del objects
    record["seconds"] = round(time.monotonic() - started, 3)
    return record


def _probe_forever(path: Path) -> None:
    while True:
        time.sleep(EVERY_S)
        try:
            with path.open("a") as out:
                out.write(json.dumps(snapshot()) + "\n")
        except OSError as exc:
            log.warning("memory probe cannot write %s: %s", path, exc)
            return
