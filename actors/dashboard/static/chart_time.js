// Time axes that read, for every chart of the Dashboard: UTC clock times (the tables' times are UTC
// too), at least `space` pixels apart so two labels never touch, with seconds only on a short span
// and the date on the first label and wherever the day changes on a span over a day.
"use strict";
window.chartTime = (function () {
  const pad = (n) => String(n).padStart(2, "0");
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function clock(ts, seconds) {
    const d = new Date(ts * 1000);
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${seconds ? ":" + pad(d.getUTCSeconds()) : ""}`;
  }
  function day(ts) {
    const d = new Date(ts * 1000);
    return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
  }
  function label(ts) { return ts == null ? "–" : `${day(ts)} ${clock(ts, true)} UTC`; }

  function axis() {
    return {
      space: 90,
      values: (u, splits) => {
        const span = (u.scales.x.max - u.scales.x.min) || 0;
        const seconds = span < 600;
        let last = null;
        return splits.map((v, i) => {
          const d = day(v);
          const text = (span > 86400 && (i === 0 || d !== last)) ? `${d} ${clock(v, seconds)}` : clock(v, seconds);
          last = d;
          return text;
        });
      },
    };
  }
  // Room on the right for the last time label, centred on the chart's right edge (else it is cut).
  const padding = [null, 32, null, null];
  return { axis, label, clock, padding };
})();
