"""Finding Chromium for the console's browser tests (installing it is exercised by those tests' fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from suibou.infra import chromium
from suibou.settings import Settings


def test_an_explicit_binary_is_used_and_a_missing_one_is_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "chromium"
    binary.write_text("#!/bin/sh\n")
    monkeypatch.setenv("SUIBOU_CHROMIUM", str(binary))
    assert chromium.find() == binary
    monkeypatch.setenv("SUIBOU_CHROMIUM", str(tmp_path / "absent"))
    assert chromium.find() is None


def test_without_root_a_missing_chromium_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUIBOU_CHROMIUM", str(tmp_path / "absent"))
    monkeypatch.setattr(chromium, "can_install", lambda: False)
    with pytest.raises(chromium.ChromiumError, match="apt-get install chromium"):
        chromium.ensure_installed(Settings(home=tmp_path))


def test_the_headless_flags_keep_the_browser_offline_and_quiet() -> None:
    assert {"--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"} == set(chromium.HEADLESS_ARGS)
