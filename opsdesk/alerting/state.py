"""The alert state machine, pure so that it is tested without a clock or a database.

inactive -> pending (condition true) -> firing (true for `for_s`) -> resolved (clear condition
true) -> pending again if the condition returns. A separate clear threshold (hysteresis) keeps an
alert from resolving on every small dip; an alert that changes state too often within a window is
marked flapping, and its notifications are held back while it flaps.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace


class AlertState(enum.StrEnum):
    inactive = "inactive"
    pending = "pending"
    firing = "firing"
    resolved = "resolved"


FLAP_WINDOW_S = 3600.0
FLAP_TRANSITIONS = 6  # firing/resolved changes within the window that make an alert flapping


@dataclass(frozen=True)
class AlertStatus:
    state: AlertState = AlertState.inactive
    since: float = 0.0  # when the current state began (epoch seconds)
    pending_since: float | None = None
    transitions: tuple[float, ...] = field(default_factory=tuple)  # firing/resolved changes, recent
    flapping: bool = False


@dataclass(frozen=True)
class Step:
    status: AlertStatus
    fired: bool = False  # became firing in this step
    resolved: bool = False  # became resolved in this step


def _flap(transitions: tuple[float, ...], now: float) -> tuple[tuple[float, ...], bool]:
    recent = tuple(t for t in (*transitions, now) if now - t <= FLAP_WINDOW_S)
    return recent, len(recent) >= FLAP_TRANSITIONS


def step(status: AlertStatus, now: float, breached: bool, cleared: bool, for_s: float) -> Step:
    """Advance one evaluation. `breached`: the firing condition holds; `cleared`: the clear one does.

    With hysteresis, a value between the two thresholds is neither: the alert keeps its state.
    """
    s = status
    if s.state in (AlertState.inactive, AlertState.resolved):
        if not breached:
            return Step(s)
        pending = replace(s, state=AlertState.pending, since=now, pending_since=now)
        if for_s <= 0:
            return _fire(pending, now)
        return Step(pending)
    if s.state is AlertState.pending:
        if cleared or not breached:
            back = AlertState.resolved if s.transitions else AlertState.inactive
            return Step(replace(s, state=back, since=now, pending_since=None))
        started = s.pending_since if s.pending_since is not None else now
        if now - started >= for_s:
            return _fire(s, now)
        return Step(s)
    # firing
    if cleared:
        transitions, flapping = _flap(s.transitions, now)
        done = AlertStatus(AlertState.resolved, now, None, transitions, flapping)
        return Step(done, resolved=True)
    return Step(s)


def _fire(s: AlertStatus, now: float) -> Step:
    transitions, flapping = _flap(s.transitions, now)
    return Step(AlertStatus(AlertState.firing, now, s.pending_since, transitions, flapping), fired=True)
