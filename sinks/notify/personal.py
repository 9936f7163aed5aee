"""People's own subscriptions (the identity store's, see
:mod:`shiftright_server.infra.access.subscriptions`) as the notifier's subscriptions, and
the one-click unsubscribe link each of their e-mails carries (RFC 8058)."""

from __future__ import annotations

from collections.abc import Callable

from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.access.subscriptions import PREFIX, PersonalSubscription
from shiftright_server.schemas.alerts import Subscription


def as_subscription(personal: PersonalSubscription) -> Subscription:
    return Subscription.model_validate(
        {
            "name": personal.name,
            "channel": personal.channel,
            "to": personal.to,
            "matchers": personal.matchers(),
            "rules": [personal.rule] if personal.rule else [],
        }
    )


def personal_subscriptions(identity: Identity) -> list[Subscription]:
    """Those notified at once (digests are sent by :mod:`.digest`)."""
    return [as_subscription(p) for p in identity.subscriptions.list() if p.mode == "immediate"]


def unsubscribe_links(identity: Identity, external_url: str) -> Callable[[str], str | None]:
    """Subscription name → its signed unsubscribe URL (None for the rule file's)."""
    base = external_url.rstrip("/")

    def link(subscription: str) -> str | None:
        if not subscription.startswith(PREFIX):
            return None
        return f"{base}/unsubscribe/{identity.unsubscribe_token(subscription[len(PREFIX) :])}"

    return link
