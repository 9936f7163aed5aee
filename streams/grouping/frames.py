"""From a live Python exception to the fields of an error event.

This is the extraction the grouping assumes: frames outermost first, ``module`` is the
frame's ``__name__``, ``function`` its qualified name, ``in_app`` false for the standard
library and installed packages; the exception type is ``module.QualName`` (bare for
builtins); chained exceptions go to ``attributes["exception.chain"]``. Producers in
Python should build events the same way (the SDK can copy this contract).
"""

from __future__ import annotations

import sysconfig
import traceback
from types import TracebackType
from typing import Any, Final

from shiftright_server.schemas.events import Frame
from shiftright_server.streams.grouping.chain import CHAIN_ATTRIBUTE, ExceptionInfo, encode_chain

_LIBRARY_DIRS: Final = tuple(
    {
        p
        for p in (
            sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")
        )
        if p
    }
)
_LIBRARY_MARKS: Final = ("site-packages", "dist-packages", "<frozen ")


def type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return (
        cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
    )


def is_library(filename: str) -> bool:
    return filename.startswith(_LIBRARY_DIRS) or any(m in filename for m in _LIBRARY_MARKS)


def frames_of(tb: TracebackType | None, in_app: tuple[str, ...] = ()) -> tuple[Frame, ...]:
    """Frames outermost first. A module under one of the ``in_app`` package names is the
    app's own even when installed in site-packages (as deployed apps often are)."""
    out = []
    while tb is not None:
        code = tb.tb_frame.f_code
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        mine = any(module == p or module.startswith(p + ".") for p in in_app)
        out.append(
            Frame(
                module=module,
                function=getattr(code, "co_qualname", code.co_name),
                filename=code.co_filename,
                lineno=tb.tb_lineno or 0,
                in_app=mine or not is_library(code.co_filename),
            )
        )
        tb = tb.tb_next
    return tuple(out)


def info_of(exc: BaseException, in_app: tuple[str, ...] = ()) -> ExceptionInfo:
    return ExceptionInfo(type_name(exc), str(exc), frames_of(exc.__traceback__, in_app))


def causes_of(exc: BaseException) -> tuple[list[BaseException], list[str]]:
    """The exceptions ``exc`` was raised from, nearest first, and how each is linked."""
    causes: list[BaseException] = []
    relations: list[str] = []
    seen = {id(exc)}
    current: BaseException | None = exc
    while current is not None:
        nxt, relation = _next(current)
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        causes.append(nxt)
        relations.append(relation)
        current = nxt
    return causes, relations


def error_fields(exc: BaseException, in_app: tuple[str, ...] = ()) -> dict[str, Any]:
    """The exception-specific fields of an error event (wire shape) for ``exc``."""
    info = info_of(exc, in_app)
    causes, relations = causes_of(exc)
    fields: dict[str, Any] = {
        "exception_type": info.type,
        "exception_message": info.message,
        "stacktrace": "".join(traceback.format_exception(exc)),
        "frames": [f.model_dump() for f in info.frames],
        "attributes": {},
    }
    if causes:
        fields["attributes"][CHAIN_ATTRIBUTE] = encode_chain(
            [info_of(c, in_app) for c in causes], relations
        )
    return fields


def _next(exc: BaseException) -> tuple[BaseException | None, str]:
    if exc.__cause__ is not None:
        return exc.__cause__, "cause"
    if exc.__context__ is not None and not exc.__suppress_context__:
        return exc.__context__, "context"
    return None, ""
