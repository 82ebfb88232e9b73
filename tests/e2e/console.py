"""Run the installed `voxwire` console script as a user would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def bench(kind: str, *args: str | Path, output: Path, timeout: float = 180) -> tuple[str, Any]:
    """`voxwire bench KIND ARGS --output OUTPUT`, which must succeed without a traceback:
    what it printed and the JSON it wrote."""
    result = run("bench", kind, *args, "--output", output, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout, json.loads(output.read_text())


def is_number(value: object) -> bool:
    """A JSON number (not a bool, which Python counts as an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def normalise(text: str) -> str:
    text = re.sub(r"[^\w\s']", " ", text.lower())
    return " ".join(text.split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))
