"""Streamed text to whole sentences, so speech synthesis can start on the first one
while later ones are still being written (sans-I/O: `feed(text) -> sentences`).

A sentence ends at ``.``, ``!``, ``?`` or ``…`` (with any closing quotes or brackets)
followed by whitespace, or at a line break. A full stop after a common abbreviation
("Dr.", "e.g.") or between digits ("3.5") does not end one. A sentence that runs on
past `max_chars` is cut at its last comma or space, so a reply without punctuation
still starts speaking.
"""

from __future__ import annotations

import re

_END = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s)|\n+""")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "sr",
        "jr",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
        "no",
        "fig",
        "approx",
        "dept",
        "inc",
        "ltd",
        "co",
    ]
)
_BREAK = re.compile(r"[,;:]\s|\s")


class SentenceSplitter:
    """Cuts a stream of text chunks into sentences, whatever the chunk boundaries."""

    def __init__(self, *, max_chars: int = 240, min_chars: int = 2) -> None:
        if min_chars < 1 or max_chars <= min_chars:
            raise ValueError("need 1 <= min_chars < max_chars")
        self.max_chars = max_chars
        self.min_chars = min_chars
        self._pending = ""

    def feed(self, text: str) -> list[str]:
        """The sentences that `text` completes (possibly none)."""
        self._pending += text
        sentences: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                return sentences
            sentence, self._pending = self._pending[:cut].strip(), self._pending[cut:]
            if sentence:
                sentences.append(sentence)

    def flush(self) -> list[str]:
        """What is left when the text has ended (the last sentence, if any)."""
        rest, self._pending = self._pending.strip(), ""
        return [rest] if rest else []

    def _next_cut(self) -> int | None:
        for match in _END.finditer(self._pending):
            end = match.end()
            ends = match.group().startswith("\n") or self._ends_sentence(match.start())
            if ends and len(self._pending[:end].strip()) >= self.min_chars:
                return end
        if len(self._pending) > self.max_chars:
            return self._long_cut()
        return None

    def _ends_sentence(self, stop: int) -> bool:
        """Whether the punctuation at `stop` ends a sentence (not "Dr." or "3.5")."""
        text = self._pending
        if text[stop] != ".":
            return True
        before = text[:stop].rsplit(None, 1)[-1] if text[:stop].strip() else ""
        return before.lower().rstrip(".") not in _ABBREVIATIONS and not (
            len(before) == 1 and before.isalpha() and before.isupper()  # an initial: "J."
        )

    def _long_cut(self) -> int:
        """Where to cut a run-on sentence: its last comma or space within max_chars."""
        window = self._pending[: self.max_chars]
        breaks = [m.end() for m in _BREAK.finditer(window) if m.end() > self.min_chars]
        return breaks[-1] if breaks else self.max_chars
