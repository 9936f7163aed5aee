"""Who sends the requests: users with a Zipf-like activity, their tenants and sessions."""

from __future__ import annotations

import random

from shiftright_server.producers.simulator.catalog.shop import N_CUSTOMERS, N_USERS
from shiftright_server.producers.simulator.sampling import weighted_pool

USER_BITS = 16  # the user pool has 2**16 entries


class Population:
    """Users, the customer (tenant) each belongs to, and each user's open session.

    A session ends 5 to ~75 minutes after it started; the request loop renews it in place
    (``session_end``, ``session_id``) for speed.
    """

    def __init__(self, rng: random.Random) -> None:
        self.users = [f"user-{i:04d}" for i in range(N_USERS)]
        self.user_pool = weighted_pool(
            range(N_USERS), [(i + 5) ** -1.05 for i in range(N_USERS)], USER_BITS
        )
        tenants = weighted_pool(
            range(N_CUSTOMERS), [(i + 2) ** -0.9 for i in range(N_CUSTOMERS)], 12
        )
        self.customer_of = [f"cust-{tenants[rng.getrandbits(12)]:03d}" for _ in range(N_USERS)]
        self.session_end = [0] * N_USERS  # epoch ms
        self.session_id = [""] * N_USERS
