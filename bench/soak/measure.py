"""The soak as a measurement of ``python -m bench.run`` (``--only soak``; not in the default set: it
takes minutes to hours): the release soak for ``--seconds`` (default 300; quick: 100 books, 60 s),
its verdicts as rows, its whole summary in the raw results."""

from __future__ import annotations

from bench.common import Config, Outcome, Row
from bench.soak.report import judge, screen
from bench.soak.run import Plan, soak

FULL_SECONDS = 300.0
QUICK_SECONDS = 60.0
QUICK_BOOKS = 100


def plan_for(cfg: Config) -> Plan:
    """The release soak for ``cfg.seconds`` (default 300 s); quick: 100 books (default 60 s)."""
    seconds = cfg.seconds or cfg.pick(QUICK_SECONDS, FULL_SECONDS)
    books = cfg.pick(QUICK_BOOKS, Plan().books)
    return Plan(books=books, seconds=seconds, reload_every=min(600.0, seconds / 5))  # at least 4 reloads


def measure(cfg: Config) -> Outcome:
    plan = plan_for(cfg)
    summary = judge(soak(plan))
    out = Outcome(raw=summary)
    print(screen(summary))
    failures = summary["failures"]
    assert isinstance(failures, list)

    def number(*path: str) -> float:
        value: object = summary
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return float(value) if isinstance(value, int | float) else float("nan")

    label = f"{plan.books} books, {summary['seconds']} s"
    for measure, path in (("unplanned restarts and hangs", ("restarts", "restarts")),
                          ("loop exceptions on stderr", ("stderr", "loop_exceptions")),
                          ("judged ticks short of a book (stdout)", ("decisions", "short", "ticks")),
                          ("decisions not the rule's", ("prices", "broken")),
                          ("decisions printed, not in the Ledger", ("ledger", "printed_only", "count"))):
        value = number(*path)
        out.rows.append(Row(f"soak, {label}: {measure}", value, target="0", met=value == 0))
    processes = summary["memory"]["processes"] if isinstance(summary["memory"], dict) else {}
    total = processes.get("total") if isinstance(processes, dict) else None
    if isinstance(total, dict):
        growth = float(total["growth_middle_to_end_pct"])
        out.rows.append(Row(f"soak, {label}: total RSS at the end", float(total["end_mib"]), "MiB",
                            baseline=float(total["middle_mib"]), baseline_label="at the middle",
                            target=f"growth < {plan.max_growth_pct}%", met=not any("RSS" in f for f in failures),
                            note=f"{growth:+.2f}% middle to end"))
    out.rows.append(Row(f"soak, {label}: CPU per decision, all processes, warm", number("cpu", "us_per_decision_total"),
                        "us", note="2 shared cores: noisy"))
    out.rows.append(Row(f"soak, {label}: verdict", 1.0 if summary["ok"] else 0.0, target="1 (passed)",
                        met=not failures, note="; ".join(failures)[:200]))
    return out
