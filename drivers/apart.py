"""Reads that a device refused for an address it lacks, split into one read per tag.

Drivers merge neighbouring tags into one read across a few unused addresses. A device that has
no register at one of them (past the end of its area, or in a hole of its map) refuses the whole
read, and every tag in it would stay bad for a mistake in one. The refused reads are split, in the
poll that met the refusal and from then on, so that only a tag at fault stays bad; the split is
said once, as a warning naming the read.
"""

from __future__ import annotations

__all__ = ["split_refused"]

import logging
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

_log = logging.getLogger(__name__)

R = TypeVar("R")


def split_refused(
    requests: Sequence[R],
    refused: Collection[int],
    apart: Callable[[R], list[R]],
    said: Callable[[R], str],
) -> tuple[list[R], list[int]]:
    """The plan with each refused request replaced by `apart(request)` (its tags one per read,
    tags that share addresses together), and the places of the new reads in it; no places when
    none could be split. `said(request)` is the warning for a request that was split."""
    plan: list[R] = []
    new: list[int] = []
    for index, request in enumerate(requests):
        parts = apart(request) if index in refused else [request]
        if len(parts) > 1:
            new += range(len(plan), len(plan) + len(parts))
            _log.warning("%s", said(request))
        plan += parts
    return plan, new
