"""Environment variables set for a while, then put back as they were (the demo, the bench)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping

__all__ = ["patched_environ"]


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str], *, unset: Iterable[str] = ()) -> Iterator[None]:
    """Set `values` and remove `unset` from os.environ; restore every one of them on exit."""
    removed = tuple(unset)
    saved = {name: os.environ.get(name) for name in (*values, *removed)}
    os.environ.update(values)
    for name in removed:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
