"""Exceptions and stacks, in two halves.

On the app thread, :func:`from_exception` and :func:`from_stack` only walk the frames and
keep (file, function, line, module) tuples, because a traceback keeps growing while an
exception propagates. The sender thread then turns them into the ``frames`` list and the
``exception.stacktrace`` text of an error event (:class:`Renderer`), reading source lines
there rather than in the app.
"""

from __future__ import annotations

import linecache
import os
import sys
import sysconfig
from types import FrameType, TracebackType
from typing import Any, NamedTuple

RawFrame = tuple[str, str, int, str]  # filename, function, line, module

MAX_FRAMES = 256
MAX_MESSAGE = 8192
MAX_STACKTRACE = 65536
MAX_CHAIN = 5


class RawError(NamedTuple):
    type: str
    message: str
    frames: list[RawFrame]
    #: Causes and contexts, innermost last as Python prints them: (type, message, frames, link).
    chain: list[tuple[str, str, list[RawFrame], str]]


def type_name(cls: type) -> str:
    module = getattr(cls, "__module__", "") or ""
    name = getattr(cls, "__qualname__", None) or cls.__name__
    return name if module in ("builtins", "__main__", "") else f"{module}.{name}"


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = "<unprintable exception>"
    return text[:MAX_MESSAGE]


def _walk(tb: TracebackType | None) -> list[RawFrame]:
    out: list[RawFrame] = []
    while tb is not None:
        frame = tb.tb_frame
        code = frame.f_code
        out.append(
            (
                code.co_filename,
                code.co_qualname,
                tb.tb_lineno or 0,
                frame.f_globals.get("__name__", ""),
            )
        )
        tb = tb.tb_next
    return out


def from_exception(exc: BaseException) -> RawError:
    chain: list[tuple[str, str, list[RawFrame], str]] = []
    seen = {id(exc)}
    current = exc
    while len(chain) < MAX_CHAIN:
        if current.__cause__ is not None:
            nxt, link = current.__cause__, "cause"
        elif current.__context__ is not None and not current.__suppress_context__:
            nxt, link = current.__context__, "context"
        else:
            break
        if id(nxt) in seen:
            break
        seen.add(id(nxt))
        chain.append((type_name(type(nxt)), _message(nxt), _walk(nxt.__traceback__), link))
        current = nxt
    chain.reverse()
    return RawError(type_name(type(exc)), _message(exc), _walk(exc.__traceback__), chain)


def from_stack(skip: int = 1) -> list[RawFrame]:
    """The caller's stack, outermost first, without the SDK's own frames."""
    frame: FrameType | None = sys._getframe(skip + 1)
    out: list[RawFrame] = []
    while frame is not None and len(out) < MAX_FRAMES:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("shiftright."):
            code = frame.f_code
            out.append((code.co_filename, code.co_qualname, frame.f_lineno or 0, module))
        frame = frame.f_back
    out.reverse()
    return out


class Renderer:
    """Decides which frames are the app's own and writes Python-style traceback text."""

    def __init__(self, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> None:
        self._include = include
        self._exclude = exclude + ("shiftright",)
        paths = sysconfig.get_paths()
        self._library_roots = tuple(
            {os.path.realpath(p) + os.sep for k in ("stdlib", "platstdlib") if (p := paths.get(k))}
        )
        self._cache: dict[tuple[str, str], bool] = {}

    def in_app(self, filename: str, module: str) -> bool:
        key = (filename, module)
        verdict = self._cache.get(key)
        if verdict is None:
            verdict = self._judge(filename, module)
            if len(self._cache) < 50_000:
                self._cache[key] = verdict
        return verdict

    def _judge(self, filename: str, module: str) -> bool:
        if any(module == p or module.startswith(p + ".") for p in self._include):
            return True
        if any(module == p or module.startswith(p + ".") for p in self._exclude):
            return False
        if filename.startswith("<") or "site-packages" in filename or "dist-packages" in filename:
            return False
        return not os.path.realpath(filename).startswith(self._library_roots)

    def frames(self, raw: list[RawFrame]) -> list[dict[str, Any]]:
        return [
            {
                "module": module,
                "function": function,
                "filename": filename,
                "lineno": max(lineno, 0),
                "in_app": self.in_app(filename, module),
            }
            for filename, function, lineno, module in raw[-MAX_FRAMES:]
        ]

    def text(self, error: RawError) -> str:
        parts: list[str] = []
        for etype, message, frames, link in error.chain:
            parts.append(_block(etype, message, frames))
            parts.append(_LINKS[link])
        parts.append(_block(error.type, error.message, error.frames))
        text = "".join(parts)
        if len(text) > MAX_STACKTRACE:
            half = MAX_STACKTRACE // 2 - 40
            text = text[:half] + "\n  ... (frames cut) ...\n" + text[-half:]
        return text


_LINKS = {
    "cause": "\nThe above exception was the direct cause of the following exception:\n\n",
    "context": "\nDuring handling of the above exception, another exception occurred:\n\n",
}


def _block(etype: str, message: str, frames: list[RawFrame]) -> str:
    lines = ["Traceback (most recent call last):\n"] if frames else []
    for filename, function, lineno, _module in frames:
        lines.append(f'  File "{filename}", line {lineno}, in {function}\n')
        source = linecache.getline(filename, lineno).strip()
        if source:
            lines.append(f"    {source}\n")
    lines.append(f"{etype}: {message}\n" if message else f"{etype}\n")
    return "".join(lines)
