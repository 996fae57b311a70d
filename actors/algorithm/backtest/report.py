"""The backtest's HTML report: one self-contained file (the vendored uPlot, the styles, the data and the
script inlined: it opens from disk, offline, or through the Dashboard) with the strategies ranked,
each charted pair's price path against the competitor's average, and every pair's numbers.

Pure but for :func:`write`. Text from the file or the config (book ids, strategy names) is escaped
for HTML, and the chart data is JSON with ``<``, ``>``, ``&`` escaped, so nothing in them can end the
script element or become markup.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any, Final

from actors import charts
from actors.algorithm.backtest.cents import MICRO
from actors.algorithm.backtest.job import Job, Result
from actors.algorithm.backtest.output import pair_row, strategy_row
from actors.algorithm.backtest.stats import StrategyTotals, money
from actors.algorithm.backtest.sweep import Best
from transport import files

TABLE_PAIRS: Final = 2000  # rows of the pairs table; the csv/json output has them all
_STYLE: Final = """
:root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #175cd3;
        font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); }
body { margin: 0; } main { padding: 1rem 1.5rem 3rem; max-width: 1400px; }
h1 { font-size: 1.4rem; margin: .4rem 0 .6rem; } h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 600; } td.num { text-align: right; }
tr.best td { font-weight: 650; }
.note { color: var(--muted); font-size: .92em; } .scroll { overflow-x: auto; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1rem; }
.chart h3 { font-size: .95rem; margin: .2rem 0; } .chart .plot { min-height: 220px; }
"""
_SCRIPT: Final = """
"use strict";
(function () {
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var holder = document.getElementById("charts");
  data.charts.forEach(function (c) {
    var box = document.createElement("section");
    box.className = "chart";
    var title = document.createElement("h3");
    title.textContent = c.book + " · " + c.strategy;
    box.appendChild(title);
    var plot = document.createElement("div");
    plot.className = "plot";
    box.appendChild(plot);
    holder.appendChild(box);
    var opts = {
      width: Math.max(360, box.clientWidth - 8), height: 220,
      scales: { x: { time: false } },
      axes: [{ label: "tick" }, { label: "price" }],
      series: [{ label: "tick" },
               { label: "our price", stroke: "#175cd3", width: 1.5 },
               { label: "competitor average", stroke: "#b54708", width: 1, dash: [4, 3] }]
    };
    new uPlot(opts, [c.tick, c.price, c.competitor], plot);
  });
  document.body.setAttribute("data-charts-drawn", String(data.charts.length));
})();
"""
_PAGE: Final = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backtest · repricer</title>
<style>$uplot_css</style>
<style>$style</style>
</head>
<body>
<main>
<h1>Backtest</h1>
<p class="note">$about</p>
<h2>Strategies, ranked by $objective</h2>
<div class="scroll">$strategies</div>
$best
<h2>Price paths</h2>
<p class="note">$charts_note</p>
<div id="charts" class="charts"></div>
<h2>Pairs</h2>
<p class="note">$pairs_note</p>
<div class="scroll">$pairs</div>
</main>
<script id="report-data" type="application/json">$data</script>
<script>$uplot_js</script>
<script>$script</script>
</body>
</html>
""")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def script_json(value: Any) -> str:
    """JSON that cannot end a script element or open a comment in it."""
    text = json.dumps(value, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _table(rows: list[dict[str, object]], best: set[int] | None = None) -> str:
    if not rows:
        return '<p class="note">none</p>'
    head = "".join(f"<th>{esc(k)}</th>" for k in rows[0])
    body = []
    for i, row in enumerate(rows):
        cells = "".join(f'<td class="num">{esc(v)}</td>' if isinstance(v, int) or _numeric(v) else f"<td>{esc(v)}</td>"
                        for v in row.values())
        body.append(f'<tr{" class=best" if best and i in best else ""}>{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _numeric(value: object) -> bool:
    return isinstance(value, str) and value.replace(".", "", 1).replace("-", "", 1).isdigit()


def best_table(best: list[Best], objective: str) -> str:
    """The sweep's best combination per book, as text (the table format)."""
    lines = [f"\nBest combination per book, by {objective}:"]
    lines += [f"  {b.book}: {b.variant} ({objective} {b.score if objective == 'units' else money(b.score)})"
              for b in best[:100]]
    if len(best) > 100:
        lines.append(f"  ... {len(best) - 100} more books")
    return "\n".join(lines) + "\n"


def render(job: Job, result: Result, ranking: list[StrategyTotals], about: dict[str, Any],
           best: list[Best] | None = None) -> str:
    ranked = sorted(ranking, key=lambda t: (t.rank, t.strategy))
    chart_data = []
    for index, chart in sorted(result.charts.items()):
        pair = job.pairs[index]
        window = pair.strategy.rule.window
        chart_data.append({"book": pair.book, "strategy": pair.strategy.name, "tick": chart.tick,
                           "price": [p / 100 for p in chart.price],  # drawn only: money stays exact in the tables
                           "competitor": [s / window / MICRO for s in chart.sums]})
    bits = [f"data {about.get('data')}", f"config {about.get('config') or '(none: --books)'}",
            f"demand {about.get('demand')}" + (f" with the request ids of {about.get('ids')}" if about.get("ids")
                                               else ""),
            f"ticks 0..{result.last_tick}", f"{result.decisions:,} decisions in {result.seconds:.2f} s",
            f"{result.counters.get('rows_read', 0):,} rows read, "
            f"{result.counters.get('bad_rows', 0):,} bad rows skipped",
            f"written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"]
    best_html = ""
    if best is not None:
        rows = [{"book": b.book, "best combination": b.variant, "revenue": money(b.pair.revenue),
                 "margin": money(b.pair.margin), "units": b.pair.units, "decisions": b.pair.decisions} for b in best]
        best_html = (f"<h2>Best combination per book (sweep over {esc(', '.join(about.get('sweep', [])))}), by "
                     f"{esc(about.get('objective'))}</h2><div class=scroll>{_table(rows[:TABLE_PAIRS])}</div>")
    shown = result.pairs[:TABLE_PAIRS]
    pairs_note = (f"{len(result.pairs):,} pairs" + (f"; the first {TABLE_PAIRS:,} shown (--format csv lists all)"
                                                    if len(result.pairs) > TABLE_PAIRS else "")
                  + ". Money in the currency of the file; vs_competitor is our mean price over the competitor's, "
                    "minus one.")
    charts_note = (f"The first {len(chart_data)} pairs: our price against the competitor's average (every "
                   "decision, or every k-th on long runs)." if chart_data else "No chart (a sweep, or no pair).")
    return _PAGE.substitute(
        uplot_css=files.read_text(charts.UPLOT_CSS), style=_STYLE, about=esc(" · ".join(bits)),
        objective=esc(about.get("objective")),
        strategies=_table([strategy_row(t) for t in ranked], {i for i, t in enumerate(ranked) if t.rank == 1}),
        best=best_html, charts_note=esc(charts_note), pairs_note=esc(pairs_note),
        pairs=_table([pair_row(p) for p in shown]), data=script_json({"charts": chart_data}),
        uplot_js=files.read_text(charts.UPLOT_JS), script=_SCRIPT)


def write(path: Path, job: Job, result: Result, ranking: list[StrategyTotals], about: dict[str, Any],
          best: list[Best] | None = None) -> None:
    """Write the report whole or not at all (a reader, e.g. the Dashboard, never sees half a file)."""
    text = render(job, result, ranking, about, best)
    fd, temporary = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
