"""One progress bar helper for every long tool."""
import os
import sys
from typing import Iterable, Optional


def progress(iterable: Iterable, total: Optional[int] = None,
             desc: Optional[str] = None, quiet: Optional[bool] = None,
             unit: str = 'it', stream=None) -> Iterable:
    """``iterable`` wrapped in a tqdm bar (count, rate, ETA) on stderr.

    The bar is shown only when ``stream`` (default ``sys.stderr``) is a
    terminal, ``quiet`` is not True and the environment variable
    ``MMRINGMOE_QUIET`` is not ``1``; otherwise ``iterable`` is returned
    unchanged, so logs and pipes get no control characters.

    Args:
        iterable: What the tool loops over (files, samples, windows,
            experts).
        total (int, optional): Its length when ``len()`` does not know it.
        desc (str, optional): Text before the bar.
        quiet (bool, optional): A tool's ``--quiet``.
        unit (str): Unit name. Defaults to ``'it'``.
        stream: Where the bar goes. Defaults to ``sys.stderr``.

    Returns:
        The same items, in order.
    """
    stream = sys.stderr if stream is None else stream
    if not _shown(quiet, stream):
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream,
                dynamic_ncols=True)


def _shown(quiet: Optional[bool], stream) -> bool:
    if quiet or os.environ.get('MMRINGMOE_QUIET', '0') == '1':
        return False
    isatty = getattr(stream, 'isatty', None)
    return isatty is not None and bool(isatty())


class _NoBar:
    """Stands in for a tqdm bar that is not shown."""
    n = 0

    def update(self, n: int = 1):
        self.n += n

    def close(self):
        pass


def progress_counter(total: int, desc: Optional[str] = None,
                     quiet: Optional[bool] = None, unit: str = 'it',
                     stream=None):
    """A bar advanced by hand (``bar.update(k)``, ``bar.n`` done so far,
    ``bar.close()``) for work reported by a callback rather than a loop
    (``tools/infer.py``: windows done out of the total, with rate and ETA).
    Shown under the same conditions as :func:`progress`; otherwise an object
    with the same three members that prints nothing."""
    stream = sys.stderr if stream is None else stream
    if not _shown(quiet, stream):
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=stream,
                dynamic_ncols=True)


__all__ = ['progress', 'progress_counter']
