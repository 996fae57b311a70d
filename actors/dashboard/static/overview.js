// The overview: the business first (from the Ledger: its database every few seconds, its tallies of
// the last hour), the alerts, then health; live over server-sent events (/api/live). Text only via
// textContent: names and details come from peers.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const fmt = new Intl.NumberFormat("en");
  let chart = null;
  let words = { words: {}, prefixes: {} };

  function time(ts) { return ts ? chartTime.clock(ts, true) + " UTC" : "–"; }
  function ago(ts, now) {
    if (!ts) return "–";
    const s = Math.max(0, Math.round(now - ts));
    return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
  }
  function mib(kib) { return kib ? `${(kib / 1024).toFixed(1)} MiB` : "–"; }
  function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
  function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; }
  function kindOf(name) { return name.replace(/-[0-9]+$/, ""); }
  function describe(kind, counter) {
    const known = (words.words[kind] || {})[counter];
    if (known) return known;
    for (const [prefix, text] of Object.entries(words.prefixes[kind] || {})) {
      if (counter.startsWith(prefix)) return `${text}: ${counter.slice(prefix.length).replaceAll("_", " ")}`;
    }
    return counter.replaceAll("_", " ");
  }
  function subject(a) {
    if (a.book) {
      const link = el("a", `${a.book} · ${a.strategy}`);
      link.href = `/book?${new URLSearchParams({ id: a.book, strategy: a.strategy })}`;
      return link;
    }
    return el("span", a.strategy ? `strategy ${a.strategy}` : "the system");
  }

  function drawChart(rates) {
    const data = [rates.t, rates.decisions, rates.skipped, rates.overruns];
    if (chart) { chart.setData(data); return; }
    const box = $("rates-chart");
    chart = new uPlot({
      width: Math.max(400, box.clientWidth), height: 240,
      series: [{ value: (u, v) => chartTime.label(v) },
               { label: "decisions/s", stroke: "#175cd3", width: 2, fill: "rgba(23,92,211,0.08)" },
               { label: "skipped/s", stroke: "#b54708", width: 1.5 },
               { label: "overruns/s", stroke: "#b42318", width: 1.5, dash: [4, 3] }],
      axes: [chartTime.axis(), { label: "per second" }],
      legend: { live: false },  // the series' names only: no "--" values until a hover
      padding: chartTime.padding,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    }, data, box);
    window.dashboardRates = chart;
    window.addEventListener("resize", () => chart.setSize({ width: Math.max(400, box.clientWidth), height: 240 }));
  }

  function business(s) {
    const b = s.business, hour = s.hour.counts, covered = s.hour.seconds;
    const n = (key) => hour[key] || 0;
    if (b) {
      $("books-priced").textContent = fmt.format(b.books);
      $("books-detail").replaceChildren(el("span", `${fmt.format(b.pairs)} (book, strategy) pairs`));
      if (b.earlier) {
        const link = el("a", `${fmt.format(b.earlier)} only in earlier runs`);
        link.href = "/books?scope=earlier";
        $("books-detail").append(" · ", link);
      }
      $("at-bounds").textContent = `${fmt.format(b.at_floor)} · ${fmt.format(b.at_ceiling)}`;
      $("at-bounds-detail").textContent = "pairs whose newest price a floor or ceiling set";
      $("alerts-count").textContent = b.alerts_kept ? fmt.format(b.alerts_open) : "–";
      $("alerts-count").className = "big" + (b.alerts_open ? " bad" : "");
    }
    $("price-changes").textContent = fmt.format(n("prices_up") + n("prices_down"));
    $("price-moves").textContent = `▲ ${fmt.format(n("prices_up"))} up · ▼ ${fmt.format(n("prices_down"))} down · of ${fmt.format(n("stored"))} decisions`;
    const kinds = Object.entries(hour).filter(([k]) => k.startsWith("guardrail_")).sort((a, b) => b[1] - a[1]);
    $("guardrail-hits").textContent = fmt.format(kinds.reduce((t, [, v]) => t + v, 0));
    const byKind = kinds.map(([k, v]) => `${k.slice(10).replaceAll("_", " ")} ${fmt.format(v)}`).join(" · ");
    // Each guardrail that moved a price counts: one decision may count for several.
    $("guardrail-kinds").textContent = byKind ? `${byKind} (a decision may hit several)` : "none";
    $("competitor-moves").textContent = fmt.format(n("competitor_up") + n("competitor_down"));
    $("competitor-detail").textContent = `▲ ${fmt.format(n("competitor_up"))} up · ▼ ${fmt.format(n("competitor_down"))} down`;
    const minutes = Math.round(covered / 60);
    $("hour-note").textContent = covered >= 3540 ? "Last hour: from the Ledger's tallies, minute by minute."
      : `"Last hour" so far covers ${minutes < 1 ? "less than a minute" : minutes + " min"}: since this Dashboard started listening. ` +
        `Books and pairs at a bound are the Ledger's now${b ? ` (read ${ago(b.read_at, s.now)})` : ""}.`;
  }

  function alerts(s) {
    const b = s.business;
    const panel = $("alerts-panel");
    if (!b) { panel.replaceChildren(el("p", s.business_note || "No history yet.", "empty")); return; }
    if (!b.alerts_kept) {
      panel.replaceChildren(el("p", "This Ledger database keeps no alerts (written by a Ledger older than schema version 4).", "empty"));
      return;
    }
    if (!b.alerts.length) {
      panel.replaceChildren(el("p", "No alerts: nothing needs you now.", "empty ok"));
    } else {
      const list = el("ul");
      for (const a of b.alerts) {
        const li = el("li", undefined, `alert alert-${a.alert}`);
        li.append(el("strong", a.title), el("span", " · "), subject(a), el("span", ` · since ${time(a.since)} (${ago(a.since, s.now)})`, "note"));
        li.append(el("div", a.detail), el("div", a.advice, "note"));
        list.append(li);
      }
      const more = b.alerts_open - b.alerts.length;
      panel.replaceChildren(list, ...(more > 0 ? [el("p", `and ${fmt.format(more)} more`, "note")] : []));
    }
    $("cleared-list").replaceChildren(...(b.cleared.length ? b.cleared.map((a) => {
      const li = el("li");
      li.append(el("span", `${time(a.cleared_at)} ${a.title} · `), subject(a), el("span", ` — ${a.cleared_detail || ""}`));
      return li;
    }) : [el("li", "none yet", "empty")]));
  }

  function health(s) {
    const h = s.health;
    $("actors-up").textContent = `${h.up} of ${h.actors}`;
    $("actors-up").className = "big" + (h.up < h.actors ? " bad" : "");
    $("restarts").textContent = fmt.format(h.restarts);
    $("ledger-lag").textContent = h.ledger_lag === null ? "–" : `${h.ledger_lag.toFixed(1)} s`;
    $("spool").textContent = h.spool === null ? "–" : fmt.format(h.spool) + (h.spool_dropped ? ` (${fmt.format(h.spool_dropped)} dropped)` : "");
    $("memory-total").textContent = s.launcher ? mib(s.launcher.total_pss_kib) : "–";
    const body = $("actors").tBodies[0];
    body.replaceChildren();
    for (const a of s.actors) {
      const row = body.insertRow(); row.dataset.actor = a.name;
      cell(row, a.name);
      const st = cell(row, a.state + (a.detail ? ` (${a.detail})` : ""), `state-${a.state}`); st.dataset.state = a.state;
      cell(row, a.pid || "–"); cell(row, time(a.up_since)); cell(row, a.restarts); cell(row, a.hangs);
      cell(row, mib(a.rss_kib)); cell(row, ago(a.last_beat, s.now));
      cell(row, a.counters.decisions !== undefined ? fmt.format(a.counters.decisions) : "", "num");
    }
    const boxes = s.actors.map((a) => {
      const box = el("div", undefined, "actor-counters");
      box.append(el("h3", a.name));
      const list = el("dl");
      const kind = kindOf(a.name);
      for (const [name, value] of Object.entries(a.counters).sort()) {
        const dt = el("dt", describe(kind, name)); dt.title = name;
        list.append(dt, el("dd", fmt.format(value)));
      }
      box.append(list);
      return box;
    });
    $("counters").replaceChildren(...boxes);
  }

  function render(s) {
    const banner = $("banner");
    banner.replaceChildren(...s.banner.map((line) => el("div", line)));
    banner.hidden = s.banner.length === 0;
    business(s);
    alerts(s);
    health(s);
    $("decisions-total").textContent = fmt.format(s.totals.decisions);
    $("skipped-total").textContent = fmt.format(s.totals.skipped);
    $("overruns-total").textContent = fmt.format(s.totals.overruns);
    $("events").replaceChildren(...(s.events.length ? s.events.slice(0, 20).map((e) =>
      el("li", `${time(e.ts)}  ${e.actor} ${e.event}${e.pid ? " pid " + e.pid : ""}${e.detail ? " — " + e.detail : ""}`))
      : [el("li", s.listening ? "No supervisor events since this Dashboard started listening." : "Live state is off: no events.", "empty")]));
    drawChart(s.rates);
    window.dashboardState = s;
  }

  function connect() {
    const source = new EventSource("/api/live");
    source.addEventListener("state", (e) => { $("live-status").textContent = "connected"; render(JSON.parse(e.data)); });
    source.onerror = () => { $("live-status").textContent = "reconnecting…"; };
  }

  document.addEventListener("DOMContentLoaded", async () => {
    try { words = await (await fetch("/api/words")).json(); } catch (e) { /* counters keep their names */ }
    fetch("/api/overview").then((r) => r.json()).then(render).catch(() => {});
    connect();
  });
})();
