"""How each ``{placeholder}`` in an error message template is filled, from the seeded RNG."""

from __future__ import annotations

import random
from collections.abc import Callable

_WORDS = ("abc", "NaN", "two", "1e9", "null", "--", "12a", "∞")
_NAMES = ("ann", "bo", "chen", "dara", "eli", "femi")
_DOMAINS = ("example.com", "mail.example", "shop.test", "example")  # the last one is invalid
_SLUGS = ("promo-banner", "gift-card", "holiday-sale", "landing-b", "outdoor", "kids-shoes")

FILLERS: dict[str, Callable[[random.Random], str]] = {
    "sku": lambda r: f"SKU-{r.randrange(10000, 99999)}",
    "ms": lambda r: str(r.choice((500, 1000, 2000, 3000, 5000, 10000))),
    "port": lambda r: str(r.randrange(8000, 8100)),
    "hex": lambda r: f"{r.getrandbits(48):012x}",
    "ip": lambda r: f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}",
    "word": lambda r: r.choice(_WORDS),
    "attr": lambda r: r.choice(("percent", "amount", "currency", "code")),
    "slug": lambda r: r.choice(_SLUGS),
    "n": lambda r: str(r.randrange(1, 5000)),
    "n2": lambda r: str(r.randrange(1, 5000)),
    "id": lambda r: str(r.randrange(100000, 999999)),
    "wh": lambda r: r.choice(("AMS1", "FRA2", "DUB1", "LON3")),
    "code": lambda r: r.choice(("insufficient_funds", "do_not_honor", "expired_card", "fraud")),
    "cls": lambda r: r.choice(("Decimal", "datetime", "UUID", "set")),
    "email": lambda r: f"{r.choice(_NAMES)}{r.randrange(100)}@{r.choice(_DOMAINS)}",
    "byte": lambda r: f"{r.randrange(128, 256):02x}",
    "postcode": lambda r: str(r.randrange(10000, 99999)),
    "svc": lambda r: r.choice(("inventory", "payments", "pricing", "search")),
    "amount": lambda r: f"{r.lognormvariate(3.5, 0.8):.2f}",
    "amount2": lambda r: f"{r.lognormvariate(3.5, 0.8):.2f}",
    "currency": lambda r: r.choice(("EUR", "USD", "GBP", "JPY", "CHF")),
    "user": lambda r: f"user-{r.randrange(5000):04d}",
}


def fill(template: str, fields: tuple[str, ...], rng: random.Random) -> str:
    """``template`` with each placeholder in ``fields`` drawn (in ``fields`` order)."""
    return template.format_map({f: FILLERS[f](rng) for f in fields})
