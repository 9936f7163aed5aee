"""The apps, where they run, and how often they change and fail."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deployment:
    """One app in one environment."""

    release: str  # the release running there at the start
    hosts: int
    share: float  # share of all request traffic


#: app -> env -> where and what it runs
TOPOLOGY: dict[str, dict[str, Deployment]] = {
    "checkout": {
        "prod": Deployment(release="1.4.2", hosts=4, share=0.40),
        "preprod": Deployment(release="1.5.0", hosts=1, share=0.04),
    },
    "catalog": {
        "prod": Deployment(release="2.7.0", hosts=3, share=0.60),
        "preprod": Deployment(release="2.8.0", hosts=2, share=0.06),
    },
}

#: env -> share of requests that raise
ERROR_RATE: dict[str, float] = {"prod": 0.012, "preprod": 0.03}
#: env -> mean seconds between deploys
DEPLOY_EVERY_S: dict[str, float] = {"prod": 4 * 3600.0, "preprod": 3600.0}
#: mean seconds between flag flips, in every env
FLAG_FLIP_EVERY_S = 1800.0

#: app -> its feature flags
FLAGS: dict[str, tuple[str, ...]] = {
    "checkout": ("new-checkout-flow", "one-click-pay", "address-autocomplete"),
    "catalog": ("new-search-ranking", "reco-carousel", "lazy-images"),
}
#: who flips flags
ACTORS: tuple[str, ...] = ("ci-pipeline", "alice@shop.example", "bob@shop.example", "release-bot")

N_USERS = 5000
N_CUSTOMERS = 200  # tenants the users belong to
