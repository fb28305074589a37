"""Streaming sentence chunker: turns LLM tokens into speakable pieces as early as possible.

A sentence ends at ``.``, ``!``, ``?`` (or ``…``) followed by whitespace, or at a newline. Common
abbreviations ("Dr.", "e.g.") and decimals ("3.5") do not end a sentence. A long run without an end
is cut at a clause boundary (comma, semicolon, colon) or a space so TTS never waits too long.
"""

from __future__ import annotations

__all__ = ["SentenceChunker", "split_sentences"]

_TERMINATORS = ".!?…"
_CLOSERS = "\"')]}\u00bb\u201d\u2019"
_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "no",
        "approx",
        "dept",
        "inc",
        "ltd",
        "co",
        "mt",
        "ave",
        "a.m",
        "p.m",
    }
)


class SentenceChunker:
    """Accumulates streamed text: ``push`` returns the sentences now complete, ``flush`` the rest.

    ``first_min_chars``: the first chunk may be cut early at a clause boundary once it holds at
    least this many characters (lower time to first audio). ``max_chars``: any chunk longer than
    this is cut at the last clause boundary or space.
    """

    def __init__(self, *, first_min_chars: int = 40, max_chars: int = 220) -> None:
        if max_chars < 20:
            raise ValueError("max_chars must be at least 20")
        self._buf = ""
        self._first_min = first_min_chars
        self._max = max_chars
        self._emitted = 0

    def push(self, text: str) -> list[str]:
        """Add streamed text; return the chunks that are now complete (maybe none)."""
        self._buf += text
        out: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            piece, self._buf = self._buf[:cut].strip(), self._buf[cut:].lstrip()
            if piece:
                out.append(piece)
                self._emitted += 1
        return out

    def flush(self) -> str | None:
        """Return what is left (the unfinished last sentence), or None when nothing is."""
        piece, self._buf = self._buf.strip(), ""
        if piece:
            self._emitted += 1
            return piece
        return None

    def _find_cut(self) -> int | None:
        buf = self._buf
        n = len(buf)
        i = 0
        while i < n:
            ch = buf[i]
            if ch == "\n":
                if buf[:i].strip():
                    return i + 1
            elif ch in _TERMINATORS:
                j = i + 1
                while j < n and (buf[j] in _TERMINATORS or buf[j] in _CLOSERS):
                    j += 1
                if j >= n:
                    break  # need to see what follows before deciding
                if buf[j].isspace() and not _is_abbreviation(buf, i):
                    return j
                i = j
                continue
            i += 1
        if self._emitted == 0 and n >= self._first_min:
            cut = _last_clause_break(buf, n)
            if cut is not None and cut >= self._first_min // 2:
                return cut
        if n > self._max:
            cut = _last_clause_break(buf, self._max)
            if cut is None:
                space = buf.rfind(" ", 0, self._max)
                cut = space + 1 if space > 0 else self._max
            return cut
        return None


def _is_abbreviation(buf: str, dot: int) -> bool:
    if buf[dot] != ".":
        return False
    start = dot
    while start > 0 and (buf[start - 1].isalpha() or buf[start - 1] == "."):
        start -= 1
    word = buf[start:dot].lower()
    if not word:
        return False
    if word in _ABBREVIATIONS:
        return True
    # Single capital letters ("J. Smith") are initials.
    return len(word) == 1 and buf[start].isupper()


def _last_clause_break(buf: str, limit: int) -> int | None:
    best = -1
    for mark in (",", ";", ":", " -", "—"):
        k = buf.rfind(mark, 0, limit)
        if k > best and k + len(mark) < len(buf) and buf[k + len(mark)].isspace():
            best = k + len(mark)
    return best + 1 if best > 0 else None


def split_sentences(text: str) -> list[str]:
    """Split a complete text into the chunks the streaming chunker would produce."""
    chunker = SentenceChunker(first_min_chars=10**9)
    out = chunker.push(text)
    rest = chunker.flush()
    if rest:
        out.append(rest)
    return out
