"""The embedded warehouse's engine configuration file."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from shiftright_server.infra.warehouse.tuning import CONFIG_NAME, MERGE_TREE, connection_string


def test_the_configuration_goes_into_the_data_directory_and_names_every_setting(
    tmp_path: Path,
) -> None:
    opened = connection_string(tmp_path)
    config = tmp_path / CONFIG_NAME
    assert opened == f"file:{tmp_path}?config-file={config}"
    merge_tree = ET.parse(config).getroot().find("merge_tree")
    assert merge_tree is not None
    assert {child.tag: child.text or "" for child in merge_tree} == dict(MERGE_TREE)


@pytest.mark.parametrize("name", ["a&b", "what?"])
def test_a_path_chdb_would_misread_is_refused(tmp_path: Path, name: str) -> None:
    data_dir = tmp_path / name
    data_dir.mkdir()
    with pytest.raises(ValueError, match="may not contain"):
        connection_string(data_dir)
