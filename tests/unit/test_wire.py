"""Single events and NDJSON batches in Kafka messages."""

from shiftright_server.schemas import wire


def test_a_message_without_the_batch_header_is_one_event_even_with_newlines() -> None:
    pretty = b'{\n  "kind": "usage"\n}'
    assert wire.split_events(pretty, None) == [pretty]
    assert wire.split_events(pretty, [("other", b"x")]) == [pretty]


def test_a_batch_splits_into_its_lines_in_order() -> None:
    value = b'{"a":1}\n{"a":2}\n\n{"a":3}\n'
    assert wire.split_events(value, wire.BATCH_HEADERS) == [b'{"a":1}', b'{"a":2}', b'{"a":3}']


def test_lines_of_only_whitespace_are_skipped_and_others_kept_as_they_are() -> None:
    value = b'{"a":1}\n  \t\r\n\x0b\n {"a":2}\r\n\n'
    assert wire.split_events(value, wire.BATCH_HEADERS) == [b'{"a":1}', b' {"a":2}\r']


def test_pack_respects_the_event_and_byte_bounds_and_round_trips() -> None:
    payloads = [b'{"n":%d}' % i for i in range(2500)]
    packed = wire.pack(payloads)
    assert len(packed) == 3
    assert all(len(p) <= wire.MAX_BATCH_BYTES for p in packed)
    back = [e for value in packed for e in wire.split_events(value, wire.BATCH_HEADERS)]
    assert back == payloads
    big = [b"x" * 300_000, b"y" * 300_000]
    assert len(wire.pack(big)) == 2


def test_murmur2_agrees_with_kafkas_published_values() -> None:
    # Expected values (signed 32-bit, as Java returns them) from Apache Kafka's own tests.
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, signed in cases.items():
        assert wire.murmur2(key) == signed & 0xFFFFFFFF, key


def test_partition_of_is_the_positive_hash_modulo_the_partition_count() -> None:
    assert wire.partition_of(b"21", 8) == (-973932308 & 0x7FFFFFFF) % 8
    spread = {wire.partition_of(f"checkout|prod|feature.{i}".encode(), 8) for i in range(200)}
    assert spread == set(range(8))
