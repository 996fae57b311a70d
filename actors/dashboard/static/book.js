// One book's chart: the competitor's average and our price over the newest decisions, sold and
// not-sold markers on our price, floor and ceiling lines when set. Data from /api/series (money comes
// as decimal strings; the chart alone turns them into numbers to draw).
"use strict";
(function () {
  document.addEventListener("DOMContentLoaded", async () => {
    const el = document.getElementById("book-chart");
    const q = new URLSearchParams({ id: el.dataset.book, strategy: el.dataset.strategy, points: el.dataset.points });
    const response = await fetch(`/api/series?${q}`);
    const s = await response.json();
    if (!response.ok) { el.textContent = s.error || "no data"; return; }
    const price = s.price.map(Number);
    const sold = price.map((p, i) => (s.sold[i] ? p : null));
    const unsold = price.map((p, i) => (s.sold[i] ? null : p));
    const data = [s.ts, s.avg_comp_price.map(Number), price, sold, unsold];
    const series = [{},
      { label: "avg competitor price", stroke: "#667085", width: 2, points: { show: false } },
      { label: "our price", stroke: "#175cd3", width: 2, points: { show: false } },
      { label: "sold", stroke: "#067647", width: 0, paths: () => null, points: { show: true, size: 7, fill: "#067647" } },
      { label: "not sold", stroke: "#b42318", width: 0, paths: () => null, points: { show: true, size: 7, fill: "#fff" } }];
    for (const [name, color] of [["floor", "#b54708"], ["ceiling", "#6941c6"]]) {
      const value = s.bounds[name];
      if (value !== null) { data.push(s.ts.map(() => Number(value))); series.push({ label: name, stroke: color, dash: [6, 4], width: 1.5, points: { show: false } }); }
    }
    const chart = new uPlot({ width: Math.max(400, el.clientWidth), height: 320, series, axes: [{}, { label: "price" }] }, data, el);
    window.dashboardChart = chart;
    window.dashboardSeries = s;
    window.addEventListener("resize", () => chart.setSize({ width: Math.max(400, el.clientWidth), height: 320 }));
  });
})();
