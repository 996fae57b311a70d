"""A live browser on the Dashboard for the whole soak: headless Chromium keeps the overview open on
its server-sent-event stream (``/api/live``), never reloaded, and is looked at every few seconds.

A look is *live* when the page is the one opened (a mark set at the start is still there: no
reload), its stream says "connected", and the state it last drew was made by the Dashboard at most
``stale_after`` seconds ago (the state moves with every status the launcher publishes, every second
or so). Every look must be live.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Final

from selenium.common.exceptions import WebDriverException

from bench.browser import chromium

EXAMPLES: Final = 5
OPEN_TIMEOUT: Final = 30.0  # from the first decision: the Dashboard starts with the other actors
DASHBOARD_WAIT: Final = 240.0  # from the start: the browser starts beside the launcher, then waits for it
STOP_WAIT: Final = 40.0  # a look in progress may take the driver's script timeout (20 s)
LOOK = """
const s = window.dashboardState || null;
const total = document.getElementById('decisions-total');
const live = document.getElementById('live-status');
return {mark: window.__soakMark || null, now: s ? s.now : null, total: total ? total.textContent : null,
        live: live ? live.textContent : null};
"""


@dataclass
class LiveLooks:
    looks: int = 0
    live: int = 0
    stale: int = 0  # the state drawn was older than ``stale_after``, or the stream not connected
    reloaded: int = 0  # the page lost its mark: it was reloaded or replaced
    errors: int = 0  # a look (or the page's opening) failed
    oldest_state_s: float = 0.0
    shown_total: str | None = None  # the decisions total the page showed last
    examples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append(text)

    def report(self) -> dict[str, object]:
        return {"looks": self.looks, "live": self.live, "stale": self.stale, "reloaded": self.reloaded,
                "errors": self.errors, "oldest_state_s": round(self.oldest_state_s, 1),
                "decisions_shown_last": self.shown_total, "examples": self.examples}


class LiveClient:
    """The browser, in a thread of its own: :meth:`start` (Chromium starts at once and opens the page
    as soon as the Dashboard answers), then :meth:`stop` before the Dashboard stops."""

    def __init__(self, url: str, every: float, stale_after: float = 15.0) -> None:
        self.url = url
        self.every = every
        self.stale_after = stale_after
        self.looks = LiveLooks()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="live-client")

    def start(self) -> None:
        self._thread.start()

    def wait_open(self, timeout: float = OPEN_TIMEOUT) -> bool:
        return self._opened.wait(timeout)

    def _run(self) -> None:
        try:
            with chromium() as browser:
                if not self._wait_for_dashboard():
                    return
                browser.get(self.url)
                browser.execute_script("window.__soakMark = 'opened';")
                self._opened.set()
                while not self._stop.wait(self.every):
                    try:
                        seen = browser.execute_script(LOOK)
                    except WebDriverException as exc:  # counted; the next look tries again
                        self._failed(exc)
                    else:
                        self._look(seen)
        except Exception as exc:  # the browser never opened or would not close: the report says so
            self._failed(exc)
        finally:
            self._opened.set()

    def _wait_for_dashboard(self) -> bool:
        """Until the Dashboard answers (True), or the client is stopped or gives up (False)."""
        deadline = time.monotonic() + DASHBOARD_WAIT
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "static/style.css", timeout=1.0):
                    return True
            except urllib.error.HTTPError:
                return True  # it answered
            except OSError:
                if self._stop.wait(0.05):
                    return False
        self._failed(TimeoutError(f"the Dashboard at {self.url} did not answer in {DASHBOARD_WAIT:.0f} s"))
        return False

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self.looks.errors += 1
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            self.looks.note(f"browser at {time.time():.0f}: {type(exc).__name__}: {first:.200}")

    def _look(self, seen: Any) -> None:
        now = time.time()
        with self._lock:
            looks = self.looks
            looks.looks += 1
            if not isinstance(seen, dict):
                looks.errors += 1
                looks.note(f"look at {now:.0f}: not an object: {seen!r:.80}")
                return
            if seen.get("mark") != "opened":
                looks.reloaded += 1
                looks.note(f"look at {now:.0f}: the page was reloaded")
                return
            state_now = seen.get("now")
            age = now - state_now if isinstance(state_now, int | float) else float("inf")
            looks.oldest_state_s = max(looks.oldest_state_s, age)
            looks.shown_total = seen.get("total")
            if age <= self.stale_after and seen.get("live") == "connected":
                looks.live += 1
            else:
                looks.stale += 1
                looks.note(f"look at {now:.0f}: state {age:.1f} s old, stream {seen.get('live')!r}")

    def stop(self) -> LiveLooks:
        self._stop.set()
        self._thread.join(STOP_WAIT)
        with self._lock:
            return self.looks
