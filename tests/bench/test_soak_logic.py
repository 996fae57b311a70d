"""The soak's judgement, pure parts (:mod:`bench.soak`): the rule re-computed from the feed's rows, the
ticks judged, stdout against a Ledger, the feed's rotation, memory and gauges. Milliseconds each; the
soak itself runs in tests/test_soak.py."""

from __future__ import annotations

import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from actors.pricing.config import Config as PricingConfig
from actors.pricing.config import load_config
from bench.common import Config
from bench.soak import Plan, diagnose, procs, stalls, tally
from bench.soak.agree import PrintedStore
from bench.soak.feed import HEADER, Feed, History
from bench.soak.measure import plan_for
from bench.soak.prices import Epochs, PriceCheck, Printed, broken_rule, parse, rule
from bench.soak.reloads import VARIANTS, config_text
from bench.soak.report import gauges

WINDOW = ("10.00", "11.00", "12.00", "13.00", "14.05")  # mean 12.01


def line(*, book: str = "B1", tick: int = 1, prices: tuple[str, ...] = WINDOW, avg: str = "12.01",
         request_id: int = 2, sold: bool = True, price: str = "13.21", rule_price: str | None = None,
         guardrail: tuple[str, ...] | None = None) -> bytes:
    return orjson.dumps({"book": book, "strategy": "default", "tick": tick, "ts": "2026-12-04T12:00:00.000+00:00",
                         "prices": list(prices), "avg_comp_price": avg, "request_id": request_id, "sold": sold,
                         "price": price, "rule_price": rule_price,
                         "guardrail": None if guardrail is None else list(guardrail)})


def plain_config() -> PricingConfig:
    return PricingConfig.simple(["B1"])  # the rule alone, no guardrails


def guarded_config(tmp_path: Path) -> PricingConfig:
    (tmp_path / "books.txt").write_text("B1\n", encoding="utf-8")
    path = tmp_path / "repricer.toml"
    path.write_text(config_text(VARIANTS[0], 0.1, "books.txt"), encoding="utf-8")  # ending .99, step 10%
    return load_config(path)


def test_rule_is_the_mean_times_the_factor_rounded_half_up() -> None:
    prices = tuple(Decimal(p) for p in WINDOW)
    assert rule(prices, True) == (Decimal("12.01"), Decimal("13.21"))  # 13.211
    assert rule(prices, False) == (Decimal("12.01"), Decimal("10.81"))  # 10.809
    # 12.005 * 0.9 = 10.8045 -> 10.80; 12.025 * 1.1 = 13.2275 -> 13.23 (half-up)
    assert rule(tuple(Decimal(p) for p in ("12.00", "12.01", "12.00", "12.01", "12.005")), False)[1] == Decimal("10.80")
    assert rule((Decimal("12.025"),), True)[1] == Decimal("13.23")


def test_a_decision_is_checked_field_by_field() -> None:
    config = plain_config()
    assert broken_rule(parse(line()), config, None) is None
    assert "price" in (broken_rule(parse(line(price="13.22")), config, None) or "")
    assert "mean" in (broken_rule(parse(line(avg="12.02")), config, None) or "")
    assert "is odd" in (broken_rule(parse(line(request_id=3)), config, None) or "")  # sold with an odd id
    assert broken_rule(parse(line(request_id=3, sold=False, price="10.81")), config, None) is None
    assert "decimals" in (broken_rule(parse(line(prices=WINDOW[:4])), config, None) or "")


def test_the_window_must_be_rows_the_feed_wrote() -> None:
    history = History(["B1"], depth=8)
    history.add([("B1", p) for p in ("9.00", *WINDOW)][:1])
    for price in WINDOW:
        history.add([("B1", price)])
    decision = parse(line())
    assert broken_rule(decision, plain_config(), None, history.holds) is None
    assert history.holds("B1", WINDOW[1:]) and history.holds("B1", ("9.00", *WINDOW[:4]))
    assert not history.holds("B1", tuple(reversed(WINDOW))) and not history.holds("B2", WINDOW)
    for _ in range(4):  # the window scrolls out of the bounded history
        history.add([("B1", "20.00")])
    assert "feed wrote" in (broken_rule(decision, plain_config(), None, history.holds) or "")


def test_guardrails_of_the_config_in_force(tmp_path: Path) -> None:
    config = guarded_config(tmp_path)
    # First decision: no step limit; the rule's 13.21 ends in .99 -> 12.99 (nearest), reported as moved.
    good = parse(line(price="12.99", rule_price="13.21", guardrail=("ending",)))
    assert broken_rule(good, config, None) is None
    assert broken_rule(good, plain_config(), None) is not None  # what a reload is seen by
    assert broken_rule(parse(line(price="13.21", rule_price="13.21", guardrail=())), config, None) is not None
    # A price check follows each pair's previous price: 10% of 11.00 caps the next at 12.10 (-> 11.99).
    check = PriceCheck(Epochs(config))
    check.observe(parse(line(tick=1, request_id=3, sold=False, price="10.99", rule_price="10.81",
                             guardrail=("ending",))))
    check.observe(parse(line(tick=2, price="11.99", rule_price="13.21", guardrail=("step", "ending"))))
    assert (check.checked, check.broken, check.out_of_order) == (2, 0, 0), check.examples
    check.observe(parse(line(tick=2, price="11.99", rule_price="13.21", guardrail=("step", "ending"))))
    assert check.out_of_order == 1


def test_judged_ticks_start_at_the_first_full_one_and_count_short_ones() -> None:
    counts = {3: 2, 4: 5, 5: 5, 6: 4, 7: 6, 8: 5, 9: 1}
    judged = tally.span(counts, expected=5, grace_ticks=3, last=8)
    assert (judged.first, judged.last, judged.start_ticks) == (4, 8, 1)
    short = tally.shortfall(counts, 5, judged)
    assert (short.ticks, short.decisions, short.extra, short.shown) == (2, 1, 1, {6: 4, 7: 6})
    # A start that never completes a tick within its grace is judged from the grace's end.
    assert tally.span({3: 1, 4: 1, 5: 1, 6: 5}, 5, 2, 6).first == 5
    assert tally.last_judged(t0=100.0, interval=1.0, stop_at=110.5) == 9  # tick 9 was due at 109: a whole tick ago


def test_stdout_against_the_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(ledger) as conn:
        conn.execute("CREATE TABLE decisions (book TEXT, strategy TEXT, run REAL, tick INTEGER, price TEXT)")
        conn.executemany("INSERT INTO decisions VALUES (?, 'default', 7.5, ?, ?)",
                         [("B1", 1, "13.21"), ("B1", 2, "10.00"), ("B2", 1, "1.00")])
    store = PrintedStore(tmp_path / "printed.sqlite3")
    for decision in (line(tick=1), line(tick=2), line(tick=3), line(tick=1)):
        store.add(parse(decision))
    agreement = store.compare(ledger)
    store.close()
    assert store.repeated == 1 and agreement.run == 7.5 and (agreement.printed, agreement.kept) == (3, 3)
    assert not agreement.equal
    assert (agreement.printed_only.count, agreement.ledger_only.count, agreement.other_price.count) == (1, 1, 1)
    assert agreement.other_price.examples == ["B1 default tick 2 printed 13.21 kept 10.00"]
    assert agreement.kept_per_tick == {1: 2, 2: 1}


def test_the_feed_rotates_keeping_every_books_window(tmp_path: Path) -> None:
    books = [f"B{i}" for i in range(20)]
    feed = Feed(tmp_path / "prices.csv", books, interval=1.0, keep=5, max_bytes=4096)
    feed.prime()
    while feed.counters.rotations == 0:
        feed.append()
    feed.stop()
    lines = (tmp_path / "prices.csv").read_text(encoding="ascii").splitlines(keepends=True)
    assert lines[0] == HEADER and len(lines) == 1 + 5 * len(books)
    for book in books:
        prices = tuple(row.split(",")[2].strip() for row in lines[1:] if row.split(",")[1] == book)
        assert len(prices) == 5 and feed.history.holds(book, prices)
    assert feed.counters.rows == len(books) * (5 + feed.counters.appends)


def sample(at: float, rss: dict[str, int], pids: dict[str, int] | None = None,
           counters: dict[str, dict[str, int]] | None = None) -> procs.Sample:
    return procs.Sample(at, int(at) * 10, {name: procs.Reading((pids or {}).get(name, 1), kib, int(at) * 1000)
                                           for name, kib in rss.items()}, counters or {})


def test_memory_is_judged_from_the_middle_to_the_end() -> None:
    samples = procs.Samples()
    for at, ledger in ((0, 1000), (5, 1500), (10, 1520)):  # a cache filling, then level
        samples.add(sample(at, {"ledger": ledger, "algorithm": 1000 + 100 * at}))
    three = samples.three(0)
    assert three is not None
    report, grew = procs.memory(three, max_growth=5.0)
    assert grew == ["algorithm", "total"]  # +66% over the second half; the ledger +1.3%
    processes = report["processes"]
    assert isinstance(processes, dict) and processes["ledger"]["growth_middle_to_end_pct"] == 1.33
    restarted = procs.memory((sample(0, {"a": 1}), sample(1, {"a": 1}), sample(2, {"a": 1}, {"a": 2})), 5.0)[1]
    assert restarted == ["a"]
    assert samples.three(11) is None


@pytest.mark.parametrize(("first", "second", "growing"), [((5, 90, 3), (200, 2, 4), False),  # swings with the tick
                                                         ((7, 7, 7), (7, 7, 7), False),  # level
                                                         ((10, 20, 30), (31, 50, 60), True)])  # a leak
def test_a_gauge_must_level_off(first: tuple[int, ...], second: tuple[int, ...], growing: bool) -> None:
    samples = [sample(i, {}, counters={"algorithm": {"in_flight": v, "decisions": 10 ** i}})
               for i, v in enumerate((*first, *second))]
    peaks, rising = gauges(samples)
    # [first half's max, second half's min and max]; counters that only count are not gauges
    assert peaks == {"algorithm.in_flight": [max(first), min(second), max(second)]}
    assert rising == (["algorithm.in_flight"] if growing else [])


def test_bad_lines_say_why() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse(b"price 12\n")
    with pytest.raises(ValueError, match="tick"):
        parse(orjson.dumps({"book": "B1", "tick": "1"}))
    assert isinstance(parse(line()), Printed)


def test_bench_run_soak_for_7200_seconds_is_the_release_soak() -> None:
    assert plan_for(Config(seconds=7200.0)) == Plan()  # python -m bench.run --only soak --seconds 7200
    quick = plan_for(Config(quick=True))
    assert (quick.books, quick.seconds, quick.reload_every) == (100, 60.0, 12.0)


def test_a_stall_of_the_machine_excuses_the_ticks_it_spans_and_the_next() -> None:
    assert stalls.gap(100.0, 5.0, 100.05, 5.05, 0.05, 1.0) is None  # a look on time
    assert stalls.gap(100.0, 5.0, 100.9, 5.9, 0.05, 1.0) is None  # late, but less than a tick
    held = stalls.gap(100.0, 5.0, 118.6, 5.06, 0.05, 1.0)  # the wall clock stepped at resume
    assert held == stalls.Stall(100.0, 118.6)
    assert stalls.gap(100.0, 5.0, 100.06, 23.0, 0.05, 1.0) == stalls.Stall(100.0, 118.0)  # the monotonic one
    # Ticks of a run with t0 = 0 and 1 s ticks: due at 101..118 during it, 119 the catch-up after it.
    assert stalls.excused_ticks([held], 0.0, 1.0, 0, 1000) == set(range(101, 120))
    assert stalls.excused_ticks([held], 0.0, 1.0, 110, 112) == {110, 111, 112}  # only judged ticks
    # A short tick during it is not judged; one outside it still is.
    counts = {t: 5 for t in range(95, 125)} | {t: 0 for t in range(101, 119)} | {119: 4, 122: 3}
    judged = tally.Span(95, 124, 0)
    short = tally.shortfall(counts, 5, judged, stalls.excused_ticks([held], 0.0, 1.0, 95, 124))
    assert (short.ticks, short.decisions, short.shown) == (1, 2, {122: 3})


def test_the_stall_watch_keeps_a_bounded_list_and_reports_it() -> None:
    watch = stalls.StallWatch()
    for i in range(stalls.KEPT + 5):
        watch.note(stalls.Stall(float(i), i + 1.5))
    report = watch.report()
    assert (report["count"], report["longest_s"]) == (stalls.KEPT + 5, 1.5) and len(watch.stalls) == stalls.KEPT


def test_the_stall_watch_tells_a_stall_from_a_hiccup_and_a_look_on_time() -> None:
    # Its own clocks, one (wall, monotonic) reading a look: on time, a 0.5 s gap (a hiccup), on time,
    # a 2 s gap (a stall), on time; then the watch is stopped.
    looks = [(100.0, 5.0), (100.05, 5.05), (100.55, 5.55), (100.6, 5.6), (102.6, 7.6), (102.65, 7.65)]
    readings = iter(looks)
    done = threading.Event()
    current: list[tuple[float, float]] = []

    def wall() -> float:
        try:
            current[:] = [next(readings)]
        except StopIteration:
            done.set()
            watch._stop.set()  # the last look ends the watch, whatever the thread's timing
        return current[0][0]

    # A 1 ms step: the thread's real waits are short, and the gaps it judges are the clocks' own.
    watch = stalls.StallWatch(clock=wall, monotonic=lambda: current[0][1], step=0.001)
    watch.start()
    assert done.wait(5)
    watch.stop()
    assert watch.stalls == [stalls.Stall(100.6, 102.6)]
    assert [(start, round(seconds, 2)) for start, seconds in watch.hiccups] == [(100.05, 0.5)]


def test_a_short_tick_is_shown_with_the_algorithms_lines_the_load_and_the_hiccups_around_it(tmp_path: Path) -> None:
    lines = diagnose.TickLines()
    for tick in range(100):
        lines.add(f"2026 algorithm[1] WARNING tick {tick}: 5 pair(s) still busy with an earlier tick, 0 never started")
    lines.add("2026 algorithm[1] WARNING the Ledger is behind")  # names no tick: not kept
    assert lines.around(50) == [line for n, line in lines.lines if 47 <= n <= 53] and len(lines.around(50)) == 7
    for n in range(diagnose.LINES_KEPT + 10):
        lines.add(f"x WARNING tick {1000 + n}: y")
    assert len(lines.lines) == diagnose.LINES_KEPT and lines.around(50) == []  # bounded: the oldest went

    log = diagnose.PressureLog()
    for second in range(20):
        log.add(diagnose.pressure(1000.0 + second, 1.0, (0, 0), (900_000 if second == 10 else 1000, 2000)))
    assert log.around(1010.0, 1) == [diagnose.Pressure(1009.0, 0.001, 0.002), diagnose.Pressure(1010.0, 0.9, 0.002),
                                     diagnose.Pressure(1011.0, 0.001, 0.002)]
    report = log.report()
    assert (report["cpu_max"], report["seconds_cpu_over_half"], report["io_max"]) == (0.9, 1, 0.002)
    assert diagnose.pressure(0.0, 0.5, (0, 0), (10_000_000, 0)).cpu == 1.0  # never more than the whole second

    explained = diagnose.short_ticks_explained([10, 99], 1000.0, 1.0, lines, log, [(1009.5, 0.4), (1030.0, 0.3)])
    assert explained[0]["tick"] == 10 and explained[0]["algorithm_lines"] == []
    assert [1011.0 - 1010.0, 0.001, 0.002] in explained[0]["pressure_cpu_io"]  # type: ignore[operator]
    assert explained[0]["hiccups_s"] == [[-0.5, 0.4]]  # the one 20 s later is not beside it
    assert "pressure_cpu_io" not in diagnose.short_ticks_explained([10], None, 1.0, lines, log, [])[0]


def test_pressure_is_read_from_the_kernels_files_or_not_at_all(tmp_path: Path) -> None:
    (tmp_path / "cpu").write_text("some avg10=0.00 avg60=0.37 avg300=8.97 total=22191142577\n"
                                  "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", encoding="ascii")
    (tmp_path / "io").write_text("some avg10=0.00 avg60=0.13 avg300=0.38 total=1080645005\n", encoding="ascii")
    assert diagnose.read_pressure(tmp_path) == (22191142577, 1080645005)
    (tmp_path / "io").write_text("garbage\n", encoding="ascii")
    assert diagnose.read_pressure(tmp_path) is None
    assert diagnose.read_pressure(tmp_path / "missing") is None


def test_the_stall_watch_tells_hiccups_from_stalls() -> None:
    watch = stalls.StallWatch()
    for i in range(stalls.KEPT + 3):
        watch.note_hiccup(stalls.Stall(float(i), i + 0.3))
    report = watch.report()
    assert (report["hiccups"], report["longest_hiccup_s"], report["count"]) == (stalls.KEPT + 3, 0.3, 0)
