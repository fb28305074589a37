"""Source text and positions.

:class:`Source` holds one file's text and answers line/column questions about it.
:class:`Span` is a region in it: 1-based ``line``/``col``; ``end_line``/``end_col`` point one
past the last character (exclusive end), exactly like Lark's ``meta.end_line``/``meta.end_column``
and SARIF's ``endColumn``. Columns count Unicode code points.

Reading files (bytes or a path to a :class:`Source`, or a diagnostic) is
:mod:`voxflow.sourcefile`, which sits above both this module and :mod:`voxflow.diagnostics`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["MAX_SOURCE_BYTES", "Source", "Span"]

MAX_SOURCE_BYTES = 8 * 1024 * 1024
"""Files larger than this are refused with VF004 instead of being parsed."""


class _Meta(Protocol):
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True, order=True, slots=True)
class Span:
    """A region of a source file: 1-based line/col, exclusive end column."""

    line: int
    col: int
    end_line: int
    end_col: int

    @classmethod
    def point(cls, line: int, col: int) -> Span:
        """A one-character span at ``line:col``."""
        return cls(line, col, line, col + 1)

    @classmethod
    def from_meta(cls, meta: _Meta) -> Span:
        """The span of a Lark tree ``meta`` or token (``line``, ``column``, ``end_*``)."""
        line = getattr(meta, "line", None) or 1
        col = getattr(meta, "column", None) or 1
        end_line = getattr(meta, "end_line", None) or line
        end_col = getattr(meta, "end_column", None) or col + 1
        return cls(line, col, end_line, end_col)

    def merge(self, other: Span) -> Span:
        """The smallest span covering both."""
        start = min((self.line, self.col), (other.line, other.col))
        end = max((self.end_line, self.end_col), (other.end_line, other.end_col))
        return Span(start[0], start[1], end[0], end[1])

    def contains(self, other: Span) -> bool:
        """True when ``other`` lies within this span."""
        return (self.line, self.col) <= (other.line, other.col) and (
            other.end_line,
            other.end_col,
        ) <= (self.end_line, self.end_col)

    def __str__(self) -> str:
        return f"{self.line}:{self.col}-{self.end_line}:{self.end_col}"


@dataclass(frozen=True)
class Source:
    """One source file's name (usually its path) and decoded text."""

    name: str
    text: str
    _starts: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [0]
        find = self.text.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        object.__setattr__(self, "_starts", starts)

    @property
    def line_count(self) -> int:
        """Number of lines (a trailing newline does not start a new counted line)."""
        n = len(self._starts)
        if n > 1 and self._starts[-1] == len(self.text):
            return n - 1
        return n

    def line_text(self, line: int) -> str:
        """The text of 1-based ``line`` without its line ending; ``""`` if out of range."""
        if line < 1 or line > len(self._starts):
            return ""
        start = self._starts[line - 1]
        end = self._starts[line] - 1 if line < len(self._starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def offset_to_linecol(self, offset: int) -> tuple[int, int]:
        """1-based (line, col) of a 0-based character offset (clamped into the text)."""
        offset = max(0, min(offset, len(self.text)))
        idx = bisect.bisect_right(self._starts, offset) - 1
        return idx + 1, offset - self._starts[idx] + 1

    def linecol_to_offset(self, line: int, col: int) -> int:
        """0-based character offset of 1-based ``line:col`` (clamped into the text)."""
        line = max(1, min(line, len(self._starts)))
        return max(0, min(self._starts[line - 1] + col - 1, len(self.text)))

    def span_of(self, start: int, end: int) -> Span:
        """The span of character offsets ``[start, end)``."""
        line, col = self.offset_to_linecol(start)
        end_line, end_col = self.offset_to_linecol(max(start, end))
        if (end_line, end_col) == (line, col):
            end_col = col + 1
        return Span(line, col, end_line, end_col)

    def text_of(self, span: Span) -> str:
        """The text a span covers."""
        return self.text[
            self.linecol_to_offset(span.line, span.col) : self.linecol_to_offset(
                span.end_line, span.end_col
            )
        ]

    def whole(self) -> Span:
        """A span covering the first line (used for file-level diagnostics)."""
        first = self.line_text(1)
        return Span(1, 1, 1, max(2, len(first) + 1))

    def clamp(self, span: Span) -> Span:
        """``span`` moved inside this file (for diagnostics with positions past the end)."""
        last = max(1, self.line_count)
        line = max(1, min(span.line, last))
        col = max(1, min(span.col, len(self.line_text(line)) + 1))
        end_line = max(line, min(span.end_line, last))
        end_col = max(1, min(span.end_col, len(self.line_text(end_line)) + 2))
        if (end_line, end_col) <= (line, col):
            end_line, end_col = line, col + 1
        return Span(line, col, end_line, end_col)
