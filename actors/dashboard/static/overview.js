// The overview: live state over server-sent events (/api/live), drawn with uPlot. Text only via
// textContent: names and details come from peers.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const fmt = new Intl.NumberFormat();
  let chart = null;

  function time(ts) { return ts ? new Date(ts * 1000).toLocaleTimeString() : "–"; }
  function ago(ts, now) { return ts ? `${Math.max(0, Math.round(now - ts))} s ago` : "–"; }
  function mib(kib) { return kib ? `${(kib / 1024).toFixed(1)} MiB` : "–"; }
  function cell(row, text, cls) {
    const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td;
  }

  function drawChart(rates) {
    const data = [rates.t, rates.decisions, rates.skipped, rates.overruns];
    if (chart) { chart.setData(data); return; }
    const el = $("rates-chart");
    chart = new uPlot({
      width: Math.max(400, el.clientWidth), height: 260,
      series: [{}, { label: "decisions/s", stroke: "#175cd3", width: 2, fill: "rgba(23,92,211,0.08)" },
               { label: "skipped/s", stroke: "#b54708", width: 1.5 },
               { label: "overruns/s", stroke: "#b42318", width: 1.5, dash: [4, 3] }],
      axes: [{}, { label: "per second" }],
      scales: { y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    }, data, el);
    window.dashboardRates = chart;
    window.addEventListener("resize", () => chart.setSize({ width: Math.max(400, el.clientWidth), height: 260 }));
  }

  function render(s) {
    const banner = $("banner");
    banner.replaceChildren(...s.banner.map((line) => { const d = document.createElement("div"); d.textContent = line; return d; }));
    banner.hidden = s.banner.length === 0;
    $("rate-now").textContent = fmt.format(s.rate_now.decisions);
    $("decisions-total").textContent = fmt.format(s.totals.decisions);
    $("skipped-total").textContent = fmt.format(s.totals.skipped);
    $("overruns-total").textContent = fmt.format(s.totals.overruns);
    $("memory-total").textContent = s.launcher ? mib(s.launcher.total_pss_kib) : "–";
    const body = $("actors").tBodies[0];
    body.replaceChildren();
    for (const a of s.actors) {
      const row = body.insertRow(); row.dataset.actor = a.name;
      cell(row, a.name);
      const st = cell(row, a.state + (a.detail ? ` (${a.detail})` : ""), `state-${a.state}`); st.dataset.state = a.state;
      cell(row, a.pid || "–"); cell(row, time(a.up_since)); cell(row, a.restarts); cell(row, a.hangs);
      cell(row, mib(a.rss_kib)); cell(row, ago(a.last_beat, s.now));
      cell(row, Object.entries(a.counters).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`).join(" "), "counters");
    }
    $("events").replaceChildren(...s.events.slice(0, 20).map((e) => {
      const li = document.createElement("li");
      li.textContent = `${time(e.ts)}  ${e.actor} ${e.event}${e.pid ? " pid " + e.pid : ""}${e.detail ? " — " + e.detail : ""}`;
      return li;
    }));
    drawChart(s.rates);
    window.dashboardState = s;
  }

  function connect() {
    const source = new EventSource("/api/live");
    source.addEventListener("state", (e) => { $("live-status").textContent = "connected"; render(JSON.parse(e.data)); });
    source.onerror = () => { $("live-status").textContent = "reconnecting…"; };
  }

  document.addEventListener("DOMContentLoaded", () => {
    fetch("/api/overview").then((r) => r.json()).then(render).catch(() => {});
    connect();
  });
})();
