"""The configuration page is generated from the settings models and must match them."""

from pathlib import Path

from pydantic import BaseModel
from shiftright_server.infra.settings import Settings
from shiftright_server.infra.settings_doc import main, render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_committed_configuration_page_matches_the_settings_models() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date: run `make config-doc`"
    )


def test_every_setting_has_a_description_and_a_row_on_the_page() -> None:
    page = render()
    for name, field in Settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            for sub, inner in kind.model_fields.items():
                assert inner.description, f"{name}.{sub} has no description"
                assert f"`SHIFTRIGHT_{name.upper()}__{sub.upper()}`" in page
        else:
            assert field.description, f"{name} has no description"
            assert f"`SHIFTRIGHT_{name.upper()}`" in page


def test_check_mode_fails_on_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(render().replace("SHIFTRIGHT_KAFKA__BOOTSTRAP", "SHIFTRIGHT_KAFKA__GONE"))
    assert main(["--check", "--path", str(stale)]) == 1
    assert main(["--path", str(stale)]) == 0
    assert main(["--check", "--path", str(stale)]) == 0
