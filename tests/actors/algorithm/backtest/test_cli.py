"""The backtest's command line: what the launcher refuses it refuses, in the same words; its outputs
(table, csv, json, every decision, the HTML report) say the same thing; sweeps find the best
combination per book, in parallel processes as in one."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from actors.algorithm.backtest import cli
from repricer_supervisor import launcher
from tests.actors.algorithm.backtest.helpers import price_file
from tests.helpers import python


def refused(parse: object, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        parse(argv)  # type: ignore[operator]
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "noprice.csv").write_text("timestamp,book_id,cost\nt,B001,1\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "blank.csv").write_text("\n\n  \n")
    (tmp_path / "quotes.csv").write_bytes(b'"price,book_id\n')
    (tmp_path / "semicolons.csv").write_text("timestamp;book_id;price\nt;B001;18.02\n")  # issue 21
    (tmp_path / "commas.csv").write_text("timestamp,book_id,price\nt,B001,18,02\n")
    (tmp_path / "others.csv").write_text("timestamp,book_id,price\nt,X1,18.02\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "slow.toml").write_text('[strategies.slow]\ndelay = 7\n[[books]]\nids = ["B001"]\n')
    (tmp_path / "bad.toml").write_text('[strategies.fast]\nwindow = 0\n')
    (tmp_path / "demand.toml").write_text('[[books]]\nids = ["B001"]\n[backtest]\ndemand = "crystal-ball"\n')
    (tmp_path / "garbage.toml").write_bytes(b"\xff\xfe[[[")
    return tmp_path


SAME = [
    ["--data-file", "/nonexistent.csv"], ["--data-file", "/tmp"], ["--data-file", "{tmp}/noprice.csv"],
    ["--data-file", "{tmp}/empty.csv"], ["--data-file", "{tmp}/blank.csv"], ["--data-file", "{tmp}/quotes.csv"],
    ["--data-file", "{tmp}/semicolons.csv"], ["--data-file", "{tmp}/commas.csv"], ["--data-file", "{tmp}/others.csv"],
    ["--config", "{tmp}/slow.toml"],
    ["--config", "{tmp}/slow.toml", "--tick", "2"], ["--config", "{tmp}/bad.toml"], ["--config", "{tmp}/demand.toml"],
    ["--config", "{tmp}/garbage.toml"], ["--config", "/nonexistent.toml"], ["--books", ","],
    ["--books-file", "{tmp}/empty.txt"], ["--books-file", "/nonexistent"], ["--delay", "10", "--tick", "2"],
    ["--delay", "abc"], ["--tick", "0"], ["--tick", "1e9"], ["--config", "{tmp}/slow.toml", "--books-file", "/x"],
]


@pytest.mark.parametrize("argv", SAME, ids=[" ".join(a) for a in SAME])
def test_bad_input_is_refused_as_the_launcher_refuses_it(argv: list[str], files: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.replace("{tmp}", str(files)) for a in argv]
    assert refused(cli.parse_args, args, capsys) == refused(launcher.parse_args, args, capsys)


def test_a_config_with_a_bad_backtest_table_names_line_and_key(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(cli.parse_args, ["--config", str(files / "demand.toml")], capsys)
    assert line == f"error: {files}/demand.toml:4: backtest.demand: unknown demand model 'crystal-ball' " \
                   "(known: parity, logistic)\n"


@pytest.mark.parametrize(("argv", "message"), [
    (["--ticks", "0"], "--ticks must be within 1.."),
    (["--ids", "/nonexistent.csv"], "--ids /nonexistent.csv: cannot read"),
    (["--ids-run", "5"], "--ids-run goes with --ids"),
    (["--ids", "x.csv", "--ticks", "5"], "--ticks goes without --ids"),
    (["--sweep", "colour=1..2"], "expected NAME=FROM..TO:STEP"),
    (["--sweep", "sold_factor=1.5..3:0.5"], "sold_factor 2.5 is not within 0.5..2"),
    (["--sweep", "window=0,5"], "window 0 is not an integer 1..64"),
    (["--sweep-strategy", "x"], "--sweep-strategy goes with --sweep"),
    (["--format", "xml"], "argument --format: invalid choice"),
])
def test_its_own_options_are_checked_too(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert message in refused(cli.parse_args, argv, capsys)


def test_end_to_end_a_typo_in_the_data_path_is_the_launchers_error() -> None:
    done = python("-m", "actors.algorithm.backtest", "--data-file", "/nonexistent.csv")
    assert (done.returncode, done.stderr, done.stdout) == (2, "error: --data-file /nonexistent.csv: no such file\n", "")
    old = python("-m", "actors.algorithm.backtest", "--data", "/nonexistent.csv")  # the old name, as the launcher's
    launcher_old = python("launcher.py", "--data", "/nonexistent.csv")
    assert (old.returncode, old.stderr) == (launcher_old.returncode, launcher_old.stderr)
    assert old.stderr.startswith("warning: --data is deprecated")


@pytest.fixture
def market(tmp_path: Path) -> tuple[Path, Path]:
    books = [f"B{i}" for i in range(6)]
    data = price_file(tmp_path / "prices.csv", books, 120, 5, bad_every=50)
    (tmp_path / "catalog.csv").write_text("book_id,floor,ceiling,cost\nB0,,,9.50\nB1,,,oops\nB2,12.00,,11\n")
    config = tmp_path / "repricer.toml"
    config.write_text(f'[strategies.a]\n[strategies.b]\nsold_factor = "1.2"\nunsold_factor = "0.95"\n'
                      f'[[books]]\nids = {books!r}\nstrategies = ["a", "b"]\n'.replace("'", '"')
                      + '[guardrails]\nmax_step_pct = 4\ncatalog = "catalog.csv"\n'
                      '[backtest]\ndemand = "logistic"\nunit_cost = "8"\n[backtest.logistic]\nseed = 7\n')
    return data, config


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    assert cli.main(argv) == 0
    out = capsys.readouterr()
    return out.out, out.err


def test_the_formats_say_the_same(market: tuple[Path, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    data, config = market
    base = ["--data-file", str(data), "--config", str(config), "--no-html"]
    document = json.loads(run_cli([*base, "--format", "json"], capsys)[0])
    rows = list(csv.DictReader(io.StringIO(run_cli([*base, "--format", "csv"], capsys)[0])))
    table, err = run_cli(base, capsys)
    pairs = [r for r in rows if r["scope"] == "pair"]
    assert [(p["book"], p["strategy"], p["revenue"], p["margin"]) for p in pairs] == \
        [(p["book"], p["strategy"], p["revenue"], p["margin"]) for p in document["pairs"]]
    assert len(pairs) == 12 and document["demand"] == "logistic"
    by_book = {(p["book"], p["strategy"]): p for p in document["pairs"]}
    assert by_book[("B0", "a")]["unit_cost"] == "9.50" and by_book[("B2", "a")]["unit_cost"] == "11.00"
    assert by_book[("B1", "a")]["unit_cost"] == "8.00"  # a bad cost cell: the default, and a warning
    assert "catalog.csv line 3: cost oops: not a decimal" in err and "bad row(s) skipped" in err
    strategies = {s["strategy"]: s for s in document["strategies"]}
    assert {s["rank"] for s in strategies.values()} == {1, 2}
    best = min(strategies.values(), key=lambda s: s["rank"])
    assert f"1     {best['strategy']}" in table and best["revenue"] in table
    assert document["file"]["rows_read"] >= 720 and document["file"]["bad_rows"] > 0  # odd lines: some are valid


def test_every_decision_to_a_file(market: tuple[Path, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    data, config = market
    out = tmp_path / "decisions.csv"
    document = json.loads(run_cli(["--data-file", str(data), "--config", str(config), "--no-html", "--format", "json",
                                   "--decisions", str(out)], capsys)[0])
    lines = list(csv.DictReader(out.open()))
    assert len(lines) == sum(p["decisions"] for p in document["pairs"])
    first = lines[0]
    assert set(first) == {"book", "strategy", "tick", "request_id", "sold", "sent", "avg_comp_price", "rule_price",
                          "price", "guardrail"}
    assert first["request_id"] == "" and first["sold"] in ("true", "false")  # logistic: no request id
    revenue = sum(float(x["sent"]) for x in lines if x["sold"] == "true" and x["book"] == "B3" and x["strategy"] == "a")
    pair = next(p for p in document["pairs"] if (p["book"], p["strategy"]) == ("B3", "a"))
    assert round(revenue, 2) == float(pair["revenue"])


def test_a_sweep_in_parallel_finds_what_one_process_finds(market: tuple[Path, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    data, config = market
    base = ["--data-file", str(data), "--config", str(config), "--format", "json", "--sweep-strategy", "b",
            "--sweep", "sold_factor=1.00..1.30:0.10", "--sweep", "window=2,5", "--html", str(tmp_path / "r.html")]
    one = json.loads(run_cli([*base, "--jobs", "1"], capsys)[0])
    two = json.loads(run_cli([*base, "--jobs", "2"], capsys)[0])
    assert one["pairs"] == two["pairs"] and one["strategies"] == two["strategies"]
    assert len(one["strategies"]) == 8 and len(one["pairs"]) == 8 * 6
    names = {s["strategy"] for s in one["strategies"]}
    assert "b[sold_factor=1.1 window=5]" in names
    table, _ = run_cli([a for a in base[:-2] if a not in ("--format", "json")] + ["--no-html"], capsys)
    assert "Best combination per book, by revenue:" in table
    for book in ("B0", "B5"):
        mine = [p for p in one["pairs"] if p["book"] == book]
        winner = max(mine, key=lambda p: float(p["revenue"]))
        assert f"  {book}: {winner['strategy']} (revenue {winner['revenue']})" in table
    assert "Best combination per book" in (tmp_path / "r.html").read_text()
