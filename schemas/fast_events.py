"""The fast path of :func:`schemas.validation.parse_event`, for the hot path of the sink and
the rollup step.

A msgspec mirror of the event models that is *stricter* than them: every payload it
accepts, the pydantic models accept too, with the same field values (strict JSON types
only, no coercion; ``ts`` only as an RFC 3339 string with at most millisecond digits and a
zone; ``event_id`` only in its canonical form). Whatever it does not accept — a bad line,
but also a good one written unusually — goes to :func:`parse_event`, which decides as
always. So the mirror never changes what is refused, only how fast the common case is
accepted; ``tests/unit/test_fast_events.py`` holds it to the models.

Usage, health and change events have a mirror (:data:`DECODERS`, what the sink and the
stream worker read). Error events have one too, which only the sink reads
(:data:`SINK_DECODERS`): the stream worker groups and joins each error as a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal, NamedTuple, cast

import msgspec
from shiftright_server.schemas.validation import Limits

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Short = Annotated[str, msgspec.Meta(max_length=200)]
#: Canonical UUID text (what ClickHouse and the models read alike).
EventId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ),
]
#: RFC 3339 with a zone and at most three fractional digits: no rounding anywhere.
Stamp = Annotated[
    str,
    msgspec.Meta(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?(Z|[+-]\d\d:\d\d)$"),
]
Unset = msgspec.UnsetType
UNSET: Final = msgspec.UNSET


class _Envelope(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, gc=False):
    app: Name
    env: Name
    event_id: EventId | Unset = UNSET
    ts: Stamp | Unset = UNSET
    release: Short = ""
    host: Short = ""
    instance: Short = ""
    session_id: Short = ""
    user_id: Short = ""
    customer_id: Short = ""
    origin: Literal["user", "test", "synthetic"] | Unset = UNSET
    attributes: Annotated[dict[str, str], msgspec.Meta(max_length=64)] = {}


class FastUsage(_Envelope):
    kind: Literal["usage"]
    name: Name
    route: Short = ""
    method: Short = ""
    status_code: Annotated[int, msgspec.Meta(ge=0, le=999)] = 0
    duration_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None
    value: float | None = None
    flags: Annotated[dict[str, str], msgspec.Meta(max_length=16)] = {}


class FastHealth(_Envelope):
    kind: Literal["health"]
    metrics: Annotated[dict[str, float], msgspec.Meta(min_length=1, max_length=128)]


class FastChange(_Envelope):
    kind: Literal["change"]
    change_type: Literal["deploy", "flag", "config", "gate"]
    name: Name
    value: Short = ""
    previous_value: Short = ""
    actor: Short = ""
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class FastFrame(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    module: str = ""
    function: str = ""
    filename: str = ""
    lineno: Annotated[int, msgspec.Meta(ge=0)] = 0
    in_app: bool = True


class FastError(_Envelope):
    kind: Literal["error"]
    exception_type: Name
    exception_message: Annotated[str, msgspec.Meta(max_length=8192)] = ""
    stacktrace: Annotated[str, msgspec.Meta(max_length=65536)] = ""
    frames: Annotated[list[FastFrame], msgspec.Meta(max_length=256)] = []
    handled: bool = False
    level: Literal["debug", "info", "warning", "error", "fatal"] = "error"
    route: Short = ""
    flags: Annotated[dict[str, str], msgspec.Meta(max_length=16)] = {}


FastEvent = FastUsage | FastHealth | FastChange | FastError
MIRRORS: Final[dict[str, type[FastEvent]]] = {
    "usage": FastUsage,
    "health": FastHealth,
    "change": FastChange,
    "error": FastError,
}
_ALL: Final = {kind: msgspec.json.Decoder(mirror) for kind, mirror in MIRRORS.items()}
#: The kinds the sink reads on the fast path.
SINK_DECODERS: Final[dict[str, msgspec.json.Decoder[FastEvent]]] = _ALL
#: The kinds the stream worker reads on the fast path (errors: the models, see above).
DECODERS: Final = {kind: d for kind, d in _ALL.items() if kind != "error"}


def _lax(mirror: type[FastEvent]) -> type[FastEvent]:
    """``mirror`` without the patterns of ``event_id`` and ``ts`` (a regex call each per
    event) and with ``origin``'s default as the models have it: what it decodes, the mirror
    decodes alike once both texts are checked (:mod:`schemas.fast_lines`, a whole message
    at once)."""
    fields = [
        ("event_id", str | Unset, UNSET),
        ("ts", str | Unset, UNSET),
        ("origin", Literal["user", "test", "synthetic"], "user"),
    ]
    lax = msgspec.defstruct(
        f"Lax{mirror.__name__}",
        fields,
        bases=(mirror,),
        kw_only=True,
        forbid_unknown_fields=True,
        gc=False,
    )
    return cast(type[FastEvent], lax)


#: The decoders of whole messages, checked after decoding (see :func:`_lax`).
LAX_DECODERS: Final[dict[str, msgspec.json.Decoder[FastEvent]]] = {
    kind: msgspec.json.Decoder(_lax(mirror)) for kind, mirror in MIRRORS.items()
}
MARGIN_MS = 1  # bounds are decided by the models within a millisecond of them


class Accepted(NamedTuple):
    event: FastEvent
    ts_ms: int  # event time, epoch ms (the record's time when the event has none)


class Window(NamedTuple):
    """The event times the validator accepts for a record: [oldest, newest] in ms."""

    oldest_ms: int
    newest_ms: int

    @classmethod
    def around(cls, now_ms: int, limits: Limits) -> Window:
        future = int(limits.max_future.total_seconds() * 1000)
        age = int(limits.max_age.total_seconds() * 1000)
        return cls(now_ms - age, now_ms + future)


Decoders = Mapping[str, msgspec.json.Decoder[FastEvent]]


def accept(
    raw: bytes | None,
    kind: str,
    now_ms: int,
    window: Window,
    limits: Limits,
    decoders: Decoders = DECODERS,
) -> Accepted | None:
    """The event in ``raw`` if the fast path can vouch for it; None: ask ``parse_event``."""
    decoder = decoders.get(kind)
    if decoder is None or raw is None or len(raw) > limits.max_bytes:
        return None
    try:
        event = decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return vouch(event, now_ms, window)


def vouch(event: FastEvent, now_ms: int, window: Window) -> Accepted | None:
    """A decoded mirror event with its time, if that time is in ``window``; None: ask
    ``parse_event`` (what :func:`accept` decides after decoding)."""
    ts_ms = now_ms if event.ts is UNSET else _epoch_ms(event.ts)
    if ts_ms is None:
        return None
    oldest, newest = window
    if ts_ms < oldest + MARGIN_MS or ts_ms > newest - MARGIN_MS:
        return None
    return Accepted(event, ts_ms)


def _epoch_ms(stamp: str) -> int | None:
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:  # e.g. month 13: the models say what is wrong
        return None
    return (parsed - _EPOCH) // _MS


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
