"""Guardrail catalog: the peak memory (VmHWM) and time of a process that loads a config with a
1,000,000-row catalog (100,000 in quick mode), against the same config without the catalog, measured
in the same run:

* every row for a priced book: what the kept guardrails cost per book (they are interned: 5,000
  distinct floor/ceiling pairs here, as a catalog of real price points has);
* every row for a book the config does not price (10 books priced): the catalog is streamed, so the
  peak should be the same as without it.

Each load runs in its own ``python -c`` process (the bench never imports the product's actors).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import REPO, Config, Outcome, Row

CHILD = """
import json, re, sys, time
from actors.pricing.config import load_config
start = time.perf_counter()
config = load_config(sys.argv[1])
seconds = time.perf_counter() - start
status = open("/proc/self/status").read()
print(json.dumps({"peak_kib": int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)), "seconds": seconds,
                  "pairs": len(config.pairs), "guarded": len(config.guardrail_overrides)}))
"""


def _write(folder: Path, books: int, rows: int, catalog: bool) -> Path:
    """A config pricing ``books`` books (ids B0..), with a catalog of ``rows`` rows (ids B0.. too:
    rows beyond ``books`` are for books not priced)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "books.txt", "w", encoding="utf-8") as f:
        f.writelines(f"B{i:07d}\n" for i in range(books))
    text = '[guardrails]\nmax_step_pct = 5\nending = "0.99"\n' + ('catalog = "catalog.csv"\n' if catalog else "")
    text += '[[books]]\nfile = "books.txt"\n'
    (folder / "c.toml").write_text(text, encoding="utf-8")
    if catalog:
        with open(folder / "catalog.csv", "w", encoding="utf-8") as f:
            f.write("book_id,floor,ceiling\n")
            f.writelines(f"B{i:07d},{1 + (i % 5000) / 100:.2f},{60 + (i % 5000) / 100:.2f}\n" for i in range(rows))
    return folder / "c.toml"


def load(path: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure(cfg: Config) -> Outcome:
    out = Outcome()
    rows = cfg.pick(100_000, 1_000_000)
    with tempfile.TemporaryDirectory(prefix="bn-catalog-") as tmp:
        folder = Path(tmp)
        runs = {
            "priced": load(_write(folder / "priced", rows, rows, True)),
            "priced_baseline": load(_write(folder / "priced0", rows, rows, False)),
            "unpriced": load(_write(folder / "unpriced", 10, rows, True)),
            "unpriced_baseline": load(_write(folder / "unpriced0", 10, rows, False)),
        }
    out.raw.update(runs)
    priced, base = runs["priced"], runs["priced_baseline"]
    extra = (priced["peak_kib"] - base["peak_kib"]) / 1024
    out.rows.append(Row(f"peak RSS loading {rows:,} books + a {rows:,}-row catalog", priced["peak_kib"] / 1024, "MiB",
                        base["peak_kib"] / 1024, "same books, no catalog",
                        note=f"catalog adds {extra:+.0f} MiB at the peak; load {priced['seconds']:.1f} s vs "
                             f"{base['seconds']:.1f} s; {priced['guarded']:,} books guarded"))
    unpriced, base = runs["unpriced"], runs["unpriced_baseline"]
    out.rows.append(Row(f"peak RSS loading 10 books + a {rows:,}-row catalog (rows for other books)",
                        unpriced["peak_kib"] / 1024, "MiB", base["peak_kib"] / 1024, "10 books, no catalog",
                        "about the same (<= 1.1x): streamed", met=unpriced["peak_kib"] <= 1.1 * base["peak_kib"],
                        note=f"load {unpriced['seconds']:.1f} s ({rows / max(unpriced['seconds'], 1e-9):,.0f} rows/s)"))
    return out
