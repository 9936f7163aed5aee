"""Single events and NDJSON batches in Kafka messages."""

from schemas import wire


def test_a_message_without_the_batch_header_is_one_event_even_with_newlines() -> None:
    pretty = b'{\n  "kind": "usage"\n}'
    assert wire.split_events(pretty, None) == [pretty]
    assert wire.split_events(pretty, [("other", b"x")]) == [pretty]


def test_a_batch_splits_into_its_lines_in_order() -> None:
    value = b'{"a":1}\n{"a":2}\n\n{"a":3}\n'
    assert wire.split_events(value, wire.BATCH_HEADERS) == [b'{"a":1}', b'{"a":2}', b'{"a":3}']


def test_pack_respects_the_event_and_byte_bounds_and_round_trips() -> None:
    payloads = [b'{"n":%d}' % i for i in range(2500)]
    packed = wire.pack(payloads)
    assert len(packed) == 3
    assert all(len(p) <= wire.MAX_BATCH_BYTES for p in packed)
    back = [e for value in packed for e in wire.split_events(value, wire.BATCH_HEADERS)]
    assert back == payloads
    big = [b"x" * 300_000, b"y" * 300_000]
    assert len(wire.pack(big)) == 2
