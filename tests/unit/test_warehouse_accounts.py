"""Warehouse accounts: who a request names, whether its key holds, and what a read-only
request may reach."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from shiftright_server.infra.settings import load_settings, writer_key_path
from shiftright_server.infra.warehouse.accounts import AccountError, Accounts, credentials
from shiftright_server.infra.warehouse.errors import WarehouseError
from shiftright_server.infra.warehouse.server import ExposedWithoutAccounts, WarehouseServer
from shiftright_server.infra.warehouse.sql import reaches_outside


def _basic(user: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


def test_credentials_come_from_headers_then_basic_auth_then_the_url() -> None:
    url = {"user": "u", "password": "p"}
    assert credentials({"X-ClickHouse-User": "h", "X-ClickHouse-Key": "k"}, url) == ("h", "k")
    assert credentials({"Authorization": _basic("b", "k:with:colons")}, url) == (
        "b",
        "k:with:colons",
    )
    assert credentials({}, url) == ("u", "p")
    assert credentials({}, {}) == (None, None)


def test_a_key_is_shown_once_and_kept_only_as_a_digest(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "accounts.json")
    assert accounts.authenticate(None, None) is None  # no accounts: nothing to check
    key = accounts.add("ana@example.com", "reader")
    text = (tmp_path / "accounts.json").read_text()
    assert key not in text and "ana@example.com" in text
    assert stat.S_IMODE((tmp_path / "accounts.json").stat().st_mode) == 0o600
    account = accounts.authenticate("ana@example.com", key)
    assert account is not None and account.read_only


@pytest.mark.parametrize(
    ("user", "key"), [("ana", "wrong"), ("nobody", "x"), (None, None), ("ana", None)]
)
def test_wrong_or_missing_credentials_are_refused_once_accounts_exist(
    tmp_path: Path, user: str | None, key: str | None
) -> None:
    accounts = Accounts(tmp_path / "accounts.json")
    accounts.add("ana", "reader")
    with pytest.raises(WarehouseError) as refused:
        accounts.authenticate(user, key)
    assert (refused.value.code, refused.value.http_status) == (516, 401)


def test_accounts_changed_by_another_process_apply_at_the_next_request(tmp_path: Path) -> None:
    server_side = Accounts(tmp_path / "accounts.json")
    cli_side = Accounts(tmp_path / "accounts.json")
    key = cli_side.add("w", "writer")
    assert server_side.authenticate("w", key) is not None
    cli_side.remove("w")
    assert server_side.authenticate("w", key) is None  # no accounts left: open again
    with pytest.raises(AccountError, match="no warehouse account named 'w'"):
        cli_side.remove("w")


def test_bad_names_and_roles_are_refused(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "accounts.json")
    with pytest.raises(AccountError, match="invalid account name"):
        accounts.add("a b", "reader")
    with pytest.raises(AccountError, match="unknown role"):
        accounts.add("a", "admin")  # type: ignore[arg-type]  # a role the CLI could pass through


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "file"),
        ("SELECT file('/etc/hostname')", "file"),
        ("select * from URL ('http://x', CSV)", "URL"),
        ("SELECT * FROM s3('https://b/k')", "s3"),
        ("SELECT * FROM remote('h:9000', db.t)", "remote"),
        ("SELECT * FROM (SELECT 1 FROM executable('x.sh', TSV, 'a String'))", "executable"),
        ("SELECT 1 INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
        ("SELECT file, url FROM t WHERE note = 'file(1)'", None),
        ("SELECT count() FROM events_usage -- file('/etc/passwd')", None),
        ("SELECT profile(1), urlx(2) FROM t", None),
    ],
)
def test_read_only_means_the_warehouses_tables(sql: str, found: str | None) -> None:
    assert reaches_outside(sql) == found


def test_the_warehouse_will_not_listen_beyond_loopback_without_accounts(tmp_path: Path) -> None:
    with pytest.raises(ExposedWithoutAccounts, match="add accounts first"):
        WarehouseServer(tmp_path / "data", host="0.0.0.0", port=0)
    assert not (tmp_path / "data").exists()  # refused before the engine started


def test_processes_use_the_writer_account_once_its_key_exists(tmp_path: Path) -> None:
    assert load_settings(state_dir=tmp_path).clickhouse.user is None
    key = writer_key_path(tmp_path)
    key.parent.mkdir(parents=True)
    key.write_text("k3y\n")
    ch = load_settings(state_dir=tmp_path).clickhouse
    assert ch.user == "shiftright-writer"
    assert ch.password is not None and ch.password.get_secret_value() == "k3y"
    assert "k3y" not in repr(ch)
