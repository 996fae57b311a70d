import asyncio
import dataclasses
import logging
import os
import threading
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pytest

from actors.pricing.config import Config, ConfigError, load_config, reload
from actors.pricing.config.reload import ConfigReloader, kept_prices, reload_config, signature
from tests.configmap import ConfigMapVolume
from tests.helpers import async_wait_for, run_async

GOOD = '[strategies.a]\n[strategies.b]\n[[books]]\nfile = "books.txt"\nstrategies = ["a", "b"]\n'


def write(folder: Path, text: str, books: str = "B1\nB2\n") -> Path:
    (folder / "books.txt").write_text(books)
    path = folder / "c.toml"
    path.write_text(text)
    return path


def test_reload_returns_the_new_config_or_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert isinstance(reload_config(path), Config)
    path.write_text(GOOD + '[pause]\nbook = ["B1"]\n')
    error = reload_config(path)
    assert isinstance(error, ConfigError) and str(error) == f"{path}:7: pause.book: unknown key (expected one of " \
                                                           "books, strategies)"
    path.write_text(GOOD.replace('[strategies.a]', '[strategies.a]\ndelay = 3'))
    assert "is not shorter than the tick" in str(reload_config(path, tick=2.0))


def test_cancelled_loading_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, "".join(f"B{i}\n" for i in range(10_000)))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ConfigError, match="reading cancelled"):
        load_config(path, cancel=cancel)


def test_last_prices_of_the_pairs_still_configured_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + '[pause]\nbooks = ["B1"]\n', "B1\nB3\n")
    last = {("B1", "a"): Decimal(1), ("B2", "a"): Decimal(2), ("B3", "b"): Decimal(3)}
    assert kept_prices(last, load_config(path)) == {("B1", "a"): Decimal(1), ("B3", "b"): Decimal(3)}


def test_a_request_applies_a_good_config_and_refuses_a_bad_one(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, GOOD)
    applied: list[Config] = []

    async def scenario() -> None:
        reloader = ConfigReloader(path, load_config(path), applied.append)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(reloader.run(stop))
            path.write_text(GOOD + '[pause]\nbooks = ["B2"]\n')
            reloader.request()
            await async_wait_for(lambda: reloader.counters["config_reloads"] == 1)
            assert applied[-1].is_paused("B2", "a") and reloader.config is applied[-1]
            path.write_text(GOOD + '[pause]\nbooks = ["B2"]\n[guardrails]\nfloor = "x"\n')
            reloader.request()
            await async_wait_for(lambda: reloader.counters["config_reload_errors"] == 1)
            assert len(applied) == 1 and reloader.config is applied[-1]  # the old config stays
            stop.set()

    with caplog.at_level(logging.INFO, logger="algorithm.config"):
        run_async(scenario())
    assert f"config reload refused, the running config stays: {path}:9: guardrails.floor: not a decimal" in caplog.text
    assert "0 paused strateg(ies)" in caplog.text and "1 paused book(s)" in caplog.text


def test_polling_reloads_when_any_file_the_config_read_changes(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    applied: list[Config] = []
    looks: list[int] = []  # one entry per look at the files' signatures (a poll, or around a reload)

    def counted_signature(files: Iterable[str]) -> reload.Signature:
        looks.append(1)
        return signature(files)

    monkeypatch.setattr(reload, "signature", counted_signature)

    def touch(file: Path, text: str) -> None:
        file.write_text(text)
        stat = file.stat()
        os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a coarse mtime clock still differs

    async def scenario() -> None:
        reloader = ConfigReloader(path, load_config(path), applied.append, poll=0.1)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(reloader.run(stop))
            touch(tmp_path / "books.txt", "B1\nB2\nB3\n")
            await async_wait_for(lambda: len(applied) == 1)
            assert applied[0].books == ["B1", "B2", "B3"]
            touch(path, "not toml [")
            await async_wait_for(lambda: reloader.counters["config_reload_errors"] == 1)
            seen = len(looks)
            await async_wait_for(lambda: len(looks) >= seen + 3, what="three more polls")
            assert reloader.counters["config_reload_errors"] == 1  # not retried until it changes again
            touch(path, GOOD + '[pause]\nstrategies = ["b"]\n')
            await async_wait_for(lambda: len(applied) == 2)
            assert applied[1].is_paused("B1", "b")
            stop.set()

    run_async(scenario())


def slow_reloads(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[bool]]:
    """Make a reload block until it is cancelled: (set when one started, whether each saw its cancel)."""
    started = threading.Event()
    saw_cancel: list[bool] = []

    def slow_reload(path: Path, *, tick: float | None = None,
                    cancel: threading.Event | None = None) -> Config | ConfigError:
        assert cancel is not None
        started.set()
        saw_cancel.append(cancel.wait(10))
        return ConfigError("cancelled")

    monkeypatch.setattr(reload, "reload_config", slow_reload)
    return started, saw_cancel


def test_stopping_cancels_a_reload_in_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    started, saw_cancel = slow_reloads(monkeypatch)
    applied: list[Config] = []

    async def scenario() -> None:
        reloader = ConfigReloader(path, load_config(path), applied.append)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            task = group.create_task(reloader.run(stop))
            reloader.request()
            await async_wait_for(started.is_set)
            stop.set()
            await asyncio.wait_for(task, 5)

    run_async(scenario())
    assert saw_cancel == [True] and not applied


def test_cancelling_the_reloader_cancels_its_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    started, saw_cancel = slow_reloads(monkeypatch)

    async def scenario() -> None:
        reloader = ConfigReloader(path, load_config(path), lambda config: None)
        task = asyncio.ensure_future(reloader.run(asyncio.Event()))
        reloader.request()
        await async_wait_for(started.is_set)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_async(scenario())
    assert saw_cancel == [True]


def test_a_reload_refuses_a_delay_not_shorter_than_the_tick_in_use(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[strategies.default]\ndelay = 1\n[[books]]\nids = ["A"]\n', encoding="utf-8")
    applied: list[Config] = []
    reloader = ConfigReloader(path, load_config(path), applied.append)
    reloader.know_tick(0.5)
    stop = asyncio.Event()

    async def scenario() -> None:
        task = asyncio.create_task(reloader.run(stop))
        reloader.request()
        await async_wait_for(lambda: reloader.counters["config_reload_errors"] == 1, timeout=5)
        stop.set()
        await task

    run_async(scenario(), timeout=10)
    assert applied == []


def test_a_config_the_algorithm_refuses_is_a_refused_reload(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """apply() may refuse a valid config (the roster's pair limit): counted as an error, logged, and
    the running config stays the reloader's, so the next good file reloads as usual."""
    path = write(tmp_path, GOOD)
    applied: list[Config] = []

    def apply(config: Config) -> str | None:
        if len(config.books) > 2:
            return "too many pairs for this worker"
        applied.append(config)
        return None

    async def scenario() -> None:
        running = load_config(path)
        reloader = ConfigReloader(path, running, apply)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(reloader.run(stop))
            (tmp_path / "books.txt").write_text("B1\nB2\nB3\n")
            reloader.request()
            await async_wait_for(lambda: reloader.counters["config_reload_errors"] == 1)
            assert reloader.counters["config_reloads"] == 0 and reloader.config is running and not applied
            (tmp_path / "books.txt").write_text("B1\nB2\n")
            path.write_text(GOOD + '[pause]\nbooks = ["B2"]\n')
            reloader.request()
            await async_wait_for(lambda: reloader.counters["config_reloads"] == 1)
            assert reloader.config is applied[-1] and applied[-1].is_paused("B2", "a")
            assert reloader.counters["config_reload_errors"] == 1
            stop.set()

    with caplog.at_level(logging.INFO, logger="algorithm.config"):
        run_async(scenario())
    assert "config reload refused, the running config stays: too many pairs for this worker" in caplog.text
    assert "3 pair(s)" not in caplog.text  # the refused config was never announced as reloaded


def reload_once_logged(path: Path, caplog: pytest.LogCaptureFixture, say_warnings: bool = True) -> None:
    """One reload of the config at ``path`` asked and taken, with the config's log captured."""

    async def scenario() -> None:
        reloader = ConfigReloader(path, load_config(path), lambda config: None, say_warnings=say_warnings)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(reloader.run(stop))
            reloader.request()
            await async_wait_for(lambda: reloader.counters["config_reloads"] == 1)
            stop.set()

    with caplog.at_level(logging.INFO, logger="algorithm.config"):
        run_async(scenario())


def test_a_reload_logs_the_catalog_summary_first_and_its_examples(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, GOOD + '[guardrails]\ncatalog = "cat.csv"\n')
    (tmp_path / "cat.csv").write_bytes(b"book_id,floor,ceiling\nB1,1,2\nB2,x,2\nB9,1,2\nB2,1,\xff\n")

    reload_once_logged(path, caplog)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == "cat.csv: 1 row(s) used, 2 bad (bad_floor 1, not_utf8 1), 1 for books not priced"
    assert "cat.csv line 3: skipped a bad row (bad_floor): floor x: " in warnings[1]
    assert "cat.csv line 4: book B9 is not priced by this config: row ignored" in warnings
    assert "cat.csv line 5: skipped a bad row (not_utf8): skipped" in warnings


def test_a_reloader_told_not_to_say_the_warnings_reloads_without_them(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    # Algorithm workers other than worker 0 (the same config, the same warnings: said once, issue 21).
    path = write(tmp_path, GOOD + '[guardrails]\ncatalog = "cat.csv"\n')
    (tmp_path / "cat.csv").write_bytes(b"book_id,floor,ceiling\nB2,x,2\n")

    reload_once_logged(path, caplog, say_warnings=False)
    assert load_config(path).warnings  # there are warnings to say
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [m for m in caplog.messages if "reloaded" in m]  # the reload itself is still said


def test_config_warnings_let_one_load_through_then_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    warnings = tuple(f"line {i}" for i in range(reload.WARNINGS_BURST))
    config = dataclasses.replace(Config.simple(["B1"]), warnings=warnings)
    rlog = reload.warnings_log(logging.getLogger("algorithm.config.test"))
    with caplog.at_level(logging.WARNING, logger="algorithm.config.test"):
        reload.log_warnings(rlog, config)
        reload.log_warnings(rlog, config)  # a second load within the minute: counted by the log only
    assert caplog.messages == list(warnings)


def test_polling_sees_a_configmap_volume_update(tmp_path: Path) -> None:
    """Kubernetes updates a ConfigMap volume by swapping a ``..data`` symlink: the paths stay, the files
    behind them change. Polling sees it, for the config and for a file it names."""
    volume = ConfigMapVolume(tmp_path / "config")
    volume.write({"repricer.toml": GOOD, "books.txt": "B1\nB2\n"})
    path = volume.root / "repricer.toml"
    applied: list[Config] = []

    async def scenario() -> None:
        reloader = ConfigReloader(path, load_config(path), applied.append, poll=0.1)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(reloader.run(stop))
            volume.write({"repricer.toml": GOOD, "books.txt": "B1\nB2\nB3\n"})  # same size config, new books
            await async_wait_for(lambda: len(applied) == 1)
            assert applied[0].books == ["B1", "B2", "B3"]
            volume.write({"repricer.toml": GOOD + '[pause]\nbooks = ["B3"]\n', "books.txt": "B1\nB2\nB3\n"})
            await async_wait_for(lambda: len(applied) == 2)
            assert applied[1].is_paused("B3", "a")
            await asyncio.sleep(0.35)  # several polls: an unchanged volume is not reloaded again
            assert reloader.counters == {"config_reloads": 2, "config_reload_errors": 0}
            stop.set()

    run_async(scenario())


def test_a_sighup_storm_reloads_each_time_but_logs_a_bounded_number_of_lines(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 20: 1,000 SIGHUPs at 50/s logged 1,000 lines."""
    path = write(tmp_path, GOOD)

    async def scenario() -> None:
        reloader = ConfigReloader(path, load_config(path), lambda config: None)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(reloader.run(stop))
            for n in range(1, 21):
                reloader.request()
                await async_wait_for(lambda n=n: reloader.counters["config_reloads"] == n)  # type: ignore[misc]
            stop.set()

    with caplog.at_level(logging.INFO, logger="algorithm.config"):
        run_async(scenario())
    assert sum("reloaded" in m for m in caplog.messages) == 5  # the rest counted only (config_reloads)
