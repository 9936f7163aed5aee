"""Fingerprints of real Python tracebacks: the same bug groups together whatever ids,
messages and line numbers it carries; different bugs never share a group."""

from __future__ import annotations

import json
import random
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shiftright_server.producers.simulator import Simulator
from shiftright_server.schemas.events import ErrorEvent
from shiftright_server.streams.grouping import Grouper, chain, normalise
from shiftright_server.streams.grouping.chain import CHAIN_ATTRIBUTE, chain_of, root_cause
from shiftright_server.streams.grouping.frames import error_fields
from shiftright_server.streams.grouping.normalise import normalise_message
from shiftright_server.streams.grouping.rules import Rules

# -- app code that fails (in-app frames: this file is not a library) -------------------------

ORDERS = {"o-1": 10}


def load_order(order_id: str) -> int:
    return ORDERS[order_id]


def load_user(user_id: str) -> int:
    return ORDERS[user_id]


def parse_quantity(raw: str) -> int:
    return int(raw)


def average_of(items: Any) -> float:
    return float(sum(items) / len(items))  # TypeError for strings, ZeroDivisionError when empty


def walk(depth: int) -> int:
    if depth == 0:
        raise RecursionError(f"tree too deep at node {depth * 7 + 3}")
    return walk(depth - 1)


class UpstreamError(Exception):
    pass


def handler(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:
        raise UpstreamError("upstream dependency failed") from exc


def handler_swallowing_context(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception:
        raise UpstreamError("upstream dependency failed") from None


def release_module(padding: int) -> dict[str, Any]:
    """The same module "deployed" in another release: its code moved down by ``padding``."""
    source = "\n" * padding + textwrap.dedent(
        """
        def apply_discount(cart, promo):
            pct = promo.percent / 100
            return cart * (1 - pct)
        """
    )
    namespace: dict[str, Any] = {"__name__": "shop.pricing"}
    exec(compile(source, "/srv/shop/shop/pricing.py", "exec"), namespace)
    return namespace


def raised(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the test wants whatever it raised
        return exc
    raise AssertionError("expected an exception")


def event_of(exc: BaseException, app: str = "shop", **extra: Any) -> ErrorEvent:
    return ErrorEvent.model_validate({"app": app, "env": "prod", **error_fields(exc), **extra})


def group(call: Callable[[], Any], **extra: Any) -> str:
    return Grouper().assign(event_of(raised(call), **extra)).group_id


# -- the table -----------------------------------------------------------------------------

SAME_BUG: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
    ("KeyError, different order ids", lambda: load_order("o-42"), lambda: load_order("o-9001")),
    ("ValueError, different input", lambda: parse_quantity("abc"), lambda: parse_quantity("1e9")),
    (
        "AttributeError, lines moved by a release",
        lambda: release_module(0)["apply_discount"](10, None),
        lambda: release_module(37)["apply_discount"](10, None),
    ),
    ("recursion depth differs", lambda: walk(3), lambda: walk(11)),
    (
        "chained: same root cause, different wrapper messages",
        lambda: handler(lambda: load_order("o-1001")),
        lambda: handler(lambda: load_order("o-2002")),
    ),
]

DIFFERENT_BUGS: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
    ("same type, other function", lambda: load_order("x"), lambda: load_user("x")),
    ("same function, other type", lambda: average_of(["a"]), lambda: average_of([])),
    (
        "same wrapper, different root causes",
        lambda: handler(lambda: load_order("x")),
        lambda: handler(lambda: parse_quantity("x")),
    ),
    ("other function, same message shape", lambda: parse_quantity("x"), lambda: int("x")),
]


@pytest.mark.parametrize(("case", "first", "second"), SAME_BUG, ids=[c[0] for c in SAME_BUG])
def test_the_same_bug_lands_in_one_group(
    case: str, first: Callable[[], object], second: Callable[[], object]
) -> None:
    a, b = event_of(raised(first)), event_of(raised(second))
    assert (a.exception_message, [f.lineno for f in a.frames]) != (
        b.exception_message,
        [f.lineno for f in b.frames],
    ) or a.attributes != b.attributes, "the case must differ in something"
    assert Grouper().assign(a).group_id == Grouper().assign(b).group_id


@pytest.mark.parametrize(
    ("case", "first", "second"), DIFFERENT_BUGS, ids=[c[0] for c in DIFFERENT_BUGS]
)
def test_different_bugs_land_in_different_groups(
    case: str,
    first: Callable[[], object],
    second: Callable[[], object],
) -> None:
    assert group(first) != group(second)


def test_line_numbers_really_differ_between_the_two_releases() -> None:
    v1 = event_of(raised(lambda: release_module(0)["apply_discount"](10, None)))
    v2 = event_of(raised(lambda: release_module(37)["apply_discount"](10, None)))
    assert v1.frames[-1].module == "shop.pricing" and v1.frames[-1].in_app
    assert v2.frames[-1].lineno - v1.frames[-1].lineno == 37


def test_the_same_code_in_two_apps_is_two_groups() -> None:
    exc = raised(lambda: load_order("x"))
    assert Grouper().assign(event_of(exc, app="shop")).group_id != (
        Grouper().assign(event_of(exc, app="admin")).group_id
    )


def test_library_frames_do_not_count_when_there_are_in_app_frames() -> None:
    exc = raised(lambda: json.loads("{bad"))
    event = event_of(exc)
    assert any(not f.in_app for f in event.frames)  # json's own frames were captured
    stripped = event.model_copy(update={"frames": [f for f in event.frames if f.in_app]})
    assert Grouper().assign(event).group_id == Grouper().assign(stripped).group_id


def test_a_chain_is_carried_and_its_root_cause_names_the_group() -> None:
    event = event_of(raised(lambda: handler(lambda: load_order("o-77"))))
    chain = chain_of(event)
    assert [c.type for c in chain] == [f"{__name__}.UpstreamError", "KeyError"]
    assert json.loads(event.attributes[CHAIN_ATTRIBUTE])[0]["relation"] == "cause"
    a = Grouper().assign(event)
    assert a.exception_type == "KeyError"
    assert a.title == "KeyError: '<str>'"
    assert a.culprit == f"{__name__} in load_order"


def test_implicit_context_counts_and_from_none_hides_it() -> None:
    def during_handling() -> None:
        try:
            load_order("nope")
        except KeyError:
            parse_quantity("x")  # raised while handling: __context__

    assert [c.type for c in chain_of(event_of(raised(during_handling)))] == [
        "ValueError",
        "KeyError",
    ]
    hidden = event_of(raised(lambda: handler_swallowing_context(lambda: load_order("x"))))
    assert root_cause(hidden).type == f"{__name__}.UpstreamError"


def test_a_malformed_chain_falls_back_to_the_reported_exception() -> None:
    event = event_of(raised(lambda: load_order("x")), attributes={CHAIN_ATTRIBUTE: "{not json"})
    assert Grouper().assign(event).group_id == group(lambda: load_order("x"))


def test_without_a_stack_type_and_normalised_message_decide() -> None:
    def bare(message: str, type_: str = "PaymentDeclined") -> str:
        event = ErrorEvent(app="shop", env="prod", exception_type=type_, exception_message=message)
        a = Grouper().assign(event)
        assert a.basis == "message"
        return a.group_id

    same = bare("card 4242 declined for order 1234 (ann@example.com)")
    assert same == bare("card 9999 declined for order 77 (bob@shop.test)")
    assert same != bare("card 4242 expired for order 1234 (ann@example.com)")
    assert same != bare("card 4242 declined for order 1234 (ann@example.com)", "Timeout")


NORMALISED = [
    ("order 12345 not found", "order <num> not found"),
    ("timed out after 1500ms", "timed out after <num>ms"),
    ("-3.5e-2 is negative", "<num> is negative"),
    ("user 550e8400-e29b-41d4-a716-446655440000 gone", "user <uuid> gone"),
    ("request 9f86d081884c7d65 failed", "request <hex> failed"),
    ("bad pointer 0xdeadbeef", "bad pointer <hex>"),
    ("KeyError 'SKU-10442'", "KeyError '<id>'"),
    ("no such user 'ann'", "no such user '<str>'"),
    ('column "email" is null', 'column "<str>" is null'),
    ("mail to ann.lee+x@example.co.uk bounced", "mail to <email> bounced"),
    ("cannot open /var/lib/shop/receipts/1234.pdf", "cannot open <path>"),
    (r"cannot open C:\Users\bob\report.txt now", "cannot open <path> now"),
    ("at 2026-03-04T14:05:09.123Z and 14:05:09", "at <timestamp> and <timestamp>"),
    ("on 2026-03-04 only", "on <timestamp> only"),
    ("connect to 10.0.12.7:5432 refused", "connect to <ip> refused"),
    ("GET https://api.example.com/v1/orders/77?x=1 failed", "GET <url> failed"),
    ("can't decode byte 0x9c", "can't decode byte <hex>"),
    ("  lots\n of   space ", "lots of space"),
    ("HTTP2 over sha256 stays", "HTTP2 over sha256 stays"),
    # patterns are skipped when a character they need is absent; these need them present
    ("upstream failed while handling the request", "upstream failed while handling the request"),
    ("٣٤ items left", "<num> items left"),  # \d is any Unicode decimal digit
    ("route fe80:dead:beef::cafe unreachable", "route <ip>::cafe unreachable"),
    ("id deadbeef-dead-beef-dead-beefdeadbeef gone", "id <uuid> gone"),
    # ... and some need one more than once: these hold just enough
    ("done at 14:05:09", "done at <timestamp>"),
    ("peer 1:2:3 left", "peer <ip> left"),
    ("from 10.0.0.7 only", "from <ip> only"),
    ("job req_8f3a failed", "job <id> failed"),
]


def test_normalising_the_same_message_again_gives_the_same_result() -> None:
    first = [normalise_message(raw) for raw, _ in NORMALISED]  # cached after the first call
    assert [normalise_message(raw) for raw, _ in NORMALISED] == first


@pytest.mark.parametrize(("raw", "expected"), NORMALISED, ids=[n[0][:30] for n in NORMALISED])
def test_normalise_message(raw: str, expected: str) -> None:
    assert normalise_message(raw) == expected


#: Pieces of messages where the digits matter to a pattern (0x, counts of digits, dates,
#: addresses, ids glued to digits, units), joined at random.
_PIECES = [
    "0x1f",
    "0x",
    "0x0",
    "1x2",
    "12",
    "0",
    "00",
    "09",
    "90",
    "3.5e-2",
    "-7",
    "e5",
    "5e",
    "1,234.5",
    "1380s",
    "512MiB",
    "3µs",
    "1.2.3.4",
    "10.0.12.7:5432",
    "fe80:dead:beef::cafe",
    "1:2:3",
    "2026-03-04T14:05:09.123Z",
    "14:05:09",
    "2026-03-04",
    "550e8400-e29b-41d4-a716-446655440000",
    "9f86d081884c7d65",
    "deadbeef",
    "req_8f3a",
    "user-0042",
    "SKU-10442",
    "a1",
    "v2",
    "HTTP2",
    "sha256",
    "x_1y",
    "ab-12cd",
    "/var/lib/x/12.pdf",
    "https://a.b/c?x=9",
    "ann+1@ex.co",
    "'<num>'",
    "٣٤",
    "_",
    "-",
    ".",
    ":",
    "'",
    '"',
    "a",
    "Z",
    "T",
    "µ",
] + ["'q 7'", '"x 8"', r"C:\x\y9.txt", "\n"]


def test_a_message_normalises_as_it_would_without_the_digits_cache() -> None:
    rnd = random.Random(11)
    seps = ("", " ", " ", ".", ",", "-", ":", "/")
    made = [
        "".join(rnd.choice(_PIECES) + rnd.choice(seps) for _ in range(rnd.randint(1, 9)))
        for _ in range(15_000)
    ]
    made += ["".join(rnd.choices("0123456789abcdefxX.:-_/ '\"@eE+T", k=20)) for _ in range(15_000)]
    now = datetime.now(UTC)
    errors = Simulator(seed=3).generate("error", 3000, now - timedelta(hours=1), now)
    made += [e["exception_message"] for e in errors]
    uncached = normalise._normalised.__wrapped__
    assert [normalise_message(m) for m in made] == [uncached(m) for m in made]


def test_title_is_type_and_normalised_message_and_stays_short() -> None:
    event = ErrorEvent(
        app="shop", env="prod", exception_type="ValueError", exception_message="x" * 5000
    )
    title = Grouper().assign(event).title
    assert title.startswith("ValueError: ") and len(title) <= 200


def test_an_app_installed_in_site_packages_is_still_in_app_when_named() -> None:
    import json.decoder

    exc = raised(lambda: json.loads("{bad"))
    as_library = error_fields(exc)["frames"]
    named = error_fields(exc, in_app=("json",))["frames"]
    decoder = [f for f in named if f["module"] == json.decoder.__name__]
    assert decoder and all(f["in_app"] for f in decoder)
    assert not any(f["in_app"] for f in as_library if f["module"].startswith("json"))


def test_a_grouper_that_has_seen_a_stack_assigns_as_a_new_one_would() -> None:
    rules = Rules.parse(
        "version: 2\nrules:\n  - name: pin\n    match: {type: TimeoutError}\n    fingerprint: timeouts\n"
    )
    now = datetime(2026, 12, 5, tzinfo=UTC)
    raw = Simulator(seed=9).generate("error", 400, now - timedelta(minutes=5), now)
    events = [ErrorEvent.model_validate(e) for e in raw]
    for grouper_rules in (None, rules):
        seasoned = Grouper(grouper_rules)
        assigned = [seasoned.assign(e) for e in events]
        assert [seasoned.assign(e) for e in events] == assigned
        assert [Grouper(grouper_rules).assign(e) for e in events] == assigned
    assert len({a.group_id for a in assigned}) < len(events) / 4  # stacks recur
    assert {a.basis for a in assigned} >= {"stack", "rule"}


ODD_CHAINS = [
    "{not json",
    "{}",
    "null",
    "[]",
    '[{"type":"A"}]',
    '[{"type":""}]',
    '[{"type":5}]',
    '[{"message":"m"}]',
    "[1]",
    '[{"type":"A","message":null}]',
    '[{"type":"A","message":5}]',
    '[{"type":"A","message":["x",1]}]',
    '[{"type":"A","frames":null}]',
    '[{"type":"A","frames":{}}]',
    '[{"type":"A","frames":"abc"}]',
    '[{"type":"A","type":"B","relation":"cause","extra":[1]}]',
    '[{"type":"A","frames":[{"module":"m","function":"f","filename":"x.py","lineno":3,"in_app":true}]}]',
    '[{"type":"A","frames":[{"module":"m","function":"f","filename":"x.py","lineno":3.0,"in_app":true}]}]',
    '[{"type":"A","frames":[{"module":"m","function":"f","filename":"x.py","lineno":-1,"in_app":true}]}]',
    '[{"type":"A","frames":[{"module":"m","function":"f","filename":"x.py","lineno":true,"in_app":true}]}]',
    '[{"type":"A","frames":[{"module":"m","function":"f","filename":"x.py","lineno":3,"in_app":1}]}]',
    '[{"type":"A","frames":[{"module":"m","function":"f","lineno":3,"in_app":false}]}]',
    '[{"type":"A","frames":[{"module":"m","function":"f","filename":"x","lineno":3,"in_app":true,"x":1}]}]',
    '[{"type":"A","frames":[{"module":"m","function":"f","filename":"x","lineno":3,"in_app":true,"lineno":4}]}]',
    '[{"type":"A","frames":[{"module":"m","function":"f","filename":"x","lineno":99999999999999999999999,"in_app":true}]}]',
    '[{"type":"A","frames":[7]}]',
    '[{"type":"A\\u00e9\\ud83d\\ude00","message":"caf\\u00e9"}]',
    '[{"type":"A"},{"type":"B","message":"m"},{"type":"C","frames":[]}]',
    json.dumps([{"type": f"E{i}"} for i in range(20)]),
    json.dumps([{"type": f"E{i}"} for i in range(16)] + [{"type": ""}]),
    '[{"type":"A","message":NaN}]',
]


def test_a_chain_reads_as_the_standard_library_and_the_models_read_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime(2026, 12, 5, tzinfo=UTC)
    raw = Simulator(seed=4).generate("error", 600, now - timedelta(minutes=5), now)
    simulated = [
        e["attributes"][CHAIN_ATTRIBUTE] for e in raw if CHAIN_ATTRIBUTE in e["attributes"]
    ]
    assert len(simulated) > 50
    for text in ODD_CHAINS + simulated:
        assert chain._parse_chain.__wrapped__(text) == chain._read_chain(text), text
    assert chain._read_chain('[{"type":"A","message":5}]')[0].message == "5"
    monkeypatch.setattr(chain, "_read_chain", None)  # the simulator's need no fallback
    assert all(chain._parse_chain.__wrapped__(text) for text in simulated)
