"""A soak judged: what it saw, as one JSON-able summary with the list of what failed, and one screen
of text for the operator. Pure: no I/O (the caller prints and writes).

It fails on: an unplanned exit, restart or hang; an exception that reached an event loop; a judged
tick without exactly one decision per book (on stdout or in the Ledger; a plan may accept those the
Algorithm counted as missed, for a short run on a loaded machine); a printed decision that is
not the rule's; stdout not equal to the Ledger; a reload asked for and not taken, refused, or not
seen in the prices; a process (or the sum) whose RSS grew more than the plan allows from the middle
of the warm run to its end; a gauge (a queue's or a map's size) that never came back down, over the
second half of the run, to its highest value in the first; a feed error; a live Dashboard look that
was stale, reloaded or failed, or a poll of it not answered; or the launcher not stopping cleanly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from bench.soak import diagnose, procs, tally
from bench.soak.run import Observed, last_judged, plan_dict
from bench.soak.stalls import excused_ticks

# In-memory sizes the actors report among their counters: each must level off, never keep growing.
GAUGES: Final = ("queued", "in_flight", "ledger_outbox", "waiting", "cursors", "live_clients", "pairs_active",
                 "books")


def gauges(samples: Sequence[procs.Sample]) -> tuple[dict[str, list[int]], list[str]]:
    """Each gauge's highest value over the first half of ``samples`` and its lowest and highest over
    the second ("actor.name": [first max, second min, second max]), and those still growing: whose
    lowest value in the second half is above anything seen in the first. A gauge that swings with the
    tick (pairs in flight) comes back down; one that leaks never returns to where it was."""
    half = len(samples) // 2
    values: dict[str, tuple[list[int], list[int]]] = {}  # bounded: samples x gauges
    for index, sample in enumerate(samples):
        for actor, counters in sample.counters.items():
            for name in GAUGES:
                if name in counters:
                    values.setdefault(f"{actor}.{name}", ([], []))[index >= half].append(counters[name])
    seen = {key: [max(first), min(second), max(second)] for key, (first, second) in values.items() if first and second}
    growing = [key for key, (first_max, second_min, _) in sorted(seen.items()) if second_min > first_max]
    return seen, growing


def judge(observed: Observed) -> dict[str, object]:
    """The summary of a soak, with ``failures`` (empty: passed) and ``ok``."""
    plan = observed.plan
    failures: list[str] = []
    supervision, printed, prices = observed.supervision, observed.printed, observed.printed.prices
    restarts, hangs = supervision.restarts()
    if supervision.unplanned_count or restarts or hangs:
        failures.append(f"unplanned exits {supervision.unplanned_count}, restarts {restarts}, hangs {hangs}")
    log = observed.log.report()
    if observed.log.loop_exceptions:
        failures.append(f"{observed.log.loop_exceptions} loop exception line(s) on stderr")
    if observed.exit_code != 0:
        failures.append(f"the launcher stopped with exit code {observed.exit_code}")

    # Decisions per tick: every book, every judged tick, on stdout and in the Ledger alike.
    expected = plan.books
    last = last_judged(observed)
    judged = tally.span(printed.per_tick, expected, math.ceil(plan.grace / plan.tick), last)
    run_t0 = observed.agreement.run if observed.agreement is not None else None
    excused = (excused_ticks(observed.stalls.stalls, run_t0, plan.tick, judged.first, judged.last)
               if run_t0 is not None else set())
    short = tally.shortfall(printed.per_tick, expected, judged, excused)
    if judged.ticks == 0:
        failures.append("no tick was judged")
    algorithm = supervision.counters("algorithm")
    counted = algorithm.get("missed", 0) + algorithm.get("skipped", 0)
    # Short ticks accepted (only if the plan says so) when the Algorithm counted at least as many
    # decisions missed or skipped as are missing, and no tick holds a decision too many.
    accepted = plan.accept_counted_misses and short.extra == 0 and short.decisions <= counted
    if short.ticks and not accepted:
        failures.append(f"{short.ticks} judged tick(s) without exactly {expected} decisions on stdout")
    if printed.bad_lines:
        failures.append(f"{printed.bad_lines} stdout line(s) that are not decisions")
    if prices.broken or prices.out_of_order:
        failures.append(f"{prices.broken} decision(s) not the rule's, {prices.out_of_order} out of order")
    if prices.checked != printed.lines:
        failures.append(f"{printed.lines - prices.checked} decision(s) not checked against the rule")

    agreement = observed.agreement
    ledger: dict[str, object]
    if agreement is None:
        failures.append(f"the Ledger could not be compared: {observed.agreement_error}")
        ledger = {"error": observed.agreement_error}
    else:
        ledger = {"equal": agreement.equal, **agreement.report()}
        kept_short = tally.shortfall(agreement.kept_per_tick, expected, judged, excused)
        ledger["short_ticks"] = kept_short.report()
        if not agreement.equal:
            failures.append("stdout and the Ledger differ")
        if kept_short.ticks and not (accepted and kept_short.report() == short.report()):
            failures.append(f"{kept_short.ticks} judged tick(s) without exactly {expected} decisions in the Ledger")
    if printed.store.repeated:
        failures.append(f"{printed.store.repeated} decision(s) printed twice")

    reloads = observed.reloads.report()
    if reloads["taken"] != reloads["asked"] or reloads["refused"]:
        failures.append(f"reloads asked {reloads['asked']}, taken {reloads['taken']}, refused {reloads['refused']}")
    unseen = [index for index, telling in enumerate(observed.reloads.telling(), start=1) if not telling]
    if unseen:
        failures.append(f"reload(s) {unseen} not seen in the prices (no decision the previous config would refuse)")

    feed = observed.feed.counters.report()
    if observed.feed.counters.errors:
        failures.append(f"the feed failed to write {observed.feed.counters.errors} time(s)")

    # Memory and CPU, once warm (after the start's grace).
    warm_from = (observed.stop_at - observed.seconds) + plan.grace
    three = observed.samples.three(warm_from)
    memory: dict[str, object] | None = None
    cpu: dict[str, object] | None = None
    if three is None:
        failures.append("fewer than 3 memory samples once warm")
    else:
        memory, grew = procs.memory(three, plan.max_growth_pct)
        if grew:
            failures.append(f"RSS grew more than {plan.max_growth_pct}% from the middle to the end, or a process "
                            f"restarted: {', '.join(grew)}")
        cpu = procs.cpu_per_decision(three[0], three[2])
    warm = [s for s in observed.samples.samples if s.at >= warm_from]
    peaks, rising = gauges(warm)
    if rising:
        failures.append(f"gauges still growing in the second half: {', '.join(rising)}")

    looks = observed.looks
    if plan.browser:
        if looks is None:
            failures.append("the live browser client never ran")
        else:
            bad = {key: looks.get(key) for key in ("stale", "reloaded", "errors") if looks.get(key)}
            if bad or not looks.get("looks"):
                failures.append(f"live Dashboard looks: {looks.get('looks')} made, not live: {bad}")

    polls = observed.polls
    asked, failed = (polls.get("asked"), polls.get("failed")) if polls is not None else (None, None)
    if plan.dashboard and (not asked or failed):
        failures.append(f"Dashboard polls: {asked} asked, {failed} failed")

    return {
        "ok": not failures,
        "failures": failures,
        "plan": plan_dict(plan),
        "seconds": round(observed.seconds, 1),
        "exit_code": observed.exit_code,
        "restarts": {"unplanned_events": supervision.unplanned_count, "restarts": restarts, "hangs": hangs,
                     "examples": list(supervision.unplanned)},
        "stderr": log,
        "decisions": {"printed": printed.lines, "bad_lines": printed.bad_lines, "bad_examples": printed.bad_examples,
                      "expected_per_tick": expected, "judged_ticks": [judged.first, judged.last],
                      "ticks_judged": judged.ticks - len(excused), "start_ticks_not_judged": judged.start_ticks,
                      "stall_ticks_not_judged": len(excused),
                      "short": short.report(), "short_accepted_as_counted": bool(short.ticks) and accepted,
                      "repeated": printed.store.repeated,
                      "algorithm_missed": algorithm.get("missed", 0), "algorithm_skipped": algorithm.get("skipped", 0),
                      "algorithm_overruns": algorithm.get("overruns", 0),
                      "algorithm_counters": {name: algorithm.get(name, 0) for name in diagnose.ALGORITHM_COUNTERS},
                      # why a tick was short: the Algorithm's lines, the machine's pressure, the watcher's hiccups
                      "short_explained": diagnose.short_ticks_explained(
                          sorted(short.shown), run_t0, plan.tick, observed.log.tick_lines,
                          observed.stalls.pressure, observed.stalls.hiccups)},
        "prices": {"checked": prices.checked, "broken": prices.broken, "out_of_order": prices.out_of_order,
                   "examples": list(prices.examples)},
        "ledger": ledger,
        "reloads": reloads,
        "feed": feed,
        "memory": memory,
        "cpu": cpu,
        "gauges": {"first_max_second_min_max": peaks, "growing": rising},
        "live_dashboard": looks,
        "dashboard_polls": polls,
        "machine_stalls": observed.stalls.report(),
        "log_tail": observed.log_tail.splitlines()[-15:] if failures else [],
    }


def _get(summary: dict[str, object], *path: str) -> object:
    value: object = summary
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def screen(summary: dict[str, object]) -> str:
    """One screen of text: the verdict, then one line per check."""
    def g(*path: str) -> object:
        return _get(summary, *path)

    plan = g("plan")
    assert isinstance(plan, dict)
    memory = g("memory", "processes")
    rss = "n/a"
    if isinstance(memory, dict):
        total = memory.get("total", {})
        worst = max(((name, p.get("growth_middle_to_end_pct", math.inf)) for name, p in memory.items()
                     if name != "total" and isinstance(p, dict)), key=lambda item: item[1], default=("-", 0.0))
        rss = (f"total {total.get('start_mib')} / {total.get('middle_mib')} / {total.get('end_mib')} MiB "
               f"(start / middle / end), middle->end {total.get('growth_middle_to_end_pct')}%; "
               f"worst process {worst[0]} {worst[1]}%")
    judged = g("decisions", "judged_ticks")
    lines = [
        f"soak {'PASSED' if summary['ok'] else 'FAILED'}: {plan['books']} books, tick {plan['tick']} s, "
        f"delay {plan['delay']} s, {g('seconds')} s from the first decision",
        f"  restarts       {g('restarts', 'restarts')} (unplanned events {g('restarts', 'unplanned_events')}, "
        f"hangs {g('restarts', 'hangs')})",
        f"  loop exceptions {g('stderr', 'loop_exceptions')} (stderr lines {g('stderr', 'lines')})",
        f"  decisions      {g('decisions', 'printed')} printed; {g('decisions', 'ticks_judged')} ticks judged "
        f"({judged}), short {g('decisions', 'short', 'ticks')} on stdout, "
        f"{g('ledger', 'short_ticks', 'ticks')} in the Ledger"
        f"{' (accepted: the Algorithm counted them missed)' if g('decisions', 'short_accepted_as_counted') else ''}",
        f"  stalls         the machine held up {g('machine_stalls', 'count')} time(s), longest "
        f"{g('machine_stalls', 'longest_s')} s: {g('decisions', 'stall_ticks_not_judged')} tick(s) not judged; "
        f"{g('machine_stalls', 'hiccups')} hiccup(s) (longest {g('machine_stalls', 'longest_hiccup_s')} s)",
        f"  load           pressure (share of a second a task waited) CPU max "
        f"{g('machine_stalls', 'pressure', 'cpu_max')} p99 {g('machine_stalls', 'pressure', 'cpu_p99')}, "
        f"disk max {g('machine_stalls', 'pressure', 'io_max')} p99 "
        f"{g('machine_stalls', 'pressure', 'io_p99')}",
        f"  rule           {g('prices', 'checked')} checked (window from the feed, sold flag, mean, x1.1/x0.9, "
        f"guardrails), {g('prices', 'broken')} broken",
        f"  Ledger         equal={g('ledger', 'equal')}: kept {g('ledger', 'kept')}, printed only "
        f"{g('ledger', 'printed_only', 'count')}, kept only {g('ledger', 'ledger_only', 'count')}, other price "
        f"{g('ledger', 'other_price', 'count')}",
        f"  reloads        asked {g('reloads', 'asked')}, taken {g('reloads', 'taken')}, refused "
        f"{g('reloads', 'refused')}; taken after {g('reloads', 'taken_after_s')} s",
        f"  feed           {g('feed', 'rows')} rows, {g('feed', 'rotations')} rotations, {g('feed', 'errors')} errors",
        f"  RSS            {rss}",
        f"  CPU            {g('cpu', 'us_per_decision_total')} us per decision (all processes, warm), "
        f"{g('cpu', 'whole_run_total')} over the whole run",
        f"  gauges         growing: {g('gauges', 'growing') or 'none'}",
        f"  Dashboard      {g('live_dashboard') and g('live_dashboard', 'live')} live looks of "
        f"{g('live_dashboard') and g('live_dashboard', 'looks')}; polls answered {g('dashboard_polls', 'answered')} "
        f"of {g('dashboard_polls', 'asked')} (slowest {g('dashboard_polls', 'slowest_s')} s)",
    ]
    failures = summary["failures"]
    assert isinstance(failures, list)
    lines += [f"  FAILED: {failure}" for failure in failures]
    return "\n".join(lines)
