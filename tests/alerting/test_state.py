"""The alert state machine: pending, for, hysteresis, flapping."""

from __future__ import annotations

from opsdesk.alerting.state import FLAP_TRANSITIONS, AlertState, AlertStatus, step


def run(values: list[float], threshold: float = 90, clear: float = 80, for_s: float = 60, every: float = 15):
    s, fired, resolved = AlertStatus(), [], []
    for i, v in enumerate(values):
        now = i * every
        out = step(s, now, breached=v > threshold, cleared=v < clear, for_s=for_s)
        s = out.status
        if out.fired:
            fired.append(now)
        if out.resolved:
            resolved.append(now)
    return s, fired, resolved


def test_for_duration_must_pass_before_firing() -> None:
    s, fired, _ = run([95, 95, 95, 95])
    assert s.state is AlertState.pending and fired == []
    s, fired, _ = run([95, 95, 95, 95, 95])
    assert s.state is AlertState.firing and fired == [60]


def test_a_dip_while_pending_starts_over() -> None:
    s, fired, _ = run([95, 95, 70, 95, 95, 95, 95])
    assert fired == [] and s.state is AlertState.pending


def test_for_zero_fires_at_once() -> None:
    s, fired, _ = run([50, 95], for_s=0)
    assert fired == [15] and s.state is AlertState.firing


def test_hysteresis_keeps_firing_between_thresholds() -> None:
    s, _fired, resolved = run([95] * 5 + [85, 85, 85], for_s=60)
    assert s.state is AlertState.firing and resolved == []
    s, _fired, resolved = run([95] * 5 + [85, 75], for_s=60)
    assert s.state is AlertState.resolved and resolved == [90]


def test_flapping_is_detected() -> None:
    values = [95, 75] * FLAP_TRANSITIONS
    s, fired, _resolved = run(values, for_s=0)
    assert len(fired) == FLAP_TRANSITIONS and s.flapping
    calm, _, _ = run([95, 75, 75, 75], for_s=0)
    assert not calm.flapping
