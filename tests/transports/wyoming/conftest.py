from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.transports.wyoming.live import LiveWyoming, live_wyoming
from voxwire.services.runtime import Runtime


@pytest.fixture(scope="module")
def wyoming(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveWyoming]:
    """A Wyoming server with the default limits, on the run's shared models."""
    with live_wyoming(runtime, tmp_path_factory.mktemp("wyoming")) as live:
        yield live
