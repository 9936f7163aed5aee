"""Fingerprints: what makes two errors the same bug.

* With a usable stack: the root cause's type and its in-app frames as ``module:function``
  (no line numbers, no file paths, recursion collapsed), outermost first. Without in-app
  frames, all frames count.
* Without a usable stack (no frame names a function): the root cause's type and its
  normalised message.

A fingerprint is the hex digest of those components; a group id is the digest of
(app, fingerprint), so each app has its own groups and the same inputs always give the
same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from shiftright_server.schemas.events import Frame
from shiftright_server.schemas.records import GroupBasis
from shiftright_server.streams.grouping.chain import ExceptionInfo
from shiftright_server.streams.grouping.normalise import normalise_message

_SEP: Final = "\x1f"
TITLE_MAX: Final = 200


@dataclass(frozen=True, slots=True)
class Fingerprint:
    basis: GroupBasis
    components: tuple[str, ...]

    @property
    def digest(self) -> str:
        return digest(self.basis, *self.components)


def digest(*parts: str) -> str:
    return hashlib.blake2b(_SEP.join(parts).encode(), digest_size=16).hexdigest()


def group_id_for(app: str, fingerprint: str) -> str:
    """The stable id of ``app``'s group for ``fingerprint`` (16 hex digits)."""
    return hashlib.blake2b(f"{app}{_SEP}{fingerprint}".encode(), digest_size=8).hexdigest()


def fingerprint_of(exc: ExceptionInfo) -> Fingerprint:
    frames = stack_frames(exc.frames)
    if frames:
        return Fingerprint("stack", (exc.type, *(f"{m}:{fn}" for m, fn in frames)))
    return Fingerprint("message", (exc.type, normalise_message(exc.message)))


def stack_frames(frames: Sequence[Frame]) -> list[tuple[str, str]]:
    """(module, function) of the frames that identify the code path; [] when unusable."""
    named = [f for f in frames if f.function]
    chosen = [f for f in named if f.in_app] or named
    out: list[tuple[str, str]] = []
    for f in chosen:
        key = (f.module or _file_key(f.filename), f.function)
        if not out or out[-1] != key:  # recursion depth must not split a group
            out.append(key)
    return out


def culprit_of(exc: ExceptionInfo) -> str:
    """The innermost in-app frame (else the innermost frame) as ``module in function``."""
    frames = [f for f in exc.frames if f.function]
    chosen = [f for f in frames if f.in_app] or frames
    if not chosen:
        return ""
    f = chosen[-1]
    return f"{f.module or _file_key(f.filename)} in {f.function}"


def title_of(exc: ExceptionInfo) -> str:
    message = normalise_message(exc.message)
    title = f"{exc.type}: {message}" if message else exc.type
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"


def _file_key(filename: str) -> str:
    """A file's name without directories or extension: stable when install paths differ."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base
