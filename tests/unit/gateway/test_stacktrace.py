"""Stack traces of common runtimes → frames, outermost first, with an in-app guess."""

from __future__ import annotations

from shiftright_server.producers.gateway.stacktrace import parse_frames


def summary(text: str) -> list[tuple[object, ...]]:
    return [
        (f["module"], f["function"], f["filename"], f["lineno"], f["in_app"])
        for f in parse_frames(text)
    ]


def test_python() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/shop/views.py", line 12, in checkout\n    total()\n'
        '  File "/usr/lib/python3/dist-packages/requests/api.py", line 7, in get\n    x\n'
        "ConnectionError: down"
    )
    assert summary(text) == [
        ("shop.views", "checkout", "/srv/app/shop/views.py", 12, True),
        ("requests.api", "get", "/usr/lib/python3/dist-packages/requests/api.py", 7, False),
    ]


def test_java_keeps_the_first_exceptions_frames() -> None:
    text = (
        "java.lang.IllegalStateException: boom\n"
        "\tat com.shop.Cart.total(Cart.java:42)\n"
        "\tat java.base/java.lang.Thread.run(Thread.java:833)\n"
        "Caused by: java.io.IOException: disk\n"
        "\tat com.shop.Io.read(Io.java:5)\n"
    )
    assert summary(text) == [
        ("java.lang.Thread", "run", "Thread.java", 833, False),
        ("com.shop.Cart", "total", "Cart.java", 42, True),
    ]


def test_javascript() -> None:
    text = "TypeError: x\n    at Cart.total (/app/src/cart.js:10:5)\n    at /app/node_modules/express/router.js:284:7"
    assert summary(text) == [
        ("express.router", "<anonymous>", "/app/node_modules/express/router.js", 284, False),
        ("src.cart", "Cart.total", "/app/src/cart.js", 10, True),
    ]


def test_dotnet() -> None:
    text = (
        "System.InvalidOperationException: boom\n"
        "   at Shop.Cart.Total(Int32 qty) in /src/Cart.cs:line 42\n"
        "   at System.Threading.ExecutionContext.Run()\n"
    )
    assert summary(text) == [
        ("System.Threading.ExecutionContext", "Run", "", 0, False),
        ("Shop.Cart", "Total", "/src/Cart.cs", 42, True),
    ]


def test_go_panic() -> None:
    text = (
        "panic: boom\n\ngoroutine 1 [running]:\n"
        "main.(*Cart).Total(...)\n\t/app/cart.go:42 +0x1d\n"
        "main.main()\n\t/app/main.go:10 +0x25\n"
    )
    assert summary(text) == [
        ("main", "main", "/app/main.go", 10, True),
        ("main.(*Cart)", "Total", "/app/cart.go", 42, True),
    ]


def test_ruby() -> None:
    text = "/app/cart.rb:10:in `total'\n\tfrom /gems/rack/lib/rack.rb:5:in `call'"
    assert summary(text) == [
        ("lib.rack", "call", "/gems/rack/lib/rack.rb", 5, False),
        ("app.cart", "total", "/app/cart.rb", 10, True),
    ]


def test_unknown_text_gives_no_frames() -> None:
    assert parse_frames("something went wrong") == []
    assert parse_frames("") == []
