"""coverage.py's per-test contexts against prod error stacks: the tests that ran each
failing line, matched by module across machines; failing lines no test ran first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coverage import CoverageData
from shiftright_server.infra.cli.qa_coverage import assess, load


def _coverage(tmp_path: Path) -> Path:
    """As ``pytest --cov-context=test`` writes it on a CI machine."""
    path = tmp_path / ".coverage"
    data = CoverageData(basename=str(path))
    cart = "/ci/build/src/shop/cart.py"
    for context, lines in (
        ("tests/test_cart.py::test_add|run", [10, 11, 12]),
        ("tests/test_cart.py::test_add_twice|run", [10, 11]),
        ("", [1, 2, 10]),  # import time: no test
    ):
        data.set_context(context)
        data.add_lines({cart: lines, "/ci/build/src/shop/pay.py": [5] if context else []})
    data.write()
    return path


def _stack(route: str, errors: int, *frames: tuple[str, int]) -> dict[str, Any]:
    app_frames = [(module, "f", f"/srv/app/{module}.py", line, True) for module, line in frames]
    return {
        "app": "shop",
        "route": route,
        "exception_type": "KeyError",
        "errors": errors,
        "app_frames": app_frames,
    }


def test_failing_lines_are_matched_to_the_tests_that_ran_them(tmp_path: Path) -> None:
    covered = load(_coverage(tmp_path))
    assert covered["ci.build.src.shop.cart"][10] == {
        "tests/test_cart.py::test_add",
        "tests/test_cart.py::test_add_twice",
    }
    assert 1 not in covered["ci.build.src.shop.cart"]  # ran outside any test
    found = assess(
        [
            _stack("/cart", 9, ("shop.views", 3), ("shop.cart", 11)),
            _stack("/cart/{sku}", 2, ("shop.cart", 10), ("shop.cart", 40)),
            _stack("/pay", 30, ("shop.pay", 5)),
            _stack("/boot", 1),
        ],
        covered,
    )
    assert [(a.route, a.failing_line, a.tests, a.frames_run, a.frames) for a in found] == [
        ("/cart/{sku}", "shop.cart:40", [], 1, 2),  # the failing line never ran in a test
        ("/boot", "", [], 0, 0),
        (
            "/pay",
            "shop.pay:5",
            ["tests/test_cart.py::test_add", "tests/test_cart.py::test_add_twice"],
            1,
            1,
        ),
        (
            "/cart",
            "shop.cart:11",
            ["tests/test_cart.py::test_add", "tests/test_cart.py::test_add_twice"],
            1,
            2,
        ),
    ]
