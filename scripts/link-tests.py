"""Make this checkout's `tests` package importable from any directory in the venv, so
`python -m tests.speech` and `python -m tests.corpus` run anywhere (`make setup` runs
this with the venv's python).

Only the name `tests` is mapped (a finder placed last on sys.meta_path, loaded by a
.pth file): the checkout's other top-level folders stay off sys.path, and a `tests`
package that is found the usual way (the current directory's) still wins.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

FINDER = '''"""Written by voxwire's scripts/link-tests.py: `tests` means {root}/tests."""

import importlib.abc
import importlib.util
import sys

TESTS = {tests!r}


class VoxwireTestsFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tests":
            return None
        return importlib.util.spec_from_file_location(
            "tests", TESTS + "/__init__.py", submodule_search_locations=[TESTS]
        )


sys.meta_path.append(VoxwireTestsFinder())
'''


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    site = Path(sysconfig.get_paths()["purelib"])
    (site / "_voxwire_tests_finder.py").write_text(
        FINDER.format(root=root, tests=str(root / "tests"))
    )
    (site / "voxwire-tests.pth").write_text("import _voxwire_tests_finder\n")
    print(f"tests: python -m tests.<module> imports {root / 'tests'} from any directory")


if __name__ == "__main__":
    main()
