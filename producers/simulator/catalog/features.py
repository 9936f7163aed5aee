"""Each app's endpoints and how their requests behave."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    """One endpoint: a request's latency is log-normal around ``median_ms``."""

    name: str
    route: str
    method: str
    popularity: float  # relative weight among the app's requests
    median_ms: float
    sigma: float  # spread of the log-normal latency
    client_error_share: float  # share of requests answered with a 4xx
    order_value: float = 0.0  # median order value of a successful request; 0: none


FEATURES: dict[str, tuple[FeatureSpec, ...]] = {
    "checkout": (
        FeatureSpec(
            name="cart.view",
            route="/cart",
            method="GET",
            popularity=30,
            median_ms=45,
            sigma=0.45,
            client_error_share=0.005,
        ),
        FeatureSpec(
            name="cart.add",
            route="/cart/items",
            method="POST",
            popularity=18,
            median_ms=70,
            sigma=0.5,
            client_error_share=0.02,
        ),
        FeatureSpec(
            name="cart.update",
            route="/cart/items/{item_id}",
            method="PATCH",
            popularity=6,
            median_ms=65,
            sigma=0.5,
            client_error_share=0.02,
        ),
        FeatureSpec(
            name="cart.remove",
            route="/cart/items/{item_id}",
            method="DELETE",
            popularity=4,
            median_ms=55,
            sigma=0.5,
            client_error_share=0.03,
        ),
        FeatureSpec(
            name="checkout.start",
            route="/checkout",
            method="POST",
            popularity=8,
            median_ms=120,
            sigma=0.55,
            client_error_share=0.02,
        ),
        FeatureSpec(
            name="checkout.shipping",
            route="/checkout/{id}/shipping",
            method="PUT",
            popularity=6,
            median_ms=140,
            sigma=0.6,
            client_error_share=0.04,
        ),
        FeatureSpec(
            name="checkout.payment",
            route="/checkout/{id}/payment",
            method="POST",
            popularity=5,
            median_ms=380,
            sigma=0.7,
            client_error_share=0.05,
        ),
        FeatureSpec(
            name="checkout.submit",
            route="/checkout/{id}/submit",
            method="POST",
            popularity=3.5,
            median_ms=450,
            sigma=0.6,
            client_error_share=0.03,
            order_value=64,
        ),
        FeatureSpec(
            name="promo.apply",
            route="/cart/promo",
            method="POST",
            popularity=2,
            median_ms=60,
            sigma=0.5,
            client_error_share=0.25,
        ),
        FeatureSpec(
            name="order.history",
            route="/orders",
            method="GET",
            popularity=3,
            median_ms=160,
            sigma=0.6,
            client_error_share=0.01,
        ),
        FeatureSpec(
            name="order.view",
            route="/orders/{id}",
            method="GET",
            popularity=2.5,
            median_ms=90,
            sigma=0.5,
            client_error_share=0.03,
        ),
        FeatureSpec(
            name="auth.login",
            route="/auth/login",
            method="POST",
            popularity=6,
            median_ms=210,
            sigma=0.4,
            client_error_share=0.08,
        ),
        FeatureSpec(
            name="health.check",
            route="/healthz",
            method="GET",
            popularity=4,
            median_ms=3,
            sigma=0.3,
            client_error_share=0.0,
        ),
    ),
    "catalog": (
        FeatureSpec(
            name="product.view",
            route="/products/{id}",
            method="GET",
            popularity=40,
            median_ms=35,
            sigma=0.5,
            client_error_share=0.02,
        ),
        FeatureSpec(
            name="search.query",
            route="/search",
            method="GET",
            popularity=22,
            median_ms=110,
            sigma=0.7,
            client_error_share=0.01,
        ),
        FeatureSpec(
            name="category.browse",
            route="/categories/{slug}",
            method="GET",
            popularity=14,
            median_ms=60,
            sigma=0.5,
            client_error_share=0.01,
        ),
        FeatureSpec(
            name="home.view",
            route="/",
            method="GET",
            popularity=12,
            median_ms=40,
            sigma=0.4,
            client_error_share=0.0,
        ),
        FeatureSpec(
            name="search.suggest",
            route="/search/suggest",
            method="GET",
            popularity=9,
            median_ms=18,
            sigma=0.4,
            client_error_share=0.0,
        ),
        FeatureSpec(
            name="recommendations.get",
            route="/recommendations",
            method="GET",
            popularity=8,
            median_ms=95,
            sigma=0.6,
            client_error_share=0.0,
        ),
        FeatureSpec(
            name="product.images",
            route="/products/{id}/images",
            method="GET",
            popularity=6,
            median_ms=25,
            sigma=0.5,
            client_error_share=0.02,
        ),
        FeatureSpec(
            name="product.reviews",
            route="/products/{id}/reviews",
            method="GET",
            popularity=5,
            median_ms=70,
            sigma=0.5,
            client_error_share=0.01,
        ),
        FeatureSpec(
            name="inventory.check",
            route="/products/{id}/stock",
            method="GET",
            popularity=4,
            median_ms=30,
            sigma=0.5,
            client_error_share=0.02,
        ),
        FeatureSpec(
            name="wishlist.add",
            route="/wishlist/items",
            method="POST",
            popularity=1.5,
            median_ms=50,
            sigma=0.5,
            client_error_share=0.05,
        ),
        FeatureSpec(
            name="review.submit",
            route="/products/{id}/reviews",
            method="POST",
            popularity=0.4,
            median_ms=130,
            sigma=0.5,
            client_error_share=0.1,
        ),
        FeatureSpec(
            name="health.check",
            route="/healthz",
            method="GET",
            popularity=3,
            median_ms=3,
            sigma=0.3,
            client_error_share=0.0,
        ),
    ),
}

#: method -> status of a successful request
OK_STATUS: dict[str, int] = {"GET": 200, "POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}
#: method -> 4xx statuses its failed requests cycle through
FAIL_STATUS: dict[str, tuple[int, ...]] = {
    "GET": (404, 404, 400, 403),
    "DELETE": (404, 409),
    "POST": (400, 422, 409, 401),
    "PUT": (400, 422),
    "PATCH": (400, 422, 404),
}
