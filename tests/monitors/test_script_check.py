"""Custom scripts in the Nagios plugin convention, run from the host's scripts directory."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from opsdesk.monitors import checks
from opsdesk.monitors.checks import local_settings
from opsdesk.monitors.checks.base import CheckResult
from tests.monitors.conftest import run_check


@pytest.fixture
def scripts(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "scripts"
    root.mkdir(mode=0o755)
    saved = local_settings.current()
    local_settings.configure(local_settings.LocalSettings(scripts_dir=root, script_output_bytes=64 * 1024))
    yield root
    local_settings.configure(saved)


def script(root: Path, name: str, body: str, mode: int = 0o755) -> Path:
    path = root / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return path


def run(name: str, *args: str, timeout_s: float = 5) -> CheckResult:
    return run_check("script", script=name, args=list(args), timeout_s=timeout_s)


def series_of(result: CheckResult) -> dict[tuple[str, str, str], float]:
    return {(s.name, s.labels["label"], s.labels.get("bound", "")): s.value for s in result.series}


@pytest.mark.parametrize(
    ("code", "status", "state"),
    [(0, "ok", "up"), (1, "warning", "warning"), (2, "critical", "down"), (3, "unknown", "unknown")],
)
def test_exit_codes_map_to_levels(scripts: Path, code: int, status: str, state: str) -> None:
    script(scripts, "check_x", f"echo 'X {status.upper()} - fine | load=0.5;1;2;0'\nexit {code}\n")
    result = run("check_x")
    assert (result.level, result.state) == (status, state)
    assert result.message == f"X {status.upper()} - fine"
    assert result.metrics["exit_code"] == code
    assert series_of(result)[("perf", "load", "")] == 0.5
    assert series_of(result)[("perf_crit", "load", "high")] == 2


def test_perfdata_becomes_normalised_series(scripts: Path) -> None:
    script(
        scripts,
        "check_disk",
        "echo \"DISK WARNING - /var 91% | '/var used'=91%;80;90;0;100 free=512MB;;;0 time=35ms\"\n"
        "echo '/var is filling up | inodes=1200c'\n"
        "exit 1\n",
    )
    result = run("check_disk")
    assert result.level == "warning" and result.code == "script_warning"
    got = series_of(result)
    assert got[("perf", "/var used", "")] == 91
    assert got[("perf_warn", "/var used", "high")] == 80
    assert got[("perf", "free", "")] == 512 * 1024 * 1024
    assert got[("perf", "time", "")] == pytest.approx(0.035)
    assert got[("perf", "inodes", "")] == 1200
    assert {s.labels["uom"] for s in result.series if s.labels["label"] == "free"} == {"B"}
    assert "/var is filling up" in result.message  # long output follows the status text
    assert result.metrics["perfdata_errors"] == 0


def test_hanging_script_is_killed_with_its_children_and_reported_unknown(
    scripts: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    script(scripts, "check_hang", f"sleep 300 &\necho $! > {pids}\nsleep 300\n")
    started = time.monotonic()
    result = run("check_hang", timeout_s=1)
    took = time.monotonic() - started
    assert (result.level, result.code) == ("unknown", "script_timeout")
    assert "killed after 1 s" in result.message
    assert 0.9 <= took < 2.0, took
    child = int(pids.read_text())
    deadline = time.monotonic() + 2
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the script's background child survived the timeout"
        time.sleep(0.05)


def test_child_left_running_does_not_delay_the_result(scripts: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script(scripts, "check_bg", f"sleep 300 &\necho $! > {pids}\necho 'OK - done'\nexit 0\n")
    started = time.monotonic()
    result = run("check_bg", timeout_s=5)
    assert time.monotonic() - started < 1.5
    assert (result.level, result.message) == ("ok", "OK - done")
    child = int(pids.read_text())
    time.sleep(0.2)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_malformed_perfdata_is_reported_not_crashed_on(scripts: Path) -> None:
    script(scripts, "check_bad", 'echo "OK - x | good=1 bad=abc \'open=3"\nexit 0\n')
    result = run("check_bad")
    assert result.level == "ok"
    assert result.metrics["perfdata_errors"] == 2
    assert "malformed perfdata" in result.message and "'bad'" in result.message
    assert series_of(result) == {("perf", "good", ""): 1.0}


def test_exit_code_outside_the_convention_and_signals_are_unknown(scripts: Path) -> None:
    script(scripts, "check_7", "echo 'weird'\nexit 7\n")
    result = run("check_7")
    assert (result.level, result.code) == ("unknown", "script_error")
    assert "exited 7, outside the plugin convention" in result.message and "weird" in result.message
    script(scripts, "check_sig", "kill -9 $$\n")
    result = run("check_sig")
    assert result.level == "unknown" and "killed by signal 9" in result.message


def test_no_output_shows_stderr(scripts: Path) -> None:
    script(scripts, "check_err", "echo 'cannot reach db' >&2\nexit 2\n")
    result = run("check_err")
    assert result.level == "critical"
    assert result.message == "check_err exited 2 without output (stderr: cannot reach db)"


def test_arguments_go_to_the_program_verbatim_without_a_shell(scripts: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    script(scripts, "check_args", 'printf "OK - %s\\n%s\\n" "$1" "$2"\n')
    tricky = f"$(touch {marker}); `touch {marker}`"
    result = run("check_args", tricky, "two words")
    assert result.message == f"OK - {tricky}\ntwo words"
    assert not marker.exists()


def test_output_is_capped(scripts: Path) -> None:
    script(scripts, "check_big", "echo 'OK - big'\nhead -c 2000000 /dev/zero | tr '\\0' 'x'\nexit 0\n")
    result = run("check_big")
    assert result.level == "ok" and result.message.startswith("OK - big")
    assert "output cut at 65536 bytes" in result.message
    assert len(result.message) <= 1000


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "sub/check", "/bin/sh", "a;rm", "x y", "..", ".hidden", ""]
)
def test_names_that_are_not_bare_file_names_are_refused(name: str) -> None:
    with pytest.raises(checks.CheckDefinitionError):
        checks.validate("script", {"script": name})


def test_symlink_leaving_the_directory_is_refused(scripts: Path, tmp_path: Path) -> None:
    outside = script(tmp_path, "evil", "echo OK\n")
    (scripts / "check_link").symlink_to(outside)
    result = run("check_link")
    assert (result.level, result.code) == ("unknown", "script_refused")
    assert "link leading out of" in result.message


def test_symlink_inside_the_directory_runs(scripts: Path) -> None:
    script(scripts, "real_check", "echo 'OK - via link'\n")
    (scripts / "check_alias").symlink_to(scripts / "real_check")
    assert run("check_alias").message == "OK - via link"


def test_group_writable_script_is_refused(scripts: Path) -> None:
    script(scripts, "check_gw", "echo OK\n", mode=0o775)
    result = run("check_gw")
    assert result.code == "script_refused" and "writable by group or others (mode 775)" in result.message


def test_script_of_another_owner_is_refused(scripts: Path) -> None:
    path = script(scripts, "check_owner", "echo OK\n")
    os.chown(path, 12345, 12345)
    result = run("check_owner")
    assert result.code == "script_refused" and "owned by uid 12345" in result.message


def test_world_writable_scripts_directory_is_refused(scripts: Path) -> None:
    script(scripts, "check_ok", "echo OK\n")
    scripts.chmod(0o777)
    result = run("check_ok")
    assert result.code == "script_refused" and "scripts directory" in result.message


def test_missing_and_non_executable_scripts(scripts: Path) -> None:
    assert "not found" in run("check_none").message
    script(scripts, "check_noexec", "echo OK\n", mode=0o644)
    result = run("check_noexec")
    assert result.level == "unknown" and "not executable" in result.message


def test_missing_scripts_directory(tmp_path: Path) -> None:
    saved = local_settings.current()
    local_settings.configure(local_settings.LocalSettings(scripts_dir=tmp_path / "nope"))
    try:
        result = run("check_x")
    finally:
        local_settings.configure(saved)
    assert result.level == "unknown" and "scripts directory" in result.message


def test_the_agent_token_is_not_passed_to_scripts(scripts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSDESK_AGENT_TOKEN", "odk_secret")
    monkeypatch.setenv("LANG", "C.UTF-8")
    script(scripts, "check_env", 'echo "OK - token=[$OPSDESK_AGENT_TOKEN] lang=[$LANG]"\n')
    assert run("check_env").message == "OK - token=[] lang=[C.UTF-8]"
