"""Flag files (YAML) → :class:`schemas.flags.FlagFile`, and the diff ``flags apply`` shows.

Problems are reported like the rule file's: file, line and field, e.g.
``flags.yaml:9: flags[1] (layout).default: unknown variant(s) …``.
"""

from __future__ import annotations

from shiftright_server.schemas.flags import FlagFile
from shiftright_server.schemas.rule_file import Change, RuleFileError, _diff_named, load_model


class FlagFileError(RuleFileError):
    """A flag file that cannot be applied; ``problems`` name line and field of each."""


def load_flags(text: str, source: str = "<flags>") -> FlagFile:
    """Parse and validate a flag file; :class:`FlagFileError` on any problem."""
    try:
        return load_model(text, source, FlagFile, "app: and flags")
    except RuleFileError as exc:
        raise FlagFileError(exc.source, exc.problems) from None


def diff_flags(old: FlagFile | None, new: FlagFile) -> list[Change]:
    """What applying ``new`` over ``old`` changes, flag by flag (sorted, stable)."""
    before = {f.name: f for f in old.flags} if old is not None else {}
    return _diff_named("flag", before, {f.name: f for f in new.flags})
