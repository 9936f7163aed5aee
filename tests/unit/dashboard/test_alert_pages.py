"""The alerts pages: firing and pending now, history, notifications; an unknown rule."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.unit.dashboard.conftest import XSS, FakeReader, minute_ago

LABELS = {"alertname": "checkout-errors", "app": "checkout", "env": "prod"}


def _firing(reader: FakeReader) -> None:
    reader.answers["alerts_now"] = [
        {
            "rule": "checkout-errors",
            "fingerprint": "f1",
            "state": "firing",
            "labels": LABELS,
            "annotations": {"summary": XSS},
            "starts_at": minute_ago(7),
            "active_since": minute_ago(9),
            "value": 14.1,
            "threshold": 10.0,
            "updated_at": minute_ago(7),
        }
    ]
    reader.answers["alerts_history"] = [
        {
            "rule": "checkout-errors",
            "fingerprint": "f1",
            "labels": LABELS,
            "previous": "pending",
            "state": "firing",
            "ts": minute_ago(7),
            "value": 14.1,
            "threshold": 10.0,
        }
    ]


def test_firing_alerts_their_history_and_labels_show_and_app_text_is_escaped(
    client: TestClient, reader: FakeReader
) -> None:
    _firing(reader)
    page = client.get("/alerts?app=checkout&range=1h").text
    now = page[page.index('data-rule="checkout-errors" data-state="firing"') :].split("</tr>")[0]
    assert '<span class="label-chip">app=checkout</span>' in now and "14.100" in now
    assert "pending → <strong>firing</strong>" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert dict(reader.asked)["alerts_now"]["app"] == "checkout"
    # each firing alert offers a subscription to its rule, app and env
    assert 'href="/subscriptions?rule=checkout-errors&amp;app=checkout&amp;env=prod"' in now


def test_a_rule_page_narrows_to_the_rule_and_an_unknown_rule_is_a_404(
    client: TestClient, reader: FakeReader
) -> None:
    _firing(reader)
    assert client.get("/alerts/checkout-errors").status_code == 200
    assert dict(reader.asked)["alerts_history"]["rule"] == "checkout-errors"
    reader.answers.pop("alerts_now")
    reader.answers.pop("alerts_history")
    missing = client.get("/alerts/no-such-rule")
    assert missing.status_code == 404
    assert (
        "rule &#39;no-such-rule&#39; is not applied and has no alert in this range" in missing.text
    )
