"""In-process domain signals: news travels upward (e.g. OrderPaid → loyalty), after commit only."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from shequn.core.db import on_commit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signal:
    """A named domain event; the payload carries ids, never ORM objects."""

    name: str
    workspace_id: int
    payload: dict[str, Any]


Receiver = Callable[[Signal], None]
_receivers: dict[str, list[Receiver]] = defaultdict(list)


def connect(name: str, receiver: Receiver) -> None:
    """Subscribe receiver to signals called name (done once at app start-up by higher domains)."""
    if receiver not in _receivers[name]:
        _receivers[name].append(receiver)


def disconnect(name: str, receiver: Receiver) -> None:
    """Remove a receiver (tests)."""
    if receiver in _receivers[name]:
        _receivers[name].remove(receiver)


def send_on_commit(session: Session, name: str, workspace_id: int, **payload: Any) -> None:
    """Deliver the signal after the session commits; a rollback drops it."""
    signal = Signal(name, workspace_id, payload)
    on_commit(session, lambda: _deliver(signal))


def _deliver(signal: Signal) -> None:
    for receiver in list(_receivers.get(signal.name, ())):
        try:
            receiver(signal)
        except Exception:  # one receiver's failure must not stop the others
            log.exception("signal receiver %r failed for %s", receiver, signal.name)
