"""The editor's undo and redo: a bounded history of journey snapshots (plain values, no Qt).

A snapshot is whatever the editor can put back as it was (the journey and the template it came
from); the history only compares and keeps them. The oldest are dropped past `limit`."""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

S = TypeVar("S")
LIMIT = 100


class History(Generic[S]):
    def __init__(self, limit: int = LIMIT) -> None:
        self._undo: deque[S] = deque(maxlen=limit)
        self._redo: list[S] = []
        self._current: S | None = None

    def record(self, snapshot: S) -> None:
        """The form now holds `snapshot`: the state before it becomes undoable (the first one
        recorded is where undo stops). The same state again is no step."""
        if self._current is None:
            self._current = snapshot
            return
        if snapshot == self._current:
            return
        self._undo.append(self._current)
        self._current = snapshot
        self._redo.clear()

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> S | None:
        """The state to put back, or None when there is none."""
        if not self._undo or self._current is None:
            return None
        self._redo.append(self._current)
        self._current = self._undo.pop()
        return self._current

    def redo(self) -> S | None:
        if not self._redo or self._current is None:
            return None
        self._undo.append(self._current)
        self._current = self._redo.pop()
        return self._current
