"""System-state changes (R-MON-1): hostname, passwords, users, watched processes, reboots.

The watcher remembers what it saw in the agent's state directory, so a change that happens
while the agent is stopped (a reboot, a new user) is still reported when it starts again.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

Event = dict[str, Any]


@dataclass
class WatchConfig:
    passwd_file: Path = Path("/etc/passwd")
    shadow_file: Path = Path("/etc/shadow")
    processes: list[str] = field(default_factory=list)


def read_users(passwd: Path) -> dict[str, dict[str, Any]]:
    users: dict[str, dict[str, Any]] = {}
    try:
        lines = passwd.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return users
    for line in lines:
        parts = line.split(":")
        if len(parts) >= 7 and parts[0] and not line.startswith("#"):
            uid = int(parts[2]) if parts[2].isdigit() else -1
            users[parts[0]] = {"uid": uid, "home": parts[5], "shell": parts[6]}
    return users


def read_password_changes(shadow: Path) -> dict[str, str]:
    """User -> the shadow file's "last password change" field (days since 1970-01-01)."""
    out: dict[str, str] = {}
    try:
        lines = shadow.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return out  # not readable without root: password changes are then not watched
    for line in lines:
        parts = line.split(":")
        if len(parts) >= 3 and parts[0]:
            # the hash itself changes too; we keep only whether it did, never the hash
            out[parts[0]] = f"{parts[2]}:{hashlib.sha256(parts[1].encode()).hexdigest()[:12]}"
    return out


def running(names: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    if not names:
        return counts
    for proc in psutil.process_iter(["name"]):
        name = proc.info.get("name")
        if name in counts:
            counts[name] += 1
    return counts


class SystemWatcher:
    def __init__(self, config: WatchConfig, state_file: Path) -> None:
        self.config = config
        self.state_file = state_file
        self.state: dict[str, Any] = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.state_file)

    def check(self) -> list[Event]:
        """Compare the system with what was seen last; return the changes as events."""
        now_ms = int(time.time() * 1000)
        events: list[Event] = []

        def emit(kind: str, **attrs: Any) -> None:
            events.append({"t": now_ms, "kind": kind, "attrs": attrs})

        first = not self.state
        hostname = socket.gethostname()
        boot = int(psutil.boot_time())
        users = read_users(self.config.passwd_file)
        passwords = read_password_changes(self.config.shadow_file)
        procs = running(self.config.processes)

        if not first:
            if self.state.get("hostname") != hostname:
                emit("hostname_changed", old=self.state.get("hostname"), new=hostname)
            if abs(self.state.get("boot_time", boot) - boot) > 2:  # boot_time jitters by a second
                emit("reboot", boot_time=boot)
            old_users = self.state.get("users", {})
            for name in sorted(set(users) - set(old_users)):
                emit("user_added", user=name, uid=users[name]["uid"])
            for name in sorted(set(old_users) - set(users)):
                emit("user_removed", user=name)
            old_pw = self.state.get("passwords", {})
            for name in sorted(set(passwords) & set(old_pw)):
                if passwords[name] != old_pw[name]:
                    emit("password_changed", user=name)
            old_procs = self.state.get("processes", {})
            for name, count in procs.items():
                before = old_procs.get(name)
                if before is not None and before == 0 and count > 0:
                    emit("process_started", process=name, count=count)
                elif before is not None and before > 0 and count == 0:
                    emit("process_stopped", process=name)

        self.state = {
            "hostname": hostname,
            "boot_time": boot,
            "users": users,
            "passwords": passwords,
            "processes": procs,
        }
        self._save()
        return events
