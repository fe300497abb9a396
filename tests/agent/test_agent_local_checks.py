"""Host-local checks (script, log, process) assigned to a real agent process, seen by a real server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from opsdesk.core.runtime import build_runtime
from opsdesk.monitors.checks import validate
from opsdesk.monitors.models import Monitor, Runner
from opsdesk.monitors.service import InvalidMonitor, check_definition
from opsdesk.tenancy.models import Asset
from tests.agent.test_agent_e2e import Platform, load_settings_from, start_agent, stop, wait_for
from tests.agent.test_agent_e2e import platform as platform  # the fixture

HANG = "#!/bin/sh\nsleep 300\n"
PERF = "#!/bin/sh\necho \"DISK WARNING - /var 91% | '/var used'=91%;80;90;0;100 time=35ms\"\nexit 1\n"


def add_monitors(plat: Platform, definitions: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, int]:
    rt = build_runtime(load_settings_from(plat.env))
    ids: dict[str, int] = {}
    with rt.sessions.begin() as s:
        customer_id = s.get(Asset, plat.asset_id).customer_id  # type: ignore[union-attr]
        for name, (type_name, config) in definitions.items():
            monitor = Monitor(
                customer_id=customer_id,
                asset_id=plat.asset_id,
                name=name,
                type=type_name,
                config=validate(type_name, config).model_dump(mode="json"),
                runner=Runner.agent,
                agent_asset_id=plat.asset_id,
            )
            s.add(monitor)
            s.flush()
            ids[name] = monitor.id
    rt.close()
    return ids


def test_agent_runs_scripts_logs_and_processes(platform: Platform, tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir(mode=0o755)
    for name, body in (("check_hang", HANG), ("check_disk", PERF)):
        (scripts / name).write_text(body)
        (scripts / name).chmod(0o755)
    logs = tmp_path / "logs"
    logs.mkdir()
    app_log = logs / "app.log"
    app_log.write_text("")
    ids = add_monitors(
        platform,
        {
            "hang": ("script", {"script": "check_hang", "timeout_s": 2, "interval_s": 10}),
            "disk": ("script", {"script": "check_disk", "interval_s": 10}),
            "log": ("log", {"path": str(app_log), "patterns": ["ERROR"], "interval_s": 10}),
            "agent": ("process", {"cmdline": "opsdesk agent", "interval_s": 10}),
        },
    )
    agent = start_agent(platform, "--scripts-dir", str(scripts), "--log-root", str(logs))
    started = time.monotonic()

    def result_of(name: str) -> dict[str, Any] | None:
        monitor = platform.api.get(f"/api/v1/monitors/{ids[name]}").json()
        return monitor if monitor["last_result"] else None

    try:
        hang = wait_for(lambda: result_of("hang"), 60, "the hanging script's result")
        assert hang["state"] == "unknown" and hang["last_result"]["code"] == "script_timeout"
        assert "killed after 2 s" in hang["last_result"]["message"]
        disk = wait_for(lambda: result_of("disk"), 30, "the perfdata script's result")
        assert disk["state"] == "warning"
        assert disk["last_result"]["message"] == "DISK WARNING - /var 91%"
        used = wait_for(lambda: platform.series("check_perf", label="/var used"), 30, "the perf series")
        assert used[0]["labels"]["uom"] == "%" and used[0]["points"][-1]["last"] == 91
        [crit] = platform.series("check_perf_crit", label="/var used", bound="high")
        assert crit["points"][-1]["last"] == 90
        [took] = platform.series("check_perf", label="time")
        assert took["points"][-1]["last"] == pytest.approx(0.035) and took["labels"]["uom"] == "s"
        proc = wait_for(lambda: result_of("agent"), 30, "the process check's result")
        assert proc["state"] == "up" and proc["last_result"]["metrics"]["count"] >= 1
        assert proc["last_result"]["metrics"]["rss_bytes"] > 1_000_000
        first_log = wait_for(lambda: result_of("log"), 30, "the log check's first result")
        assert first_log["state"] == "up"
        with app_log.open("a") as fh:
            fh.write("INFO fine\nERROR disk full on /var\n")
        log = wait_for(
            lambda: (m := result_of("log")) and m["state"] == "warning" and m, 40, "the log match to arrive"
        )
        assert log["last_result"]["message"].endswith("last matching lines:\nERROR disk full on /var")
        assert time.monotonic() - started < 90
    finally:
        stop(agent)


def test_host_local_types_are_refused_on_the_platform(platform: Platform) -> None:
    rt = build_runtime(load_settings_from(platform.env))
    try:
        with rt.sessions.begin() as s:
            customer_id = s.get(Asset, platform.asset_id).customer_id  # type: ignore[union-attr]
            for type_name, config in (
                ("script", {"script": "check_x"}),
                ("log", {"path": "/var/log/syslog", "patterns": ["x"]}),
                ("process", {"process_name": "nginx"}),
            ):
                with pytest.raises(InvalidMonitor) as err:
                    check_definition(s, customer_id, type_name, config, None, Runner.platform, None)
                assert "runs on the host itself" in err.value.errors["runner"]
                stored = check_definition(
                    s, customer_id, type_name, config, None, Runner.agent, platform.asset_id
                )
                assert stored["interval_s"] == 60
            # a scrape runs anywhere
            check_definition(
                s,
                customer_id,
                "prometheus",
                {"url": "http://10.0.0.5:9100/metrics"},
                None,
                Runner.platform,
                None,
            )
    finally:
        rt.close()


def test_results_are_fitted_to_what_the_server_accepts() -> None:
    from opsdesk.agent.checks import MAX_SERIES, fit_schema

    def record(series: list[list[Any]], message: str = "fine") -> dict[str, Any]:
        return {
            "monitor": 1,
            "t": 0,
            "ok": True,
            "state": "up",
            "status": "ok",
            "code": "ok",
            "message": message,
            "metrics": {"a": 1.0, "bad": float("nan")},
            "series": series,
        }

    fitted = fit_schema(
        record(
            [
                ["perf", {"label": "x"}, 1.0],
                ["perf", {"label": "y"}, float("inf")],
                ["perf", {"l": "z" * 300}, 1.0],
            ]
        )
    )
    assert fitted["series"] == [["perf", {"label": "x"}, 1.0]]
    assert fitted["metrics"] == {"a": 1.0} and "state" not in fitted
    assert "2 figures not storable" in fitted["message"]
    crowded = fit_schema(record([["prom_x", {"i": str(i)}, 1.0] for i in range(MAX_SERIES + 1)], "x" * 2000))
    assert (crowded["status"], crowded["ok"], crowded["series"]) == ("unknown", False, [])
    assert "narrow metric_allow" in crowded["message"] and len(crowded["message"]) <= 1000


def test_the_refusal_reads_in_both_languages_on_the_form() -> None:
    from opsdesk.monitors.pages import config_fields, definition_errors
    from opsdesk.web import i18n

    exc = InvalidMonitor(
        {"runner": "a script check runs on the host itself: choose runner agent and its agent"}
    )
    for lang, word in (("en", "agent"), ("zh-CN", "代理")):
        errors = definition_errors(i18n.translator(lang), "script", {"script": "check_x"}, exc)
        assert list(errors) == ["runs_on"] and word in errors["runs_on"]
    # every field of the new types has a caption in both languages
    for lang in ("en", "zh-CN"):
        t = i18n.translator(lang)
        for type_name in ("process", "log", "script", "prometheus"):
            assert t(f"check.type.{type_name}") != f"check.type.{type_name}"
            for field in config_fields(type_name):
                assert t(f"check.field.{field.name}") != f"check.field.{field.name}", (lang, field.name)
