"""The agent's disk buffer: one compressed file per batch, sent oldest first.

Bounded in bytes; when the bound is hit the oldest batches are dropped and counted, and the
count travels with the next batch so the server can report the gap.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

SUFFIX = ".batch.gz"


class Spool:
    def __init__(self, directory: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.max_bytes = max_bytes
        self.meta_file = self.dir / "spool.json"
        meta = self._read_meta()
        self.next_seq: int = int(meta.get("next_seq", 1))
        self.dropped: int = int(meta.get("dropped", 0))
        # Identifies this install: a wiped state directory starts a new sequence on the server.
        self.instance: str = str(meta.get("instance") or uuid.uuid4().hex)
        # A batch file newer than the saved counter (a crash between the two writes) wins.
        existing = self.pending()
        if existing and existing[-1] >= self.next_seq:
            self.next_seq = existing[-1] + 1
        self._write_meta()

    def _read_meta(self) -> dict[str, int | str]:
        try:
            data: dict[str, int | str] = json.loads(self.meta_file.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def _write_meta(self) -> None:
        tmp = self.meta_file.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"next_seq": self.next_seq, "dropped": self.dropped, "instance": self.instance})
        )
        os.replace(tmp, self.meta_file)

    def path(self, seq: int) -> Path:
        return self.dir / f"{seq:012d}{SUFFIX}"

    def take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self._write_meta()
        return seq

    def put(self, seq: int, body: bytes) -> None:
        """Store a compressed batch durably, then enforce the bound by dropping the oldest."""
        tmp = self.dir / f".{seq}.tmp"
        with tmp.open("wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path(seq))
        self._enforce_bound(keep=seq)

    def _enforce_bound(self, keep: int) -> None:
        files = [(s, self.path(s)) for s in self.pending()]
        total = sum(p.stat().st_size for _, p in files)
        for seq, path in files:
            if total <= self.max_bytes or seq == keep:
                break
            total -= path.stat().st_size
            path.unlink(missing_ok=True)
            self.dropped += 1
        self._write_meta()

    def pending(self) -> list[int]:
        return sorted(int(p.name[: -len(SUFFIX)]) for p in self.dir.glob(f"*{SUFFIX}"))

    def read(self, seq: int) -> bytes:
        return self.path(seq).read_bytes()

    def remove(self, seq: int) -> None:
        self.path(seq).unlink(missing_ok=True)

    def size_bytes(self) -> int:
        return sum(self.path(s).stat().st_size for s in self.pending())
