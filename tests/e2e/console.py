"""Run the installed `voxwire` console script as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jiwer

VOXWIRE = Path(sys.executable).parent / "voxwire"


def run(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the console script with the hub switched off, as on a machine without network."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(VOXWIRE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def normalise(text: str) -> str:
    text = re.sub(r"[^\w\s']", " ", text.lower())
    return " ".join(text.split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))
