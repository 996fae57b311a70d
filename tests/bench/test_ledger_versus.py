"""bench.ledger_versus: what it runs against is checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import ledger_versus


def test_another_checkout_is_required(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        ledger_versus.main(["--against", str(tmp_path)])
    assert exited.value.code == 2 and "is not a checkout of this project" in capsys.readouterr().err
