"""The OpenFeature provider: standard API calls answered from the local store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import shiftright
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from shiftright.flags.provider import ShiftrightProvider

from tests.unit.sdk.conftest import SDK
from tests.unit.sdk.test_flags import TEST_DEFS, FakeFeed, snapshot


@pytest.fixture
def provider(sdk: SDK) -> Iterator[ShiftrightProvider]:
    sdk.init(flags_feed=FakeFeed)
    made = ShiftrightProvider(ready_timeout=0)
    shiftright.flag("x")  # starts the store
    FakeFeed.made[-1].push(snapshot(flags=TEST_DEFS))
    api.set_provider(made)
    yield made
    api.shutdown()


def test_resolutions_carry_value_variant_and_reason(provider: ShiftrightProvider) -> None:
    client = api.get_client()
    on = client.get_boolean_details("new-checkout", False)
    assert (on.value, on.variant, on.reason) == (True, "on", Reason.STATIC)
    wide = client.get_string_details("layout", "v0", EvaluationContext(targeting_key="u-1"))
    assert (wide.value, wide.variant, wide.reason) == ("v2", "wide", Reason.TARGETING_MATCH)
    pro = client.get_string_details(
        "layout", "v0", EvaluationContext("u-77", {"plan": "enterprise"})
    )
    assert pro.variant == "wide"
    member = client.get_boolean_details(
        "bulk-export", False, EvaluationContext(attributes={"customer_id": "acme"})
    )
    assert (member.value, member.reason) == (False, Reason.DEFAULT)


def test_errors_give_the_default_with_a_code(provider: ShiftrightProvider) -> None:
    client = api.get_client()
    missing = client.get_boolean_details("nope", True)
    assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    wrong = client.get_integer_details("layout", 3)
    assert (wrong.value, wrong.error_code) == (3, ErrorCode.TYPE_MISMATCH)


def test_each_flip_emits_configuration_changed(provider: ShiftrightProvider) -> None:
    heard: list[EventDetails] = []
    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, heard.append)
    FakeFeed.made[-1].push(
        snapshot(flags=TEST_DEFS, overrides={"new-checkout|test": {"to": "off"}})
    )
    api.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, heard.append)
    assert [h.flags_changed for h in heard] == [["new-checkout"]]
    off = api.get_client().get_boolean_details("new-checkout", False)
    assert (off.value, off.variant, off.reason) == (False, "off", Reason.DISABLED)
