// One book's chart: the competitor's average and our price over the newest decisions, sold and not-sold
// markers on our price, and the floor and ceiling each decision was priced within (kept with it in the
// Ledger) -- drawn only where they fall inside the prices' range, else named below the chart. The
// y-axis fits the prices shown; a gap (nothing decided) breaks the lines. After a gap the chart opens
// on the newest stretch (a run two hours ago would squash today's prices into a sliver); a double-click
// shows the whole history. Data from /api/series (money as decimal strings; the chart alone turns them
// into numbers to draw).
"use strict";
(function () {
  const num = (list) => list.map((v) => (v === null || v === undefined ? null : Number(v)));

  function padded(low, high) {
    const pad = Math.max((high - low) * 0.08, high * 0.01, 0.01);
    return [Math.max(0, low - pad), high + pad];
  }

  function range(values) {
    const seen = values.filter((v) => v !== null);
    return seen.length ? padded(Math.min(...seen), Math.max(...seen)) : [0, 1];
  }

  // The index the newest stretch starts at: the point after the last gap (0 without one, or when
  // fewer than 2 points follow it).
  function newestStretch(price) {
    const last = price.lastIndexOf(null);
    return last >= 0 && price.length - last > 2 ? last + 1 : 0;
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const el = document.getElementById("book-chart");
    const note = document.getElementById("chart-note");
    const q = new URLSearchParams({ id: el.dataset.book, strategy: el.dataset.strategy, points: el.dataset.points });
    const response = await fetch(`/api/series?${q}`);
    const s = await response.json();
    if (!response.ok) { el.textContent = s.error || "no data"; return; }
    const avg = num(s.avg_comp_price), price = num(s.price);
    const sold = price.map((p, i) => (s.sold[i] === true ? p : null));
    const unsold = price.map((p, i) => (s.sold[i] === false ? p : null));
    const [low, high] = range([...avg, ...price]);
    const data = [s.ts, avg, price, sold, unsold];
    const series = [{ value: (u, v) => chartTime.label(v) },
      { label: "competitor average", stroke: "#667085", width: 2, points: { show: false } },
      { label: "our price", stroke: "#175cd3", width: 2, points: { show: false } },
      { label: "sold", stroke: "#067647", width: 0, paths: () => null, points: { show: true, size: 7, fill: "#067647" } },
      { label: "not sold", stroke: "#b42318", width: 0, paths: () => null, points: { show: true, size: 7, fill: "#fff" } }];
    const outside = [];
    const drawn = [];
    for (const [name, color] of [["floor", "#b54708"], ["ceiling", "#6941c6"]]) {
      const values = num(s[name] || []);
      const known = values.filter((v) => v !== null);
      if (!known.length) continue;
      if (known.some((v) => v >= low && v <= high)) {
        data.push(values);
        series.push({ label: name, stroke: color, dash: [6, 4], width: 1.5, points: { show: false } });
        drawn.push(name);
      } else {
        const lowest = Math.min(...known), highest = Math.max(...known);
        const where = highest < low ? "below" : "above";
        const text = lowest === highest ? lowest.toFixed(2) : `${lowest.toFixed(2)}–${highest.toFixed(2)}`;
        outside.push(`${name} ${text} (${where} the chart)`);
      }
    }
    const parts = ["● sold", "○ not sold"];
    if (drawn.length) parts.push(`dashed: ${drawn.join(", ")} as each decision had them`);
    if (outside.length) parts.push(outside.join("; "));
    if (s.gaps) parts.push(`${s.gaps} gap${s.gaps > 1 ? "s" : ""}: nothing decided`);
    const from = newestStretch(price);
    if (from > 0) {
      parts.push(`showing the newest stretch, since ${chartTime.label(s.ts[from])} ` +
                 `(${price.length - from} of ${s.decisions} decisions): double-click the chart for all`);
    }
    note.textContent = parts.join(" · ");
    const size = () => ({ width: Math.max(400, el.clientWidth), height: 320 });
    const chart = new uPlot({
      ...size(), series,
      // y: fitted to what is shown (uPlot gives the range of the points inside the x window)
      scales: { x: { time: true }, y: { range: (u, min, max) => (min === null ? [low, high] : padded(min, max)) } },
      axes: [chartTime.axis(), { label: "price", size: 64 }],
      legend: { live: false },  // the series' names and colours only: no "--" values until a hover
      padding: chartTime.padding,
    }, data, el);
    if (from > 0) chart.setScale("x", { min: s.ts[from], max: s.ts[s.ts.length - 1] });
    window.dashboardChart = chart;
    window.dashboardSeries = s;
    window.addEventListener("resize", () => chart.setSize(size()));
  });
})();
