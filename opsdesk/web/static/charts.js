/* opsdesk charts: fetch the metrics API and draw uPlot charts.
 *
 * Markup (see hosts/templates/_charts.html): one [data-chart-controls] block with range buttons
 * (and optionally a custom from/to), and any number of [data-chart] elements whose JSON spec
 * names the API URL, the unit, and the metrics to draw:
 *   {"url": "/api/v1/assets/7/metrics", "unit": "%", "min_step": 15, "flat": false,
 *    "queries": [{"name": "cpu_usage_percent", "label": "{mode}", "exclude": {"mode": ["idle"]}}]}
 * "flat" APIs (a check's figures) answer a list of points instead of a list of series.
 *
 * Steps keep every series at or under ~1,000 points, and `start` is a multiple of the step, so
 * the store answers long ranges from its 5-minute and hourly rollups (from 24 h on, the step is
 * at least 5 minutes for that reason). Times are Beijing time.
 */
(function () {
  "use strict";

  var STEPS = [15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  var MAX_POINTS = 1000;
  var RANGES = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
  var TZ = "Asia/Shanghai";
  var TZ_OFFSET_S = 8 * 3600;
  var COLORS = ["#1f5fbf", "#c4320a", "#1a7f37", "#8250df", "#9a6700", "#0a7ea4", "#bf3989", "#57606a",
    "#0f2540", "#d1242f"];
  var charts = [];
  var messages = {};

  function stepFor(span, minStep) {
    var wanted = Math.max(span / MAX_POINTS, minStep || 1);
    for (var i = 0; i < STEPS.length; i++) {
      if (STEPS[i] >= wanted) return STEPS[i];
    }
    return Math.ceil(wanted / 86400) * 86400;
  }

  function windowFor(start, end, minStep) {
    var step = stepFor(end - start, minStep);
    return { start: Math.floor(start / step) * step, end: Math.ceil(end), step: step };
  }

  function iso(seconds) {
    return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  function labelOf(template, labels) {
    return template.replace(/\{(\w+)\}/g, function (_m, key) {
      return labels[key] != null ? labels[key] : "";
    }).trim();
  }

  function excluded(query, labels) {
    var rules = query.exclude || {};
    return Object.keys(rules).some(function (key) {
      return rules[key].indexOf(labels[key]) >= 0;
    });
  }

  function fetchJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.json();
      });
  }

  function queryURL(spec, query, win) {
    var params = new URLSearchParams({
      name: query.name, start: iso(win.start), end: iso(win.end), step: String(win.step)
    });
    return spec.url + "?" + params.toString();
  }

  /* Series from the answers, each a map time -> average, labelled by its query's template. */
  function collect(spec, answers) {
    var out = [];
    answers.forEach(function (answer) {
      var list = spec.flat ? [{ labels: {}, points: answer.body }] : answer.body;
      var mine = [];
      list.forEach(function (s) {
        if (excluded(answer.query, s.labels || {})) return;
        var values = new Map();
        s.points.forEach(function (p) { values.set(Math.round(p.t / 1000), p.avg); });
        mine.push({ label: labelOf(answer.query.label, s.labels || {}) || answer.query.name, values: values });
      });
      mine.sort(function (a, b) { return a.label.localeCompare(b.label); });
      out = out.concat(mine);
    });
    return out;
  }

  /* uPlot's columns: the times of all series, with a break (null) where data stopped for a while. */
  function columns(series, win) {
    var times = new Set([win.start, win.end]);
    series.forEach(function (s) { s.values.forEach(function (_v, t) { times.add(t); }); });
    var sorted = Array.from(times).sort(function (a, b) { return a - b; });
    var xs = [];
    for (var i = 0; i < sorted.length; i++) {
      if (i > 0 && sorted[i] - sorted[i - 1] > 3 * win.step) xs.push(sorted[i - 1] + win.step);
      xs.push(sorted[i]);
    }
    var data = [xs];
    series.forEach(function (s) {
      data.push(xs.map(function (t) { return s.values.has(t) ? s.values.get(t) : null; }));
    });
    return data;
  }

  function bytes(v) {
    var units = ["B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s"];
    var i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
  }

  function format(v, unit) {
    if (v == null || isNaN(v)) return "–";
    if (unit === "B/s") return bytes(v);
    if (unit === "%") return v.toFixed(1) + " %";
    if (unit === "ms") return v.toFixed(v < 10 ? 1 : 0) + " ms";
    return Math.abs(v) >= 100 ? v.toFixed(0) : String(Math.round(v * 100) / 100);
  }

  function yRange(unit) {
    return function (_u, _min, max) {
      if (unit === "%") return [0, Math.max(100, max || 0)];
      var top = max > 0 ? max * 1.1 : 1;
      return [0, top];
    };
  }

  function options(chart, labels, width) {
    var unit = chart.spec.unit;
    var series = [{}].concat(labels.map(function (label, i) {
      return {
        label: label,
        stroke: COLORS[i % COLORS.length],
        width: 1.5,
        value: function (_u, v) { return format(v, unit); }
      };
    }));
    return {
      width: width,
      height: chart.el.clientWidth < 500 ? 180 : 220,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), TZ); },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true }, y: { range: yRange(unit) } },
      series: series,
      axes: [
        { stroke: "#344054", grid: { stroke: "#eef1f5" } },
        {
          stroke: "#344054", grid: { stroke: "#eef1f5" }, size: unit === "B/s" ? 78 : unit === "%" ? 66 : 56,
          values: function (_u, ticks) { return ticks.map(function (v) { return format(v, unit); }); }
        }
      ]
    };
  }

  function showEmpty(chart, text, state) {
    if (chart.plot) { chart.plot.destroy(); chart.plot = null; }
    chart.el.innerHTML = "";
    chart.el.hidden = true;
    chart.empty.textContent = text;
    chart.empty.hidden = false;
    chart.el.dataset.seriesCount = "0";
    chart.el.dataset.state = state;
  }

  function draw(chart, series, win) {
    chart.el.dataset.step = String(win.step);
    chart.el.dataset.start = String(win.start);
    chart.el.dataset.end = String(win.end);
    if (!series.length) {
      showEmpty(chart, messages.empty, "empty");
      return;
    }
    chart.el.hidden = false;
    chart.empty.hidden = true;
    if (chart.plot) chart.plot.destroy();
    chart.el.innerHTML = "";
    var labels = series.map(function (s) { return s.label; });
    var width = Math.max(chart.el.clientWidth, 240);
    chart.plot = new uPlot(options(chart, labels, width), columns(series, win), chart.el);
    chart.el.dataset.seriesCount = String(chart.plot.series.length - 1);
    chart.el.dataset.state = "ready";
  }

  function load(chart, start, end) {
    var win = windowFor(start, end, chart.spec.min_step);
    chart.el.dataset.state = "loading";
    var requests = chart.spec.queries.map(function (query) {
      return fetchJSON(queryURL(chart.spec, query, win)).then(function (body) {
        return { query: query, body: body };
      });
    });
    return Promise.all(requests).then(
      function (answers) { draw(chart, collect(chart.spec, answers), win); },
      function () { showEmpty(chart, messages.error, "error"); }
    );
  }

  function reload(start, end, status) {
    if (status) status.textContent = messages.loading;
    return Promise.all(charts.map(function (chart) { return load(chart, start, end); })).then(function () {
      if (status) status.textContent = "";
    });
  }

  /* "2026-05-01T10:00" read as Beijing time -> seconds since 1970. */
  function beijing(value) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || "");
    if (!m) return null;
    return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]) / 1000 - TZ_OFFSET_S;
  }

  function inputValue(seconds) {
    return new Date((seconds + TZ_OFFSET_S) * 1000).toISOString().slice(0, 16);
  }

  function wire(controls) {
    var status = controls.querySelector("[data-chart-status]");
    var buttons = Array.prototype.slice.call(controls.querySelectorAll("[data-range]"));
    var from = controls.querySelector("[data-custom-from]");
    var to = controls.querySelector("[data-custom-to]");
    function press(active) {
      buttons.forEach(function (b) { b.setAttribute("aria-pressed", b === active ? "true" : "false"); });
    }
    function pick(key) {
      var end = Date.now() / 1000;
      if (from && to) { from.value = inputValue(end - RANGES[key]); to.value = inputValue(end); }
      return reload(end - RANGES[key], end, status);
    }
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        press(button);
        pick(button.dataset.range);
      });
    });
    var apply = controls.querySelector("[data-custom-apply]");
    function custom() {
      var start = beijing(from.value);
      var end = beijing(to.value);
      if (start == null || end == null || start >= end) {
        status.textContent = messages.order;
        return;
      }
      press(null);
      reload(start, end, status);
    }
    if (apply) {
      apply.addEventListener("click", custom);
      [from, to].forEach(function (input) {
        input.addEventListener("keydown", function (ev) { if (ev.key === "Enter") custom(); });
      });
    }
    return pick(controls.dataset.initial in RANGES ? controls.dataset.initial : "24h");
  }

  function init() {
    var controls = document.querySelector("[data-chart-controls]");
    if (!controls || typeof uPlot === "undefined") return;
    messages = {
      error: controls.dataset.msgError, empty: controls.dataset.msgEmpty,
      loading: controls.dataset.msgLoading, order: controls.dataset.msgOrder
    };
    charts = Array.prototype.map.call(document.querySelectorAll("[data-chart]"), function (el) {
      return { el: el, spec: JSON.parse(el.dataset.chart), plot: null, empty: el.parentNode.querySelector(".chart-empty") };
    });
    window.opsdeskCharts = charts;
    if ("ResizeObserver" in window) {
      var observer = new ResizeObserver(function () {
        charts.forEach(function (chart) {
          if (chart.plot && chart.el.clientWidth > 0 && chart.el.clientWidth !== chart.plot.width) {
            chart.plot.setSize({ width: chart.el.clientWidth, height: chart.plot.height });
          }
        });
      });
      charts.forEach(function (chart) { observer.observe(chart.el); });
    }
    wire(controls);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
