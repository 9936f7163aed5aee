"""The flag topic in memory: :class:`FlagTopic` whose records fold into a folder instead
of going to Kafka (its apply and flip logic is the real one), with the change events kept."""

from __future__ import annotations

from shiftright.flags.topic import Folder
from shiftright_server.infra.flags_config import FlagTopic
from shiftright_server.schemas.events import ChangeEvent


class MemoryFlagTopic(FlagTopic):
    def __init__(self) -> None:
        super().__init__("memory:0")
        self.folder = Folder()
        self.changes: list[ChangeEvent] = []

    def read(self) -> Folder:
        return self.folder

    def _send(self, records: list[tuple[bytes, bytes | None]], events: list[ChangeEvent]) -> None:
        for key, value in records:
            self.folder.fold(key, value, self.folder.position)
            self.written = self.folder.position - 1
        self.changes += events
