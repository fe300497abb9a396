"""The agent's disk buffer: order, bound, drop counting, survival across restarts."""

from __future__ import annotations

from pathlib import Path

from opsdesk.agent.spool import Spool


def test_batches_come_back_in_order_and_survive_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for _ in range(5):
        seq = spool.take_seq()
        spool.put(seq, f"batch {seq}".encode())
    spool.remove(1)
    again = Spool(tmp_path)
    assert again.pending() == [2, 3, 4, 5]
    assert again.read(3) == b"batch 3"
    assert again.take_seq() == 6  # sequence numbers never repeat
    assert again.instance == spool.instance


def test_bound_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000)
    for _ in range(12):
        seq = spool.take_seq()
        spool.put(seq, b"x" * 200)
    assert spool.size_bytes() <= 1000
    assert spool.pending() == [8, 9, 10, 11, 12]
    assert spool.dropped == 7
    assert Spool(tmp_path, max_bytes=1000).dropped == 7


def test_a_lost_counter_does_not_reuse_sequence_numbers(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for _ in range(3):
        spool.put(spool.take_seq(), b"b")
    (tmp_path / "spool.json").unlink()  # e.g. a crash between the batch and the counter write
    assert Spool(tmp_path).take_seq() == 4
