// shiftright dashboard: draws the charts (uPlot) from the JSON the server put in the page,
// and keeps live panels polling (htmx) only while the tab is visible.
(function () {
  "use strict";

  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const COLORS = { rate: "--s1", uses: "--s1", err_rate: "--err", events: "--err", p50: "--s1", p95: "--s2",
                   cpu: "--s1", mem: "--s2", disk: "--s3" };

  function readJSON(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // Deploys and flag changes as vertical lines across a chart.
  function markersPlugin(markers) {
    return { hooks: { draw: [(u) => {
      if (!markers || !markers.length) return;
      const ctx = u.ctx, top = u.bbox.top, bottom = u.bbox.top + u.bbox.height;
      ctx.save();
      ctx.lineWidth = Math.max(1, devicePixelRatio);
      ctx.setLineDash([3 * devicePixelRatio, 3 * devicePixelRatio]);
      for (const m of markers) {
        const x = Math.round(u.valToPos(m.t, "x", true));
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
        ctx.strokeStyle = css(m.kind === "deploy" ? "--marker-deploy" : "--marker-flag");
        ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
      }
      ctx.restore();
    }] } };
  }

  // Drag across a chart to zoom: the page reloads on that span (from= / to= in the URL).
  function zoomPlugin() {
    return { hooks: { setSelect: [(u) => {
      if (u.select.width < 4) return;
      const from = u.posToVal(u.select.left, "x"), to = u.posToVal(u.select.left + u.select.width, "x");
      const url = new URL(location.href);
      url.searchParams.delete("range");
      url.searchParams.set("from", new Date(from * 1000).toISOString().slice(0, 16) + "Z");
      url.searchParams.set("to", new Date(Math.max(to, from + 60) * 1000).toISOString().slice(0, 16) + "Z");
      location.assign(url.toString());
    }] } };
  }

  function sparkline(el) {
    const data = readJSON(el.dataset.chart);
    if (!data) return;
    const names = el.dataset.series.split(",");
    const scale = el.hasAttribute("data-percent") ? 100 : 1;
    const scaled = (values) => values.map((v) => (v == null ? null : v * scale));
    const versus = data.compare ? names : [];  // compare mode: the other env, dashed
    const columns = [data.t].concat(names.map((n) => scaled(data[n])), versus.map((n) => scaled(data.compare[n])));
    const zoomable = !el.classList.contains("small");  // a tile's chart; not a table row's
    const opts = {
      width: el.clientWidth || 120, height: el.clientHeight || 40, pxAlign: false,
      cursor: zoomable ? { x: false, y: false, points: { show: false }, drag: { x: true, y: false } }
        : { show: false },
      legend: { show: false }, select: { show: zoomable },
      scales: { x: { time: true }, y: { range: scale === 100 ? [0, 100]
        : (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      axes: [{ show: false }, { show: false }],
      series: [{}].concat(names.map((n) => ({
        label: n, width: 1.5, stroke: css(COLORS[n] || "--s1"), points: { show: false },
      })), versus.map((n) => ({
        label: n + " " + data.compare_env, width: 1, dash: [3, 3], stroke: css(COLORS[n] || "--s1"),
        points: { show: false },
      }))),
      plugins: [markersPlugin(data.markers)].concat(zoomable ? [zoomPlugin()] : []),
    };
    el.replaceChildren();
    new uPlot(opts, columns, el);
  }

  function timeline(el) {
    const data = readJSON(el.dataset.timeline);
    if (!data) return;
    const envs = Object.keys(data.envs).sort();
    const palette = ["--s1", "--s2", "--s3", "--err"];
    const opts = {
      width: el.clientWidth || 600, height: 180, legend: { live: false },
      scales: { x: { time: true } },
      axes: [{ stroke: css("--muted"), grid: { stroke: css("--line") } },
             { stroke: css("--muted"), grid: { stroke: css("--line") } }],
      series: [{}].concat(envs.map((e, i) => ({
        label: e, width: 1.5, stroke: css(palette[i % palette.length]), points: { show: false },
        paths: uPlot.paths.stepped({ align: 1 }),
      }))),
      plugins: [markersPlugin(data.markers), zoomPlugin()],
    };
    el.replaceChildren();
    new uPlot(opts, [data.t].concat(envs.map((e) => data.envs[e])), el);
  }

  // One line per host of one metric (the health page).
  function hostChart(el) {
    const data = readJSON(el.dataset.hostchart);
    if (!data) return;
    const perHost = data[el.dataset.metric] || {};
    const lines = (data.thresholds || {})[el.dataset.metric] || [];
    const theirs = (data.compare || {})[el.dataset.metric] || {};  // compare mode, dashed
    const others = Object.keys(theirs).sort();
    const hosts = Object.keys(perHost).sort();
    const scale = el.hasAttribute("data-percent") ? 100 : 1;
    const palette = ["--s1", "--s2", "--s3", "--err", "--ok", "--warn"];
    const opts = {
      width: el.clientWidth || 300, height: 130,
      scales: { x: { time: true }, y: scale === 100 ? { range: [0, 100] } : { range: (u, min, max) => {
        const top = Math.max(max, ...lines.map((l) => l.value));
        return [Math.min(0, min), top > 0 ? top * 1.1 : 1];
      } } },
      axes: [{ stroke: css("--muted"), grid: { stroke: css("--line") }, size: 30 },
             { stroke: css("--muted"), grid: { stroke: css("--line") }, size: 44 }],
      legend: { show: hosts.length > 0 && hosts.length + others.length <= 8, live: false },
      series: [{}].concat(hosts.map((h, i) => ({
        label: h, width: 1.25, stroke: css(palette[i % palette.length]), points: { show: false },
      })), others.map((h, i) => ({
        label: h + " (" + data.compare_env + ")", width: 1, dash: [4, 3],
        stroke: css(palette[i % palette.length]), points: { show: false },
      }))),
      plugins: [zoomPlugin(), thresholdsPlugin(lines, scale)],
    };
    const scaled = (values) => values.map((v) => (v == null ? null : v * scale));
    const columns = [data.t].concat(hosts.map((h) => scaled(perHost[h])), others.map((h) => scaled(theirs[h])));
    el.replaceChildren();
    new uPlot(opts, columns, el);
  }

  // Firing spans of a backtest, shaded behind the measure.
  function spansPlugin(spans) {
    return { hooks: { drawClear: [(u) => {
      const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
      ctx.save();
      ctx.fillStyle = css("--fired");
      for (const [a, b] of spans) {
        const x0 = Math.max(u.bbox.left, u.valToPos(a, "x", true));
        const x1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos(b, "x", true));
        if (x1 > x0) ctx.fillRect(x0, top, Math.max(x1 - x0, devicePixelRatio), height);
      }
      ctx.restore();
    }] } };
  }

  // A horizontal line at each threshold (alert rules over a chart).
  function thresholdsPlugin(lines, scale) {
    return { hooks: { draw: [(u) => {
      const ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = css("--err");
      ctx.lineWidth = Math.max(1, devicePixelRatio);
      ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
      ctx.fillStyle = css("--err");
      ctx.font = (10 * devicePixelRatio) + "px sans-serif";
      for (const line of lines) {
        const y = Math.round(u.valToPos(line.value * scale, "y", true));
        if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
        ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
        if (line.label) ctx.fillText(line.label, u.bbox.left + 4 * devicePixelRatio, y - 3 * devicePixelRatio);
      }
      ctx.restore();
    }] } };
  }

  // The rule form's backtest: the measure, when the rule would have fired, the threshold.
  function backtestChart(el) {
    const data = readJSON(el.dataset.backtest);
    if (!data) return;
    const lines = data.threshold == null ? [] : [{ value: data.threshold, label: "threshold" }];
    const opts = {
      width: el.clientWidth || 600, height: 200, legend: { live: false },
      scales: { x: { time: true, range: [data.start, data.end] }, y: { range: (u, min, max) => {
        const top = Math.max(max, data.threshold == null ? max : data.threshold);
        return [Math.min(0, min), top > 0 ? top * 1.1 : 1];
      } } },
      axes: [{ stroke: css("--muted"), grid: { stroke: css("--line") } },
             { stroke: css("--muted"), grid: { stroke: css("--line") } }],
      series: [{}, { label: "measure", width: 1.5, stroke: css("--s1"), points: { show: false } }],
      plugins: [spansPlugin(data.fired), thresholdsPlugin(lines, 1)],
    };
    el.replaceChildren();
    new uPlot(opts, [data.t, data.v], el);
  }

  // The rule form shows the fields of the chosen kind (all of them without scripts).
  function ruleForm(form) {
    const kind = form.querySelector("select[name=kind]");
    const show = () => form.querySelectorAll("fieldset[data-kinds]").forEach((f) => {
      f.hidden = !f.dataset.kinds.split(" ").includes(kind.value);
    });
    kind.addEventListener("change", show);
    show();
  }

  function draw(root) {
    root.querySelectorAll("[data-backtest]").forEach(backtestChart);
    root.querySelectorAll("form.rule-form").forEach(ruleForm);
    root.querySelectorAll("[data-hostchart]").forEach(hostChart);
    root.querySelectorAll("[data-chart]").forEach(sparkline);
    root.querySelectorAll("[data-timeline]").forEach(timeline);
    root.querySelectorAll("select[data-autosubmit]").forEach((s) => {
      s.addEventListener("change", () => s.form.requestSubmit());
    });
  }

  htmx.onLoad(draw);

  // No polling while the tab is hidden; one refresh as soon as it is visible again.
  document.body.addEventListener("htmx:beforeRequest", (evt) => {
    if (document.hidden && evt.detail.elt.hasAttribute("data-live")) evt.preventDefault();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) document.body.dispatchEvent(new Event("visible-again"));
  });
})();
