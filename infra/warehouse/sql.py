"""Just enough SQL scanning to route a statement: its kind, its FORMAT clause,
and where inline INSERT data begins. Strings, quoted identifiers, comments and
parentheses are skipped so a ``FORMAT`` inside them is never mistaken for one."""

from __future__ import annotations

import enum
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROW_KEYWORDS = frozenset(
    {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK"}
)
_READ_ONLY_KEYWORDS = _ROW_KEYWORDS | {"SET", "USE"}


# Table functions and clauses that reach beyond the warehouse's own tables (the host's
# files, the network, other databases, programs). A read-only request may not use them:
# read-only must mean "reads the warehouse", not "reads the machine".
_OUTSIDE = frozenset(
    {
        "FILE",
        "URL",
        "S3",
        "S3CLUSTER",
        "GCS",
        "HDFS",
        "HDFSCLUSTER",
        "AZUREBLOBSTORAGE",
        "AZUREBLOBSTORAGECLUSTER",
        "REMOTE",
        "REMOTESECURE",
        "CLUSTER",
        "CLUSTERALLREPLICAS",
        "EXECUTABLE",
        "MYSQL",
        "POSTGRESQL",
        "ODBC",
        "JDBC",
        "SQLITE",
        "MONGODB",
        "REDIS",
        "ICEBERG",
        "ICEBERGS3",
        "DELTALAKE",
        "HUDI",
        "URLCLUSTER",
        "FILECLUSTER",
        "PYTHON",
        "ARROWSTREAM",
        "DATAFRAME",
        "INPUT",
    }
)


class Kind(enum.Enum):
    ROWS = "rows"  # returns a result set: SELECT, SHOW, DESCRIBE ...
    INSERT = "insert"
    SET = "set"
    USE = "use"
    OTHER = "other"  # DDL and everything else that returns no rows


@dataclass(frozen=True)
class Token:
    word: str | None  # upper-cased bare word, None for any other token
    start: int
    end: int
    depth: int


@dataclass(frozen=True)
class Statement:
    """A scanned statement. ``sql`` excludes inline data; ``data_start`` is the
    offset of INSERT data in the scanned text, or None when there is none."""

    sql: str
    kind: Kind
    keyword: str
    format: str | None
    data_start: int | None

    @property
    def read_only(self) -> bool:
        return self.keyword in _READ_ONLY_KEYWORDS

    @property
    def changes_context(self) -> bool:
        """Leaves state on a connection that a sessionless request must not share."""
        return self.kind in (Kind.SET, Kind.USE) or "TEMPORARY" in self.sql[:200].upper()


def reaches_outside(text: str) -> str | None:
    """The first table function or clause in ``text`` that reads or writes beyond the
    warehouse's tables (``file(...)``, ``url(...)``, ``INTO OUTFILE`` …), or None."""
    previous: Token | None = None
    for tok in tokens(text):
        if previous is not None and previous.word in _OUTSIDE and text[tok.start] == "(":
            return text[previous.start : previous.end]
        if previous is not None and previous.word == "INTO" and tok.word == "OUTFILE":
            return "INTO OUTFILE"
        previous = tok
    return None


def tokens(text: str) -> Iterator[Token]:
    """Yield top-level-aware tokens, skipping whitespace, comments and literals' insides."""
    pos, depth, n = 0, 0, len(text)
    while pos < n:
        ch = text[pos]
        if ch.isspace():
            pos += 1
        elif text.startswith("--", pos) or ch == "#":
            pos = _line_end(text, pos)
        elif text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            pos = n if end < 0 else end + 2
        elif ch in "'\"`":
            end = _quoted_end(text, pos)
            yield Token(None, pos, end, depth)
            pos = end
        elif ch in "([":
            yield Token(None, pos, pos + 1, depth)
            depth, pos = depth + 1, pos + 1
        elif ch in ")]":
            depth, pos = max(0, depth - 1), pos + 1
            yield Token(None, pos - 1, pos, depth)
        else:
            pos = yield from _word_or_symbol(text, pos, depth)


def _word_or_symbol(text: str, pos: int, depth: int) -> Generator[Token, None, int]:
    match = _WORD.match(text, pos)
    if match is None:
        yield Token(None, pos, pos + 1, depth)
        return pos + 1
    yield Token(match.group().upper(), pos, match.end(), depth)
    return match.end()


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end + 1


def _quoted_end(text: str, pos: int) -> int:
    quote, i, n = text[pos], pos + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" or ch == quote and text.startswith(quote * 2, i):
            i += 2
        elif ch == quote:
            return i + 1
        else:
            i += 1
    return n


def data_start_after(text: str, pos: int) -> int:
    """ClickHouse's rule: data starts after the first newline, or after the blanks."""
    n = len(text)
    while pos < n and text[pos] in " \t\f":
        pos += 1
    if pos < n and text[pos] == "\r":
        pos += 1
    if pos < n and text[pos] == "\n":
        pos += 1
    return pos


def scan(text: str) -> Statement:
    """Scan one statement. ``text`` may be latin-1 decoded bytes; offsets then are byte offsets."""
    stream = tokens(text)
    first = next((t for t in stream if t.word is not None), None)
    keyword = first.word if first is not None and first.word else ""
    if keyword == "INSERT":
        return _scan_insert(text, stream)
    kind = _kind_of(keyword)
    fmt = _format_clause(text, stream) if kind is Kind.ROWS else None
    return Statement(text.strip(), kind, keyword, fmt, None)


def _kind_of(keyword: str) -> Kind:
    if keyword in _ROW_KEYWORDS:
        return Kind.ROWS
    if keyword == "SET":
        return Kind.SET
    if keyword == "USE":
        return Kind.USE
    return Kind.OTHER


def _format_clause(text: str, stream: Iterator[Token]) -> str | None:
    fmt, previous = None, None
    for tok in stream:
        if _is_format_name(previous, tok):
            fmt = text[tok.start : tok.end]
        previous = tok
    return fmt


def _is_format_name(previous: Token | None, tok: Token) -> bool:
    return (
        previous is not None
        and previous.word == "FORMAT"
        and previous.depth == 0
        and tok.word is not None
    )


def _scan_insert(text: str, stream: Iterator[Token]) -> Statement:
    previous: Token | None = None
    for tok in stream:
        if tok.depth == 0 and tok.word in ("VALUES", "SELECT", "WITH"):
            return Statement(text.strip(), Kind.INSERT, "INSERT", None, None)
        if _is_format_name(previous, tok):
            assert previous is not None  # narrowed by _is_format_name
            fmt = text[tok.start : tok.end]
            sql = text[: previous.start].strip()
            return Statement(sql, Kind.INSERT, "INSERT", fmt, data_start_after(text, tok.end))
        previous = tok
    return Statement(text.strip(), Kind.INSERT, "INSERT", None, None)
