"""The engine's configuration: a ClickHouse configuration file written into the data
directory on every start and handed to chDB when the process opens the engine.

What it sets, and why, for the pipeline's shape of work on a machine of a few cores:
each insert into ``events_usage`` writes a part into some thirty tables through the
materialized views, about one insert a second per event table while the sink is at the
head of its topics; every part is a directory of a dozen files, and every merge writes
one more part and deletes the ones it merged. Creating and deleting those files is most
of the engine's kernel time (ext4's inode allocation), so fewer files per part and fewer
merges per part written are what make it cheaper. chDB's own defaults already size the background pools for a
small machine (two merge threads, ``background_pool_size`` 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import escape

#: MergeTree defaults for every table that does not set its own.
MERGE_TREE: Mapping[str, str] = {
    # Merge only once ten parts of a similar size are there (the selector's default is
    # as few as two for small parts): each row is rewritten about half as often while
    # the sink writes a part a second into each table, at the price of a few more parts
    # for a query to open between merges.
    "min_parts_to_merge_at_once": "10",
    # Write a part smaller than 10 MiB uncompressed (every part the sink's inserts write
    # through the materialized views, and the first merges of them) as one file,
    # ``data.packed``, instead of a dozen: the engine's kernel time is mostly creating
    # and deleting those files. Larger parts, which queries scan, keep a file per stream
    # (10 MiB is also where parts turn from compact to wide). A part written packed can
    # be read by chDB/ClickHouse 26.x and later only.
    "min_bytes_for_full_part_storage": str(10 * 1024 * 1024),
    # Build no column statistics. chDB 26.9 builds `basic` and `uniq_v2` statistics of
    # every column of every part a merge writes (``auto_statistics_types``): for the raw
    # tables about a tenth of a merge's CPU, and one more file in every part it writes.
    # Nothing here reads them: the dashboard's queries narrow by sort keys and
    # partitions, and the parts the sink's inserts write have none either way.
    "auto_statistics_types": "",
}

CONFIG_NAME = "engine-config.xml"


def config_text(merge_tree: Mapping[str, str] = MERGE_TREE) -> str:
    """The configuration file's text."""
    settings = "".join(
        f"    <{name}>{escape(value)}</{name}>\n" for name, value in merge_tree.items()
    )
    return (
        "<!-- Written by the embedded warehouse on every start; edits are overwritten. -->\n"
        f"<clickhouse>\n  <merge_tree>\n{settings}  </merge_tree>\n</clickhouse>\n"
    )


def connection_string(data_dir: Path) -> str:
    """Write the configuration into ``data_dir``; the string chDB opens the engine with."""
    config = data_dir / CONFIG_NAME
    for path in (data_dir, config):
        if any(char in str(path) for char in "?&"):
            # chDB reads what follows "?" as startup arguments split at "&", undecoded.
            raise ValueError(f"the warehouse's paths may not contain '?' or '&': {path}")
    config.write_text(config_text())
    return f"file:{data_dir}?config-file={config}"
