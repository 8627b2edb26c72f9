"""One tqdm progress bar behind the runner's `ItemProgress` protocol: model calls done out of the
total with an ETA, and the benchmark items done out of theirs beside it."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class TqdmProgress:
    def __init__(self, desc: str, *, enabled: bool = True) -> None:
        from tqdm import tqdm

        # disable=None: tqdm switches itself off when stderr is not a terminal (CI logs).
        self._bar: Any = tqdm(total=0, desc=desc, unit="call", disable=None if enabled else True, leave=True)
        self._cached = 0
        self._items = 0
        self._items_total = 0

    def _postfix(self) -> None:
        fields: dict[str, object] = {}
        if self._items_total:
            fields["items"] = f"{self._items}/{self._items_total}"
        if self._cached:
            fields["cached"] = self._cached
        self._bar.set_postfix(fields, refresh=False)

    def add_item_total(self, n: int) -> None:
        self._items_total += n
        self._postfix()
        self._bar.refresh()

    def advance_items(self, n: int) -> None:
        self._items += n
        self._postfix()
        self._bar.refresh()

    def add_total(self, n: int) -> None:
        self._bar.total = (self._bar.total or 0) + n
        self._bar.refresh()

    def advance(self, n: int, *, cached: bool = False) -> None:
        if cached:
            self._cached += n
            self._postfix()
        self._bar.update(n)

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.close()
