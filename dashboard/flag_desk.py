"""What the flag pages need of the flag service: every flag's state, one flag's
definition, and the button (flip, restore).

The service itself (the compacted flag topic and the rules of who may flip what) lives
below the command line, out of the dashboard's layer; the process that starts the
dashboard passes a :class:`FlagDesk` to ``create_app``
(``shiftright_server.infra.ops.dashboard``). Without one, :class:`NoFlags` explains why
flags cannot be shown here.
"""

from __future__ import annotations

from typing import Any, Protocol

from shiftright_server.schemas.flags import FlagStatus


class FlagsUnavailable(RuntimeError):
    """The flag topic cannot be read or written now (says why)."""


class FlipInvalid(ValueError):
    """A flip or restore that cannot be made (unknown variant, nothing to restore)."""


class FlagDesk(Protocol):
    def statuses(self) -> list[FlagStatus]: ...

    def definition(self, app: str, flag: str) -> dict[str, Any] | None:
        """The flag as its applied file defines it (None: not applied)."""
        ...

    def flip(self, app: str, flag: str, env: str, to: str, actor: str, reason: str) -> None: ...

    def restore(self, app: str, flag: str, env: str, actor: str) -> None: ...


class NoFlags:
    """A dashboard started without the flag service."""

    WHY = (
        "flags need the flag service: start the dashboard with `shiftright up` "
        "(or python -m shiftright_server.infra.ops.dashboard)"
    )

    def statuses(self) -> list[FlagStatus]:
        raise FlagsUnavailable(self.WHY)

    def definition(self, app: str, flag: str) -> dict[str, Any] | None:
        raise FlagsUnavailable(self.WHY)

    def flip(self, app: str, flag: str, env: str, to: str, actor: str, reason: str) -> None:
        raise FlagsUnavailable(self.WHY)

    def restore(self, app: str, flag: str, env: str, actor: str) -> None:
        raise FlagsUnavailable(self.WHY)
