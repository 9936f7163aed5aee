"""Stack-trace text (``exception.stacktrace``) of common runtimes → structured frames.

Recognised: Python tracebacks, Java/Kotlin/Scala (``at pkg.Class.method(File.java:42)``),
JavaScript V8 (``at fn (/app/x.js:10:5)``), .NET (``at Ns.Class.Method() in X.cs:line 42``),
Go panics (function line, then ``\\tfile.go:42 +0x1d``) and Ruby (``app.rb:10:in 'm'``).
Frames come out outermost first — the order of a Python traceback and of the SDK's
events — and the in-app flag is a guess from the path or namespace (libraries, runtime
and framework code are not in-app). Text in no known shape gives no frames; the text itself
is always kept as the event's ``stacktrace``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Frame = dict[str, object]

_PYTHON = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<fn>.+))?$')
_JAVA = re.compile(
    r"^\s*at (?P<fn>[\w$.<>/]+)"
    r"\((?P<file>[^:)]*\.(?:java|kt|scala|groovy)|Native Method|Unknown Source)(?::(?P<line>\d+))?\)\s*$"
)
_JS_NAMED = re.compile(r"^\s*at (?P<fn>.+?) \((?P<file>.+?):(?P<line>\d+)(?::\d+)?\)$")
_JS_BARE = re.compile(r"^\s*at (?P<file>[^\s()]+?):(?P<line>\d+)(?::\d+)?$")
_DOTNET = re.compile(r"^\s*at (?P<fn>[^(]+)\([^)]*\)(?: in (?P<file>.+):line (?P<line>\d+))?\s*$")
_GO_FUNC = re.compile(r"^(?P<fn>[\w./*()-]+)\(.*\)$")
_GO_FILE = re.compile(r"^\t(?P<file>\S+\.go):(?P<line>\d+)(?: \+0x[0-9a-f]+)?$")
_RUBY = re.compile(r"^\s*(?:from )?(?P<file>[^:\s]+\.rb):(?P<line>\d+):in [`'](?P<fn>[^']+)'$")

_LIBRARY_PATHS = (
    "site-packages",
    "dist-packages",
    "/lib/python",
    "node_modules",
    "node:",
    "/gems/",
)
_LIBRARY_PREFIXES = (
    "java.",
    "javax.",
    "jdk.",
    "sun.",
    "com.sun.",
    "kotlin.",
    "kotlinx.",
    "scala.",
    "org.springframework.",
    "org.apache.",
    "io.netty.",
    "System.",
    "Microsoft.",
    "runtime.",
    "net/http.",
)


def parse_frames(text: str) -> list[Frame]:
    """Frames of the first shape that matches, outermost first; [] when none does."""
    lines = text.splitlines()
    for parser in _PARSERS:
        frames = parser(lines)
        if frames:
            return frames
    return []


def _python(lines: list[str]) -> list[Frame]:
    frames = []
    for line in lines:
        if m := _PYTHON.match(line):
            path = m["file"]
            frames.append(_frame(_module_of_path(path, ".py"), m["fn"] or "", path, m["line"]))
    return frames


def _java(lines: list[str]) -> list[Frame]:
    frames = []
    for line in lines:
        if line.lstrip().startswith("Caused by:"):
            break  # the first exception's own frames; causes follow in the text
        if m := _JAVA.match(line):
            qualified = m["fn"].rpartition("/")[2]  # drop a JPMS module ("java.base/")
            module, _, fn = qualified.rpartition(".")
            frames.append(_frame(module, fn, m["file"], m["line"] or 0, namespace=module))
    return frames[::-1]


def _javascript(lines: list[str]) -> list[Frame]:
    frames = []
    for line in lines:
        if m := _JS_NAMED.match(line) or _JS_BARE.match(line):
            fn = m.groupdict().get("fn") or "<anonymous>"
            path = m["file"]
            frames.append(_frame(_module_of_path(path, ".js"), fn, path, m["line"]))
    return frames[::-1]


def _dotnet(lines: list[str]) -> list[Frame]:
    frames = []
    for line in lines:
        if m := _DOTNET.match(line):
            module, _, fn = m["fn"].strip().rpartition(".")
            frames.append(_frame(module, fn, m["file"] or "", m["line"] or 0, namespace=module))
    return frames[::-1]


def _go(lines: list[str]) -> list[Frame]:
    frames = []
    for fn_line, file_line in zip(lines, lines[1:], strict=False):
        fm, pm = _GO_FUNC.match(fn_line), _GO_FILE.match(file_line)
        if fm and pm:
            module, _, fn = fm["fn"].rpartition(".")
            frames.append(_frame(module, fn, pm["file"], pm["line"], namespace=module + "."))
    return frames[::-1]


def _ruby(lines: list[str]) -> list[Frame]:
    frames = []
    for line in lines:
        if m := _RUBY.match(line):
            path = m["file"]
            frames.append(_frame(_module_of_path(path, ".rb"), m["fn"], path, m["line"]))
    return frames[::-1]


_PARSERS: tuple[Callable[[list[str]], list[Frame]], ...] = (
    _python,
    _java,
    _javascript,
    _dotnet,
    _go,
    _ruby,
)


def _frame(
    module: str, function: str, filename: str, lineno: str | int, namespace: str = ""
) -> Frame:
    library = any(p in filename for p in _LIBRARY_PATHS) or (
        bool(namespace) and namespace.startswith(_LIBRARY_PREFIXES)
    )
    return {
        "module": module,
        "function": function,
        "filename": filename,
        "lineno": int(lineno),
        "in_app": not library,
    }


def _module_of_path(path: str, suffix: str) -> str:
    """``/app/shop/cart.py`` → ``shop.cart`` (the last two path parts; a guess)."""
    parts = [p for p in re.split(r"[\\/]", path) if p]
    if not parts:
        return ""
    parts[-1] = parts[-1].removesuffix(suffix)
    return ".".join(parts[-2:])
