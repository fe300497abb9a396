"""What the host decides for its host-local checks: never the server.

The server only names a script or a log file; where scripts live and which directories may be
read are settings of the agent on the host (its command line), so the platform cannot make a
customer's host run a program or read a file its administrator has not put in reach.

The agent calls `configure` once at start; the checks read `current()` on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SCRIPTS_DIR = Path("/etc/opsdesk/scripts")
DEFAULT_LOG_ROOTS = (Path("/var/log"),)


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """`scripts_dir`: the only directory `script` checks run programs from.
    `log_roots`: the directories (and their subdirectories) `log` checks may read.
    `script_output_bytes`: what is read of a script's stdout and of its stderr; the rest is dropped.
    """

    scripts_dir: Path = DEFAULT_SCRIPTS_DIR
    log_roots: tuple[Path, ...] = field(default=DEFAULT_LOG_ROOTS)
    script_output_bytes: int = 64 * 1024


_current = LocalSettings()


def configure(settings: LocalSettings) -> None:
    global _current
    _current = settings


def current() -> LocalSettings:
    return _current
