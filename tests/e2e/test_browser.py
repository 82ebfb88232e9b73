"""The browser page against a live voxwire server, in Debian's headless Chromium.

Chromium's fake microphone plays a WAV of known sentences spoken by Piper (and loops
it); the test presses Start, reads the transcripts off the page, over WebRTC and over
the WebSocket, and saves a screenshot of each run under test-artifacts/. Errors the
person must see (microphone refused, server unreachable) are read off the page too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests import speech
from tests.e2e.console import wer
from tests.live_server import LiveServer, live_server
from voxwire.services.runtime import Runtime

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TEXTS = speech.SENTENCES[:2]
REFERENCE = " ".join(TEXTS)
FINALS = "#transcript li.user .text.final"


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sentences, 48 kHz mono PCM16: what Chromium's fake microphone says. The
    pauses let each spoken reply finish first: Chromium's echo canceller (on, as on the
    page) mutes a microphone that speaks while the reply plays on the WebRTC track."""
    audio = speech.utterances(list(TEXTS), gap_s=4.0, lead_s=0.5, tail_s=4.0, rate=48_000)
    return speech.write_wav(tmp_path_factory.mktemp("mic") / "speech.wav", audio, 48_000)


@pytest.fixture(scope="module")
def served(server: LiveServer) -> LiveServer:
    """The shared server with the voice for replies loaded, as `voxwire serve` has it."""
    runtime = server.runtime
    server.call(runtime.ensure_loaded(runtime.resolve(None, "text-to-speech")), timeout=60)
    return server


@contextlib.contextmanager
def chromium(wav: Path | None = None, *, block_microphone: bool = False) -> Iterator[WebDriver]:
    """Headless Chromium whose microphone plays `wav` (nothing is downloaded: the Debian
    binary and driver are named explicitly)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1000,900",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream",
        "--allow-loopback-in-peer-connection",
    ):
        options.add_argument(argument)
    if block_microphone:
        options.add_experimental_option(
            "prefs", {"profile.default_content_setting_values.media_stream_mic": 2}
        )
    else:
        options.add_argument("--use-fake-ui-for-media-stream")
    if wav is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={wav}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def finals(driver: WebDriver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, FINALS)]


def best_window(texts: list[str], reference: str) -> tuple[float, str]:
    """The run of consecutive finals closest to `reference` (the file loops, and its
    first words may be spoken before the connection is up)."""
    best = (1.0, "")
    for start in range(len(texts)):
        for stop in range(start + 1, min(len(texts), start + 4) + 1):
            hypothesis = " ".join(texts[start:stop])
            best = min(best, (wer(reference, hypothesis), hypothesis))
    return best


def wait_for(driver: WebDriver, check: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check(driver)
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"the page did not show {what} within {within:g} s")


def screenshot(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["webrtc", "websocket"])
def test_page_transcribes_the_microphone(
    served: LiveServer, microphone_wav: Path, mode: str
) -> None:
    server = served
    with chromium(microphone_wav) as driver:
        driver.get(server.http_url + "/")
        if mode == "websocket":
            driver.find_element(By.CSS_SELECTOR, 'input[name="mode"][value="websocket"]').click()
        driver.find_element(By.ID, "start").click()
        label = "WebRTC" if mode == "webrtc" else "WebSocket"
        wait_for(
            driver,
            lambda d: d.find_element(By.ID, "status").text == f"live ({label})",
            20,
            "the live status",
        )

        def transcribed(d: WebDriver) -> tuple[float, str] | None:
            score = best_window(finals(d), REFERENCE)
            return score if score[0] <= 0.15 else None

        try:
            error_rate, text = wait_for(driver, transcribed, 60, "the file's transcript")
        finally:
            shot = screenshot(driver, f"browser-{mode}")
            print(f"{mode} finals: {finals(driver)}")
        assert shot.stat().st_size > 0
        assert error_rate <= 0.15, text
        assert driver.find_element(By.ID, "error").get_attribute("hidden") is not None
        badges = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".badge")]
        assert any(b.startswith("sentiment: ") for b in badges), badges
        peak = driver.find_element(By.ID, "level").get_attribute("data-peak")
        assert float(peak or 0) > 20  # the meter showed the speech
        # The spoken replies were played: the reply track in <audio> (WebRTC), or
        # response.output_audio.delta chunks through Web Audio (WebSocket).
        played = driver.execute_script(
            "const a = document.getElementById('remote');"
            "return [a.currentTime, Number(a.dataset.chunksPlayed || 0)];"
        )
        assert played[0] > 1.0 if mode == "webrtc" else played[1] > 0, played
        driver.find_element(By.ID, "stop").click()
        assert driver.find_element(By.ID, "status").text == "stopped"
    server.wait_until_idle(timeout=15)


def test_a_refused_microphone_is_shown(server: LiveServer) -> None:
    with chromium(block_microphone=True) as driver:
        driver.get(server.http_url + "/")
        driver.find_element(By.ID, "start").click()
        message = wait_for(
            driver, lambda d: d.find_element(By.ID, "error").text, 10, "an error message"
        )
        assert "Microphone access was refused" in message
        assert driver.find_element(By.ID, "start").is_enabled()
    assert server.slots_in_use() == 0


def test_an_unreachable_server_is_shown(runtime: Runtime, microphone_wav: Path) -> None:
    with chromium(microphone_wav) as driver:
        with live_server(runtime) as gone:
            driver.get(gone.http_url + "/")
        for mode in ("webrtc", "websocket"):
            driver.find_element(By.CSS_SELECTOR, f'input[name="mode"][value="{mode}"]').click()
            driver.find_element(By.ID, "start").click()
            message = wait_for(
                driver, lambda d: d.find_element(By.ID, "error").text, 15, "an error message"
            )
            assert "Cannot reach the voxwire server" in message, message
            assert driver.find_element(By.ID, "status").text == "stopped"
            assert driver.find_element(By.ID, "start").is_enabled()
