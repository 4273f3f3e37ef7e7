"""Progress display for range downloads."""

from __future__ import annotations

from typing import Any

from ibdata._engine import Progress


def tqdm_progress(**options: Any) -> Progress:
    """A ``progress=`` callback that shows a tqdm bar (``tqdm.auto``: a widget in notebooks,
    text in terminals) counting chunks, with the bars fetched so far.

    Args:
        options: passed to ``tqdm.auto.tqdm`` (``desc=``, ``leave=``, ``file=``, ...).

    Returns:
        A callback for ``Client.get_historical_bars(..., progress=...)``. The bar closes
        itself when the last chunk is done.
    """
    from tqdm.auto import tqdm

    options.setdefault("unit", "request")
    options.setdefault("desc", "bars")
    bar: Any = None

    def update(done: int, total: int, bars: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, **options)
        bar.n = done
        bar.set_postfix_str(f"{bars:,} bars", refresh=False)
        bar.refresh()
        if done >= total:
            bar.close()

    return update
