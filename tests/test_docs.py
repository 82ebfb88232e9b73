"""The documentation cannot rot: every block of README.md and docs/*.md that is marked
runnable runs and exits 0, and every relative link points to a file (and heading) that
exists.

The mark is an HTML comment (invisible on GitHub) on the line before a fence:

    <!-- runnable -->           the block runs on its own
    <!-- runnable: server -->   the block needs a running `voxwire serve`

Fences are ```sh / ```bash / ```shell (the block is a bash script), ```console (the
lines that start with `$ ` are the script, continued by a trailing backslash; the other
lines are shown output) and ```python (run with the venv's python).

The blocks of one page run in order, in one temporary directory, so a page may make a
file in one block and use it in the next. That directory looks like the root of a
checkout to read from (`.venv`, `examples` and `tests` are links to this one) while
everything a block writes stays in it. The venv's bin is first on PATH, so `voxwire`
is the installed command. `curl` fails on an HTTP error status (`--fail-with-body`).

For `server` blocks a live server (tests/live_server.py) stands in for the `make serve`
of the quick start: the documented address `127.0.0.1:8000` / `localhost:8000` is
rewritten to the server's port, and VOXWIRE_URL (the default of `voxwire mic`) names
its Realtime endpoint.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live_server import LiveServer, live_server
from voxwire.services.runtime import Runtime
from voxwire.transports.http.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINKED_INTO_WORKDIR = (".venv", "examples", "tests")
DOCUMENTED_ADDRESS = re.compile(r"(?:127\.0\.0\.1|localhost):8000\b")
BLOCK_TIMEOUT_S = 300
MARK = re.compile(r"^<!--\s*runnable(?::\s*(?P<needs>\w+))?\s*-->\s*$")
FENCE = re.compile(r"^```(?P<lang>\w*)\s*$")
SHELLS = {"sh", "bash", "shell"}
LANGUAGES = SHELLS | {"console", "python"}
LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")
pytestmark = pytest.mark.slow


def shown(page: Path) -> str:
    """A page's name in messages: relative to the checkout when it is in it."""
    return page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else str(page)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    """1-based line of the opening fence."""
    language: str
    needs_server: bool
    code: str

    @property
    def where(self) -> str:
        return f"{shown(self.page)}:{self.line}"

    def script(self) -> str:
        """What runs: the code itself, or a console block's `$ ` commands."""
        if self.language != "console":
            return self.code
        commands: list[str] = []
        continued = False
        for line in self.code.splitlines():
            if line.startswith("$ ") or continued:
                commands.append(line[2:] if line.startswith("$ ") and not continued else line)
                continued = line.endswith("\\")
        return "\n".join(commands) + "\n"


def marked_blocks(page: Path) -> list[Block]:
    """The runnable blocks of `page`, in order; a malformed mark is an error."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    for index, line in enumerate(lines):
        mark = MARK.match(line)
        if mark is None:
            continue
        needs = mark.group("needs")
        where = f"{shown(page)}:{index + 1}"
        assert needs in (None, "server"), f"{where}: unknown mark 'runnable: {needs}'"
        fence = FENCE.match(lines[index + 1]) if index + 1 < len(lines) else None
        assert fence and fence.group("lang") in LANGUAGES, (
            f"{where}: a runnable mark must precede a fence of {sorted(LANGUAGES)}"
        )
        end = next((j for j in range(index + 2, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"{where}: the fence is never closed"
        blocks.append(
            Block(
                page=page,
                line=index + 2,
                language=fence.group("lang"),
                needs_server=needs == "server",
                code="\n".join(lines[index + 2 : end]) + "\n",
            )
        )
    return blocks


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading id of a Markdown page (GitHub numbers repeated ones -1, -2, ...)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"^#{1,6} (.+)$", line)
        if fenced or heading is None:
            continue
        anchor = github_anchor(heading.group(1))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def link_problems(page: Path, root: Path = ROOT) -> list[str]:
    """Relative links of `page` (in the checkout `root`) whose file or heading does not
    exist."""
    problems: list[str] = []
    fenced = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        for match in LINK.finditer(line):
            target = match.group("target")
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            where = f"{page.relative_to(root)}:{number}: {target}"
            if not linked.exists():
                problems.append(f"{where}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{where}: no such heading")
    return problems


def test_every_page_is_found() -> None:
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    assert {"README.md", "docs/architecture.md", "docs/benchmarks.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=shown)
def test_relative_links_point_to_existing_files_and_headings(page: Path) -> None:
    assert not link_problems(page)


def test_the_link_check_sees_a_missing_file_and_heading(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    fake = tmp_path / "docs" / "page.md"
    fake.write_text(
        "# Title\n[ok](#title) [bad](#nothing) [gone](missing.md) [web](https://x.org/)\n"
        "[up](../docs/page.md#title)\n```\n[in code](ignored.md)\n```\n"
    )
    problems = link_problems(fake, root=tmp_path)
    assert [p.rsplit(": ", 1)[1] for p in problems] == ["no such heading", "no such file"]


def test_marks_find_their_blocks_and_console_blocks_run_only_their_commands(
    tmp_path: Path,
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- runnable: server -->\n```console\n$ echo one \\\n  two\nshown output\n"
        "$ echo three\n```\n\n```sh\nnot marked\n```\n<!-- runnable -->\n```python\nprint(1)\n```\n"
    )
    console, python = marked_blocks(page)
    assert (console.line, console.language, console.needs_server) == (2, "console", True)
    assert console.script() == "echo one \\\n  two\necho three\n"
    assert (python.line, python.language, python.needs_server, python.script()) == (
        13,
        "python",
        False,
        "print(1)\n",
    )


@pytest.mark.parametrize(
    "text",
    [
        "<!-- runnable -->\nno fence\n",
        "<!-- runnable -->\n```js\nx\n```\n",
        "<!-- runnable: gpu -->\n```sh\nx\n```\n",
        "<!-- runnable -->\n```sh\nnever closed\n",
    ],
)
def test_a_malformed_mark_is_an_error(tmp_path: Path, text: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(text)
    with pytest.raises(AssertionError, match=r"page\.md:1"):
        marked_blocks(page)


def test_the_quick_start_is_marked_runnable() -> None:
    blocks = marked_blocks(ROOT / "README.md")
    text = "".join(block.code for block in blocks)
    for step in ("voxwire speak", "/v1/audio/transcriptions", "OpenAI(", "voxwire mic -i"):
        assert step in text, f"the README's quick start step {step!r} is not runnable"
    assert any(block.needs_server for block in blocks)


@pytest.fixture(scope="module")
def docs_server(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server with its own data directory (workflows, speakers)."""
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("docs-data"))
    with live_server(runtime, settings) as live:
        yield live


def run_block(block: Block, workdir: Path, server: LiveServer | None) -> None:
    script = block.script()
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "HF_HUB_OFFLINE": "1",
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if server is not None:
        address = f"127.0.0.1:{server.port}"
        script = DOCUMENTED_ADDRESS.sub(address, script)
        env["VOXWIRE_URL"] = f"ws://{address}/v1/realtime?model=voxwire"
    if block.language == "python":
        source = workdir / f"block_{block.line}.py"
        source.write_text(script, encoding="utf-8")
        command = [sys.executable, source.name]
    else:
        prelude = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n'
        command = ["bash", "-c", prelude + script]
    try:
        result = subprocess.run(
            command,
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"{block.where}: still running after {BLOCK_TIMEOUT_S} s\n{timeout.output}")
    print(f"--- {block.where} ({block.language})\n{result.stdout}{result.stderr}")  # -rP shows it
    assert result.returncode == 0, (
        f"{block.where} exited {result.returncode}\n--- script\n{script}"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    )


@pytest.mark.parametrize(
    "page",
    [page for page in PAGES if marked_blocks(page)],
    ids=shown,
)
def test_runnable_blocks_run(page: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    blocks = marked_blocks(page)
    server: LiveServer | None = None
    if any(block.needs_server for block in blocks):
        server = request.getfixturevalue("docs_server")
    for name in LINKED_INTO_WORKDIR:
        (tmp_path / name).symlink_to(ROOT / name)
    for block in blocks:
        run_block(block, tmp_path, server if block.needs_server else None)
    if server is not None:
        server.check_books()  # the server's counters balance after the page's sessions
