"""Rendered pixmaps by what their pixels depend on (a frozen dataclass: the look), least
recently used dropped first. Shaping text is what a view's paint costs: a port cell took
≈0.5 ms, a journey-map node more, while the same looks come back with every frame of a switch
and every run of the same journey; drawing a cached pixmap takes microseconds."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from PySide6.QtGui import QPixmap

K = TypeVar("K", bound=Hashable)


class PixmapCache(Generic[K]):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[K, QPixmap] = OrderedDict()

    def get(self, look: K) -> QPixmap | None:
        pixmap = self._items.get(look)
        if pixmap is not None:
            self._items.move_to_end(look)
        return pixmap

    def put(self, look: K, pixmap: QPixmap) -> None:
        self._items[look] = pixmap
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
