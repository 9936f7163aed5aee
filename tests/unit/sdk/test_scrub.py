"""Secrets in attributes, nested extras and headers never leave the process."""

from __future__ import annotations

import shiftright
from shiftright.scrub import REDACTED, Scrubber

from tests.unit.sdk.conftest import SDK


def test_sensitive_attribute_values_are_redacted_before_sending(sdk: SDK) -> None:
    sdk.init()
    shiftright.set_tag("auth_token", "abc")
    shiftright.track(
        "login",
        password="hunter2",
        api_key="k-1",
        Authorization="Bearer x",
        session_cookie="c",
        client_secret="s",
        email_domain="example.com",
    )
    [usage] = sdk.events("usage")
    attributes = usage["attributes"]
    for key in (
        "password",
        "api_key",
        "Authorization",
        "session_cookie",
        "client_secret",
        "auth_token",
    ):
        assert attributes[key] == REDACTED, key
    assert attributes["email_domain"] == "example.com"
    assert b"hunter2" not in sdk.transport.messages[0].value


def test_nested_values_and_headers() -> None:
    scrubber = Scrubber(shiftright.Config(app="a", env="b").scrub_keys)
    nested = scrubber.mapping({"extra": {"X-Api-Key": "1", "user": {"pwd": "2", "id": 3}}})
    assert nested == {"extra": {"X-Api-Key": REDACTED, "user": {"pwd": REDACTED, "id": 3}}}
    headers = scrubber.headers([("Cookie", "a=b"), ("Set-Cookie", "c"), ("Accept", "json")])
    assert headers == {"cookie": REDACTED, "set-cookie": REDACTED, "accept": "json"}


def test_extra_scrub_keys_are_configurable(sdk: SDK) -> None:
    sdk.init(scrub_keys=("iban",))
    shiftright.track("pay", iban="DE00", password="kept: not in the custom list")
    [usage] = sdk.events("usage")
    assert usage["attributes"] == {"iban": REDACTED, "password": "kept: not in the custom list"}
