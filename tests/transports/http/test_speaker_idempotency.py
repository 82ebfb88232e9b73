"""Idempotency-Key on speaker enrolment: an enrolment whose answer was lost (the server
stopped after the commit) is retried against a restarted server with the same key and
gets the first answer; exactly one speaker with one sample exists. The multipart
boundary differs between the two sends: the key compares the fields and the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest

from tests import speech
from tests.live_server import live_server
from voxwire.services.idempotency import IdempotencyKey, KeyReused
from voxwire.services.runtime import Runtime
from voxwire.services.speakers import MIGRATIONS, SpeakerStore, SpeakerStoreError
from voxwire.services.sqlite_file import SqliteFile
from voxwire.transports.http.settings import ServerSettings

VOICE = "Good morning, this is my voice for the enrolment."
OTHER = "I would like a cup of coffee with milk and sugar."


def enrol(url: str, name: str, data: bytes, key: str | None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return httpx.post(
        url + "/v1/speakers",
        data={"name": name},
        files={"file": ("voice.wav", data, "audio/wav")},
        headers=headers,
        timeout=60,
    )


def test_a_crash_and_retry_with_the_same_key_creates_one_speaker(
    runtime: Runtime, tmp_path: Path
) -> None:
    settings = ServerSettings(data_dir=tmp_path)
    voice = speech.pcm16_wav_bytes(speech.synthesize(VOICE))
    with live_server(runtime, settings) as first:
        lost = enrol(first.http_url, "joe", voice, "enrol-1")  # committed; the answer is lost
        assert lost.status_code == 201, lost.text
        assert "idempotent-replayed" not in lost.headers
    # the server is gone (a crash after the commit); a new one serves the same data
    with live_server(runtime, settings) as second:
        url = second.http_url
        retry = enrol(url, "joe", voice, "enrol-1")
        assert retry.status_code == 201, retry.text
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json() == lost.json()
        listed = httpx.get(url + "/v1/speakers", timeout=10).json()["data"]
        assert [(s["name"], s["samples"]) for s in listed] == [("joe", 1)]

        other_file = enrol(url, "joe", speech.pcm16_wav_bytes(speech.synthesize(OTHER)), "enrol-1")
        assert other_file.status_code == 422, other_file.text
        assert other_file.json()["error"]["code"] == "idempotency_key_reused"
        assert other_file.json()["error"]["param"] == "Idempotency-Key"
        other_name = enrol(url, "ann", voice, "enrol-1")
        assert other_name.status_code == 422, other_name.text

        extended = enrol(url, "joe", voice, "enrol-2")  # a new key: a second sample, 200
        assert extended.status_code == 200, extended.text
        again = enrol(url, "joe", voice, "enrol-2")
        assert (again.status_code, again.json()) == (200, extended.json())
        assert again.json()["samples"] == 2
        keyless = enrol(url, "joe", voice, None)  # without a key every send enrols
        assert keyless.json()["samples"] == 3
        bad = enrol(url, "joe", voice, "x" * 256)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "Idempotency-Key"
        listed = httpx.get(url + "/v1/speakers", timeout=10).json()["data"]
        assert [(s["name"], s["samples"]) for s in listed] == [("joe", 3)]


def test_a_version_1_database_is_migrated_and_keeps_its_speakers(tmp_path: Path) -> None:
    path = tmp_path / "speakers.db"
    with SqliteFile(path, {1: MIGRATIONS[1]}, SpeakerStoreError).connection() as db:
        db.execute(
            "INSERT INTO speakers VALUES ('old', 'enc', 2, ?, 1, ?, ?)",
            (
                np.array([0.0, 1.0]).tobytes(),
                "2020-01-01T00:00:00.000Z",
                "2020-01-01T00:00:00.000Z",
            ),
        )
    store = SpeakerStore(path)
    key = IdempotencyKey("k", "digest")
    vector = np.array([1.0, 0.0], dtype=np.float32)
    first = store.enrol_sync("new", "enc", vector, key)
    assert (first.created, first.replayed) == (True, False)
    again = store.enrol_sync("new", "enc", vector, key)
    assert (again.speaker, again.created, again.replayed) == (first.speaker, True, True)
    with pytest.raises(KeyReused):
        store.enrol_sync("new", "enc", vector, IdempotencyKey("k", "another"))
    assert [(s.name, s.samples) for s in store.all_sync()] == [("old", 1), ("new", 1)]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
