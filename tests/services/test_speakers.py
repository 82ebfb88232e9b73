"""The speakers API over real sockets on the real encoder: enrol, extend, list, identify,
delete, persistence across a restart, and every error path; the store and the matching
alone."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests import speech
from tests.live_server import LiveServer, live_server
from tests.speech import pcm16_wav_bytes
from voxwire.services.runtime import Runtime
from voxwire.services.speakers import (
    UNKNOWN,
    SpeakerConflict,
    SpeakerSnapshot,
    SpeakerStore,
    check_name,
)
from voxwire.transports.http.settings import ServerSettings

JOE_1 = "Good morning, this is my voice for the enrolment."
JOE_2 = "I would like a cup of coffee with milk and sugar."
JOE_3 = "The meeting has been moved to Thursday afternoon."


@pytest.fixture(scope="module")
def spk_server(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("speakers"))
    with live_server(runtime, settings) as live:
        yield live


def wav(audio: npt.NDArray[np.float32]) -> bytes:
    return pcm16_wav_bytes(audio)


def enrol(base_url: str, name: str | None, data: bytes) -> httpx.Response:
    fields = {} if name is None else {"name": name}
    files = {"file": ("voice.wav", data, "audio/wav")}
    return httpx.post(base_url + "/v1/speakers", data=fields, files=files, timeout=60)


def identify(base_url: str, data: bytes, **fields: str) -> httpx.Response:
    return httpx.post(
        base_url + "/v1/speakers/identify",
        data=fields,
        files={"file": ("voice.wav", data, "audio/wav")},
        timeout=60,
    )


def listed(base_url: str) -> list[dict[str, Any]]:
    response = httpx.get(base_url + "/v1/speakers", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    return body["data"]  # type: ignore[no-any-return]


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


def test_enrol_extend_identify_list_delete(spk_server: LiveServer) -> None:
    url = spk_server.http_url
    first = enrol(url, "joe", wav(speech.synthesize(JOE_1)))
    assert first.status_code == 201, first.text
    joe = first.json()
    assert joe["name"] == "joe" and joe["samples"] == 1
    assert joe["created_at"] == joe["updated_at"]

    again = enrol(url, "joe", wav(speech.synthesize(JOE_2)))
    assert again.status_code == 200, again.text
    assert again.json()["samples"] == 2
    assert again.json()["created_at"] == joe["created_at"]
    assert again.json()["updated_at"] >= joe["updated_at"]

    assert enrol(url, "Ann-Marie Ó Sé", wav(speech.espeak(JOE_1))).status_code == 201
    assert [(s["name"], s["samples"]) for s in listed(url)] == [
        ("joe", 2),
        ("Ann-Marie Ó Sé", 1),
    ]
    assert set(listed(url)[0]) == {"name", "samples", "created_at", "updated_at"}

    found = identify(url, wav(speech.synthesize(JOE_3)))
    assert found.status_code == 200, found.text
    answer = found.json()
    assert answer["speaker"] == "joe"
    assert answer["score"] >= 0.75
    assert [c["name"] for c in answer["candidates"]] == ["joe", "Ann-Marie Ó Sé"]
    assert answer["candidates"][1]["score"] < 0.75

    deleted = httpx.delete(url + "/v1/speakers/joe", timeout=10)
    assert deleted.status_code == 200
    assert deleted.json() == {"name": "joe", "deleted": True}
    assert [s["name"] for s in listed(url)] == ["Ann-Marie Ó Sé"]
    # Nobody enrolled sounds like joe any more.
    assert identify(url, wav(speech.synthesize(JOE_3))).json()["speaker"] == UNKNOWN
    # A stricter threshold can refuse even a true match.
    strict = identify(url, wav(speech.espeak(JOE_3)), threshold="0.999").json()
    assert strict["speaker"] == UNKNOWN and strict["candidates"][0]["score"] >= 0.75
    error = error_of(httpx.delete(url + "/v1/speakers/joe", timeout=10), 404)
    assert error["code"] == "speaker_not_found"
    assert httpx.delete(url + "/v1/speakers/Ann-Marie Ó Sé", timeout=10).status_code == 200
    assert listed(url) == []


def test_speakers_survive_a_restart(runtime: Runtime, tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "state")
    with live_server(runtime, settings) as first:
        assert enrol(first.http_url, "joe", wav(speech.synthesize(JOE_1))).status_code == 201
        assert enrol(first.http_url, "joe", wav(speech.synthesize(JOE_2))).status_code == 200
        before = listed(first.http_url)
    path = tmp_path / "state" / "speakers.db"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    assert [s.name for s in SpeakerStore(path).all_sync()] == ["joe"]  # read from disk
    with live_server(runtime, settings) as second:
        assert listed(second.http_url) == before
        found = identify(second.http_url, wav(speech.synthesize(JOE_3))).json()
        assert found["speaker"] == "joe"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "1 to 64 characters"),
        ("x" * 65, "1 to 64 characters"),
        ("bell\x07", "control characters"),
        ("new\nline", "control characters"),
        ("   ", "blank"),
        ("Unknown", "reserved"),
    ],
)
def test_bad_names_are_refused(spk_server: LiveServer, name: str, message: str) -> None:
    error = error_of(enrol(spk_server.http_url, name, wav(speech.synthesize(JOE_1))), 400)
    assert message in error["message"]
    assert error["param"] == "name"


def test_bad_requests_get_clear_errors(spk_server: LiveServer) -> None:
    url = spk_server.http_url
    corrupt = error_of(enrol(url, "joe", b"RIFF, but not really a wave file at all"), 400)
    assert corrupt["code"] == "invalid_audio" and corrupt["param"] == "file"

    short = error_of(enrol(url, "joe", wav(speech.synthesize("Hi.")[:6400])), 400)
    assert short["code"] == "audio_too_short"
    assert "0.40 s" in short["message"] and "at least 1 s" in short["message"]

    silent = error_of(enrol(url, "joe", wav(speech.silence(2.0))), 400)
    assert silent["code"] == "audio_too_short"
    assert "silent" in silent["message"]

    missing_name = error_of(enrol(url, None, wav(speech.synthesize(JOE_1))), 400)
    assert missing_name["param"] == "name"
    misnamed = {"audio": ("voice.wav", wav(speech.synthesize(JOE_1)), "audio/wav")}
    no_file = httpx.post(url + "/v1/speakers", data={"name": "joe"}, files=misnamed, timeout=10)
    missing_file = error_of(no_file, 400)
    assert missing_file["param"] == "file"
    not_multipart = httpx.post(url + "/v1/speakers", json={"name": "joe"}, timeout=10)
    assert error_of(not_multipart, 415)["code"] == "unsupported_media_type"
    threshold = identify(url, wav(speech.synthesize(JOE_1)), threshold="high")
    assert error_of(threshold, 400)["param"] == "threshold"
    assert listed(url) == []


# -- the parts alone ---------------------------------------------------------------------------


def unit(*values: float) -> npt.NDArray[np.float32]:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_the_stored_voice_is_the_normalised_mean(tmp_path: Path) -> None:
    store = SpeakerStore(tmp_path / "speakers.db", max_speakers=2)
    store.enrol_sync("a", "enc", unit(1, 0, 0))
    speaker, created, _ = store.enrol_sync("a", "enc", unit(0, 1, 0))
    assert (speaker.samples, created) == (2, False)
    snapshot = store.snapshot_sync("enc")
    assert snapshot.names == ("a",)
    np.testing.assert_allclose(snapshot.voices[0], unit(1, 1, 0), atol=1e-6)
    assert store.snapshot_sync("enc") is snapshot  # cached until the next write
    store.enrol_sync("b", "enc", unit(0, 0, 1))
    assert store.snapshot_sync("enc").names == ("a", "b")
    assert store.snapshot_sync("other").names == ()  # another encoder's voices never mix
    with pytest.raises(SpeakerConflict, match="limit of 2"):
        store.enrol_sync("c", "enc", unit(1, 0, 0))
    with pytest.raises(SpeakerConflict, match="encoder"):
        store.enrol_sync("a", "other", unit(1, 0, 0))
    assert store.delete_sync("b") and not store.delete_sync("b")
    assert store.snapshot_sync("enc").names == ("a",)


def test_identification_takes_the_best_match_above_the_threshold() -> None:
    snapshot = SpeakerSnapshot("enc", ("a", "b"), np.stack([unit(1, 0), unit(0, 1)]))
    found = snapshot.identify(unit(0.2, 1), threshold=0.75)
    assert found.speaker == "b" and found.score == pytest.approx(0.9806, abs=1e-4)
    assert [name for name, _ in found.candidates] == ["b", "a"]
    assert snapshot.identify(unit(1, 1), threshold=0.75).speaker == UNKNOWN
    empty = SpeakerSnapshot("enc", (), np.zeros((0, 2), dtype=np.float32))
    assert empty.identify(unit(1, 0), threshold=0.75).speaker == UNKNOWN
    assert check_name("Cafe\u0301") == "Café"  # one spelling per name (NFC)
