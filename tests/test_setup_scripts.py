"""The set-up scripts the Makefile runs: system packages with and without apt, and the
choice of PyTorch build. Both run for real, with fake package managers on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PACKAGES = ROOT / "scripts" / "system-packages.sh"
INSTALL_TORCH = ROOT / "scripts" / "install-torch.sh"
BASH = shutil.which("bash") or "/bin/bash"


def fake_bin(tmp_path: Path, tools: dict[str, str]) -> Path:
    """A PATH folder with the real basics and the given tools as shell scripts."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for real in ("uname", "mktemp", "rm", "cat"):
        found = shutil.which(real)
        assert found, real
        (folder / real).symlink_to(found)
    for name, body in tools.items():
        script = folder / name
        script.write_text(f"#!{BASH}\n{body}\n")
        script.chmod(0o755)
    return folder


def run(script: Path, *args: str, path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(script), *args],
        env={"PATH": str(path), "HOME": str(path.parent), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_apt_it_says_what_to_install_and_lets_set_up_go_on(tmp_path: Path) -> None:
    path = fake_bin(tmp_path, {"dnf": "exit 0"})
    done = run(SYSTEM_PACKAGES, "test", path=path)
    assert done.returncode == 0, done.stderr
    assert "no apt-get here" in done.stdout
    assert "sudo dnf install portaudio espeak-ng chromium chromedriver" in done.stdout
    assert "continuing with the Python set-up" in done.stdout
    serve = run(SYSTEM_PACKAGES, "serve", path=path)
    assert "sudo dnf install portaudio\n" in serve.stdout  # no browser to serve


def test_with_apt_only_the_missing_packages_are_installed(tmp_path: Path) -> None:
    log = tmp_path / "apt.log"
    path = fake_bin(
        tmp_path,
        {
            "id": "echo 0",
            # dpkg knows every package but chromium-driver.
            "dpkg": '[ "$2" != chromium-driver ]',
            "apt-get": f'echo "$@" >> {log}',
        },
    )
    done = run(SYSTEM_PACKAGES, "test", path=path)
    assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == ["update -qq", "install -y -qq chromium-driver"]
    log.unlink()
    assert run(SYSTEM_PACKAGES, "serve", path=path).returncode == 0
    assert not log.exists()  # libportaudio2 is there: nothing to do


def fake_python(tmp_path: Path, *, local_wheel: bool) -> tuple[Path, Path]:
    log = tmp_path / "pip.log"
    download = "exit 0" if local_wheel else "exit 1"
    python = tmp_path / "python"
    python.write_text(
        f'#!{BASH}\nif [ "$3" = download ]; then {download}; fi\necho "$@" >> {log}\n'
    )
    python.chmod(0o755)
    return python, log


def test_torch_comes_from_local_disk_then_the_cpu_index_then_the_override(
    tmp_path: Path,
) -> None:
    path = fake_bin(tmp_path, {})
    python, log = fake_python(tmp_path, local_wheel=True)
    assert run(INSTALL_TORCH, str(python), "torch==2.13.0", path=path).returncode == 0
    assert log.read_text().split() == ["-m", "pip", "install", "-q", "torch==2.13.0"]

    log.unlink()
    python, log = fake_python(tmp_path, local_wheel=False)
    done = run(INSTALL_TORCH, str(python), "torch==2.13.0", path=path)
    assert "the CPU build" in done.stdout
    assert "--index-url https://download.pytorch.org/whl/cpu" in log.read_text()

    log.unlink()
    (path / "nvidia-smi").write_text(f"#!{BASH}\nexit 0\n")
    (path / "nvidia-smi").chmod(0o755)
    done = run(INSTALL_TORCH, str(python), "torch==2.13.0", path=path)
    assert "CUDA build" in done.stdout and "--index-url" not in log.read_text()

    log.unlink()
    done = run(INSTALL_TORCH, str(python), path=path, TORCH_INDEX="https://example.test/whl")
    assert "--index-url https://example.test/whl" in log.read_text()


def test_make_setup_runs_the_system_step_before_the_venv(tmp_path: Path) -> None:
    make = shutil.which("make")
    assert make, "make is part of the set-up"
    venv = tmp_path / "venv"
    done = subprocess.run(
        [make, "-n", "setup", f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    system = next(i for i, line in enumerate(lines) if "system-packages.sh serve" in line)
    torch = next(i for i, line in enumerate(lines) if "install-torch.sh" in line)
    venv_step = next(i for i, line in enumerate(lines) if "-m venv" in line)
    assert system < venv_step < torch
