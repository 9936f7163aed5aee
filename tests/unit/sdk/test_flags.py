"""Flags in the app: bucketing, evaluation, the store, ``shiftright.flag`` and the variants
each event carries."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import shiftright
from shiftright.config import Config
from shiftright.flags.evaluate import Snapshot, compile_snapshot
from shiftright.flags.murmur import FlagBuckets, bucket, murmur3_32
from shiftright.flags.store import FlagStore
from shiftright.flags.topic import TOPIC, Folder, file_key, flip_key, member_key
from shiftright_server.schemas import topics
from shiftright_server.schemas.events import ErrorEvent, UsageEvent
from shiftright_server.schemas.flag_file import load_flags

from tests.unit.flags.test_flag_file import GOOD
from tests.unit.sdk.conftest import SDK

DEFS = [f.model_dump(mode="json") for f in load_flags(GOOD).flags]
#: The same flags, with the settings of prod in the SDK fixture's environment ``test``.
TEST_DEFS = [f.model_dump(mode="json") for f in load_flags(re.sub(r"\bprod\b", "test", GOOD)).flags]


def snapshot(**changes: Any) -> Snapshot:
    base: dict[str, Any] = {"app": "checkout", "version": 1, "flags": DEFS}
    return Snapshot(**{**base, **changes})


class FakeFeed:
    """Feeds the store what a test hands it, as the topic reader would."""

    made: list[FakeFeed] = []

    def __init__(self, store: FlagStore, config: Config) -> None:
        self.store, self.config, self.stopped = store, config, False
        FakeFeed.made.append(self)

    def start(self) -> FakeFeed:
        return self

    def stop(self) -> None:
        self.stopped = True

    def push(self, snap: Snapshot) -> list[str]:
        return self.store.replace(snap, "server")


@pytest.mark.parametrize(
    ("data", "seed", "expected"),
    [
        (b"", 0, 0),
        (b"", 1, 0x514E28B7),
        (b"\0\0\0\0", 0, 0x2362F9DE),
        (b"aaaa", 0x9747B28C, 0x5A97808A),
        (b"abc", 0, 0xB3DD93FA),
        (b"Hello, world!", 0x9747B28C, 0x24884CBA),
        (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
    ],
)
def test_murmur3_matches_the_reference_vectors(data: bytes, seed: int, expected: int) -> None:
    assert murmur3_32(data, seed) == expected


def test_buckets_are_stable_per_flag_and_spread_evenly() -> None:
    assert bucket("layout", "u-42") == bucket("layout", "u-42")
    tens = Counter(int(bucket("layout", f"user-{i}") // 10) for i in range(20_000))
    assert set(tens) == set(range(10))
    assert all(1700 < n < 2300 for n in tens.values()), tens
    # another flag splits the same users differently
    same = sum(
        (bucket("layout", f"u{i}") < 50) == (bucket("other", f"u{i}") < 50) for i in range(2000)
    )
    assert 800 < same < 1200


def test_a_flags_precomputed_prefix_gives_the_same_buckets_as_the_whole_hash() -> None:
    flags = ["a", "ab", "abc", "layout", "new-checkout", "x" * 23, "y" * 24, "z" * 300, "café"]
    keys = ["", "u", "u-1", "user-123456", "k" * 23, "k" * 24, "k" * 70_000, "ünï"]
    for flag in flags:
        fast = FlagBuckets(flag)
        for key in keys:
            assert fast.bucket(key) == bucket(flag, key), (flag, key[:30])


def _eval(
    env: str, snap: Snapshot, flag: str, user: str = "", customer: str = "", **attrs: str
) -> tuple[Any, str, str]:
    return compile_snapshot(snap, env)[flag].evaluate(user, customer, attrs)


def test_a_toggle_is_on_or_off_per_environment() -> None:
    assert _eval("prod", snapshot(), "new-checkout") == (True, "on", "STATIC")
    assert _eval("preprod", snapshot(), "new-checkout") == (None, "off", "DISABLED")
    assert _eval("staging", snapshot(), "new-checkout")[2] == "DISABLED"  # default_state off


def test_flag_targeting_first_match_wins() -> None:
    snap = snapshot()
    assert _eval("prod", snap, "layout", user="u-1") == ("v2", "wide", "TARGETING_MATCH")
    assert _eval("prod", snap, "layout", user="u-9", plan="pro") == (
        "v2",
        "wide",
        "TARGETING_MATCH",
    )
    split = Counter(_eval("prod", snap, "layout", user=f"u{i}")[1] for i in range(5000))
    assert 800 < split["wide"] < 1200 and split["wide"] + split["classic"] == 5000
    assert _eval("prod", snap, "layout")[2] == "DEFAULT"  # no key: no bucket


def test_a_percentage_split_gives_each_user_the_same_variant_every_time() -> None:
    snap = snapshot()
    first = [_eval("prod", snap, "layout", user=f"u{i}")[1] for i in range(200)]
    again = [_eval("prod", snap, "layout", user=f"u{i}")[1] for i in range(200)]
    assert first == again


def test_a_ticket_flag_is_on_for_segment_members_only() -> None:
    snap = snapshot(members={"bulk-export|prod": frozenset({"acme"})})
    assert _eval("prod", snap, "bulk-export", customer="acme") == (True, "on", "TARGETING_MATCH")
    assert _eval("prod", snap, "bulk-export", customer="tiny") == (False, "off", "DEFAULT")


def test_a_flip_overrides_the_file_in_its_environment_only() -> None:
    snap = snapshot(overrides={"new-checkout|prod": {"to": "off"}, "layout|prod": {"to": "wide"}})
    assert _eval("prod", snap, "new-checkout")[1:] == ("off", "DISABLED")
    assert _eval("preprod", snap, "new-checkout")[1] == "off"  # the file says off there
    assert _eval("prod", snap, "layout", user="u-3") == ("v2", "wide", "STATIC")
    restored = snapshot(overrides={"new-checkout|prod": {"to": ""}})
    assert _eval("prod", restored, "new-checkout")[1] == "on"


def test_the_topic_folds_into_one_snapshot_per_app() -> None:
    folder = Folder("checkout")
    records = [
        (file_key("checkout"), {"version": 3, "flags": DEFS}),
        (file_key("billing"), {"version": 9, "flags": []}),
        (flip_key("checkout", "new-checkout", "prod"), {"to": "off"}),
        (member_key("checkout", "bulk-export", "prod", "acme"), {"count": 1200}),
        (member_key("checkout", "bulk-export", "prod", "tiny"), {"count": 1000}),
        (member_key("checkout", "bulk-export", "prod", "tiny"), None),
    ]
    for offset, (key, doc) in enumerate(records):
        folder.fold(key, json.dumps(doc).encode() if doc is not None else None, offset)
    snap = folder.snapshot("checkout")
    assert snap.version == 3 and set(folder.apps) == {"checkout"}
    assert snap.overrides == {"new-checkout|prod": {"to": "off"}}
    assert snap.members == {"bulk-export|prod": frozenset({"acme"})}
    assert TOPIC == topics.FLAGS_CONFIG


def test_the_store_tells_listeners_which_flags_changed() -> None:
    store = FlagStore("prod")
    heard: list[list[str]] = []
    store.listeners.append(heard.append)
    store.replace(snapshot(), "server")
    store.replace(snapshot(overrides={"new-checkout|prod": {"to": "off"}}), "server")
    store.replace(snapshot(overrides={"new-checkout|prod": {"to": "off"}}), "server")
    store.replace(snapshot(overrides={"new-checkout|preprod": {"to": "on"}}), "server")
    assert heard == [["bulk-export", "layout", "new-checkout"], ["new-checkout"], ["new-checkout"]]


def test_flag_before_init_or_before_any_copy_returns_the_default(sdk: SDK) -> None:
    assert shiftright.flag("new-checkout", "fallback") == "fallback"
    sdk.init(flags_feed=FakeFeed)
    assert shiftright.flag("new-checkout", False) is False  # nothing fed yet


def test_flag_follows_every_push_and_records_variants_on_events(sdk: SDK) -> None:
    sdk.init(flags_feed=FakeFeed)
    shiftright.flag("x", 0)  # starts the feed
    feed = FakeFeed.made[-1]
    feed.push(snapshot(flags=TEST_DEFS))
    with shiftright.scope(user_id="u-1"):
        assert shiftright.flag("new-checkout", False) is True
        assert shiftright.flag("layout", "v0") == "v2"
        shiftright.track("checkout.submit")
        try:
            raise RuntimeError("declined")
        except RuntimeError:
            shiftright.capture_exception()
    feed.push(snapshot(flags=TEST_DEFS, overrides={"new-checkout|test": {"to": "off"}}))
    with shiftright.scope(user_id="u-1"):
        assert shiftright.flag("new-checkout", False) is False
        shiftright.track("checkout.submit")
    usage = [UsageEvent.model_validate(e) for e in sdk.events("usage")]
    error = [ErrorEvent.model_validate(e) for e in sdk.events("error")]
    assert [u.flags for u in usage] == [
        {"new-checkout": "on", "layout": "wide"},
        {"new-checkout": "off"},
    ]
    assert error[0].flags == {"new-checkout": "on", "layout": "wide"}


def test_flag_returns_the_default_for_the_wrong_type_and_never_raises(sdk: SDK) -> None:
    sdk.init(flags_feed=FakeFeed)
    shiftright.flag("x")
    FakeFeed.made[-1].push(snapshot(flags=TEST_DEFS))
    assert shiftright.flag("layout", 7) == 7  # a string flag asked for a number
    assert shiftright.flag("layout", None, user_id="u-1") == "v2"
    store = FakeFeed.made[-1].store
    store.compiled["layout"].rules = None  # type: ignore[assignment]  # a broken copy
    assert shiftright.flag("layout", "safe", user_id="u-1") == "safe"


def test_variants_per_scope_are_bounded(sdk: SDK) -> None:
    many = [{"name": f"f{i}", "kind": "toggle", "default_state": True} for i in range(40)]
    sdk.init(flags_feed=FakeFeed)
    shiftright.flag("x")
    FakeFeed.made[-1].push(snapshot(flags=many))
    with shiftright.scope(user_id="u"):
        assert all(shiftright.flag(f"f{i}", False) for i in range(40))
        shiftright.track("page")
    (event,) = sdk.events("usage")
    assert len(event["flags"]) == 16


def test_the_last_copy_is_saved_and_served_from_the_file(sdk: SDK, tmp_path: Path) -> None:
    from shiftright.flags.feed import read_file, write_file

    path = tmp_path / "flags.json"
    write_file(str(path), snapshot(flags=TEST_DEFS, overrides={"new-checkout|test": {"to": "off"}}))
    saved = read_file(str(path))
    assert saved is not None and saved.version == 1
    sdk.init(flags_feed=FakeFeed, flags_file=str(path))
    assert shiftright.flag("layout", "v0", user_id="u-1") == "v2"  # from the file
    assert shiftright.flag("new-checkout", True) is True  # flipped off: the default
    assert FakeFeed.made[-1].store.source == "file"


def test_close_stops_the_feed(sdk: SDK) -> None:
    sdk.init(flags_feed=FakeFeed)
    shiftright.flag("x")
    feed = FakeFeed.made[-1]
    shiftright.close(1)
    assert feed.stopped


def test_with_the_server_away_the_sdk_serves_its_last_copy_and_raises_nothing(
    sdk: SDK, tmp_path: Path
) -> None:
    """The real topic reader, refused by the unit guard like an unreachable broker."""
    from shiftright.flags import runtime
    from shiftright.flags.feed import KafkaFeed, write_file

    path = tmp_path / "flags.json"
    write_file(str(path), snapshot(flags=TEST_DEFS))
    sdk.init(flags_file=str(path))
    assert shiftright.flag("layout", "v0", user_id="u-1") == "v2"
    client = shiftright.get_client()
    assert client is not None and runtime.store_of(client).source == "file"
    running = runtime._runtime
    assert running is not None and isinstance(running.feed, KafkaFeed)
    for _ in range(100):  # the reader keeps retrying meanwhile; the app sees nothing of it
        assert shiftright.flag("new-checkout", False) is True
