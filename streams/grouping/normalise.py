"""Exception messages with their variable parts replaced by placeholders.

Two errors from the same code site differ in the values they mention (an order id, a
user's e-mail, a timeout in ms); the normalised message keeps the words and drops the
values, so it can name a group and, when there is no usable stack, key it.

The order of the patterns matters: wider shapes (URLs, e-mails, paths, timestamps,
UUIDs) are replaced before the digits inside them would be.
"""

from __future__ import annotations

import functools
import re
from typing import Final

_MAX_CHARS: Final = 1000  # enough for a title and a key; bounds the regex work

# (placeholder, a character the pattern cannot match without, pattern). Each pattern is
# tried on the text left by the ones before it. No placeholder holds a digit or any of
# the other required characters, so a message without one never gains it: a pattern
# whose character is missing from the message is skipped (the same result, faster).
# Some patterns also need a character more than once, checked on the text as it is
# when their turn comes (:data:`_ALSO_NEEDS`).
_DIGITS: Final = "0123456789"
_RULES: Final[tuple[tuple[str, str, re.Pattern[str]], ...]] = (
    # The look-behinds start a match only where a run begins: linear, not quadratic, time
    # on long runs without a match ("a.a.a.a...").
    ("<url>", ":", re.compile(r"(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()]+")),
    ("<email>", "@", re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\b")),
    (
        "<timestamp>",
        _DIGITS,
        re.compile(
            r"\b\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?\b"
            r"|\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b"
        ),
    ),
    (
        "<uuid>",
        "",  # may be all letters a-f
        re.compile(
            r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"
        ),
    ),
    ("<ip>", _DIGITS, re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b")),
    ("<ip>", ":", re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{1,4}\b")),
    (
        "<path>",
        "/\\",
        re.compile(r"(?:\b[A-Za-z]:\\|(?<![\w.])/)[\w.@~+-]+(?:[/\\][\w.@~+-]+)+/?"),
    ),
    # 8+ hex digits with at least one decimal digit: hashes, request and trace ids (an
    # all-digit one too, so an id never flips between <hex> and <num> by chance).
    ("<hex>", _DIGITS, re.compile(r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b")),
    # A token glued to digits (req_8f3a, SKU-10442, user-0042, products-12) is an id.
    ("<id>", _DIGITS, re.compile(r"\b[A-Za-z]+[_-](?=\w*\d)\w{3,}\b")),
    # A number keeps its unit: "1380s" -> "<num>s", "512MiB" -> "<num>MiB".
    (
        "<num>",
        _DIGITS,
        re.compile(
            r"(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?(?=(?:[a-zA-Z\u00b5]{1,3})?(?!\w))"
        ),
    ),
)

#: (at least this many of a character or text, or this many of another) that a pattern
#: cannot match without, by pattern.
_ALSO_NEEDS: Final[dict[re.Pattern[str], tuple[tuple[str, int], ...]]] = {
    _RULES[0][2]: (("://", 1),),  # a URL's scheme ends so
    _RULES[2][2]: (("-", 2), (":", 2)),  # a date, or a time of day
    _RULES[4][2]: ((".", 3),),  # IPv4
    _RULES[5][2]: ((":", 2),),  # IPv6
    _RULES[8][2]: (("_", 1), ("-", 1)),  # a token glued to digits
}
# A quote opens after a non-word character, so the apostrophe in "can't" opens nothing.
_QUOTED: Final = re.compile(r"""(?<!\w)(?:'[^'\n]{0,200}'|"[^"\n]{0,200}")(?!\w)""")
_PLACEHOLDER_ONLY: Final = re.compile(r"^<\w+>$")


#: The digits 1-9 all as ``1``: see :func:`normalise_message`.
_ONES: Final = str.maketrans("23456789", "11111111")
#: The same for ASCII text as bytes (a table lookup per byte, not a dict lookup per
#: character).
_ASCII_ONES: Final = bytes.maketrans(b"23456789", b"11111111")


def normalise_message(message: str) -> str:
    """``message`` with values (numbers, ids, addresses, paths, times, quoted values)
    replaced by ``<num>``, ``<uuid>``, ``<hex>``, ``<id>``, ``<email>``, ``<path>``,
    ``<timestamp>``, ``<ip>``, ``<url>`` and ``<str>``; whitespace collapsed.

    Messages of one code site differ mostly in their digits, so each is first normalised
    with the digits 2-9 written as ``1`` (cached by that text). No pattern tells the digits
    1-9 apart (none names one; ``0`` is kept, for ``0x``), so both texts are cut at the
    same places; where the result holds no ``1``, every digit 1-9 was inside a value
    replaced, and it is the message's result too. Otherwise the message is normalised
    itself."""
    text = message[:_MAX_CHARS]
    if text.isascii():
        masked = text.encode().translate(_ASCII_ONES).decode()
    else:
        masked = text.translate(_ONES)
    if masked != text:
        found = _normalised(masked)
        if "1" not in found:
            return found
    return _normalised(text)


@functools.lru_cache(maxsize=4096)  # the same messages recur; ~25 µs each otherwise
def _normalised(text: str) -> str:
    present = set(text)
    if any(c.isdecimal() for c in present):  # what \d matches (Unicode category Nd)
        present.add("0")
    for placeholder, needs, pattern in _RULES:
        if needs and present.isdisjoint(needs):
            continue
        also = _ALSO_NEEDS.get(pattern)
        if also is None or any(text.count(c) >= n for c, n in also):
            text = pattern.sub(placeholder, text)
    if "'" in present or '"' in present:
        text = _QUOTED.sub(_quoted, text)
    return " ".join(text.split())  # str.split and re's \s agree on every code point


def _quoted(match: re.Match[str]) -> str:
    """A quoted value becomes ``'<str>'``; a quote around a single placeholder keeps it
    (``'<path>'`` says more than ``'<str>'``)."""
    quote, inner = match[0][0], match[0][1:-1]
    return match[0] if _PLACEHOLDER_ONLY.match(inner) else f"{quote}<str>{quote}"
