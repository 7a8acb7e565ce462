"""Chromium for the duty officer console's browser tests, installed on demand.

:func:`ensure_installed` returns the path of a Chromium binary: ``SUIBOU_CHROMIUM``
if set, else ``/usr/bin/chromium`` (or ``chromium`` on ``PATH``); if there is
none and this process runs as root on Debian, it installs Debian's ``chromium``
package with ``apt-get`` (after ``apt-get update``, non-interactively), together
with a Japanese font (``fonts-ipafont-gothic``) when the system has none, so
that the console's Japanese names are legible in screenshots. Installs are
serialised by a file lock under ``<SUIBOU_HOME>``, so parallel test sessions
install once.

The tests drive it with Playwright for Python, launched on this binary; no
browser is downloaded from anywhere else.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from suibou.settings import Settings

DEFAULT_PATH = Path("/usr/bin/chromium")
PACKAGE = "chromium"
#: IPA Gothic: a small Japanese font (the console shows gauge and river names in Japanese).
FONT_PACKAGE = "fonts-ipafont-gothic"

#: Flags for a headless, quiet, offline browser (no sandbox: tests often run as root in containers).
HEADLESS_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class ChromiumError(RuntimeError):
    """Chromium could not be found or installed; the message says what to do."""


def _say(message: str) -> None:
    print(f"[suibou] {message}", file=sys.stderr, flush=True)


def find() -> Path | None:
    """The Chromium binary: ``SUIBOU_CHROMIUM``, ``/usr/bin/chromium`` or ``chromium`` on ``PATH``; else ``None``."""
    override = os.environ.get("SUIBOU_CHROMIUM")
    if override:
        return Path(override) if Path(override).is_file() else None
    if DEFAULT_PATH.is_file():
        return DEFAULT_PATH
    on_path = shutil.which("chromium")
    return Path(on_path) if on_path else None


def has_japanese_font() -> bool:
    """Whether fontconfig knows a font that covers Japanese."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    result = subprocess.run([fc_list, ":lang=ja", "family"], check=False, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    return result.returncode == 0 and bool(result.stdout.strip())


def can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def install(packages: tuple[str, ...] = (PACKAGE, FONT_PACKAGE)) -> Path:
    """Installs Debian packages (root only; by default Chromium and a Japanese font); returns Chromium's path.

    Raises:
        ChromiumError: Not root, no ``apt-get``, or the installation failed.
    """
    if not can_install():
        raise ChromiumError("Chromium is not installed; install Debian's 'chromium' package "
                            "(apt-get install chromium) or point SUIBOU_CHROMIUM at a Chromium binary")
    _say(f"installing {' and '.join(packages)} (apt-get install)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]):
        result = subprocess.run(command, env=env, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise ChromiumError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    found = find()
    if found is None:
        raise ChromiumError(f"the {PACKAGE} package is installed but {DEFAULT_PATH} was not found")
    return found


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    folder = settings.home / "chromium"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_installed(settings: Settings) -> Path:
    """Finds Chromium, installing it first if it is missing; idempotent.

    Args:
        settings: ``settings.home`` holds the install lock.

    Returns:
        The path of the Chromium binary.

    Raises:
        ChromiumError: Chromium is missing and could not be installed.
    """
    found = find()
    if found is not None and has_japanese_font():
        return found
    with _locked(settings):
        found = find()
        if found is None:
            return install((PACKAGE,) if has_japanese_font() else (PACKAGE, FONT_PACKAGE))
        if not has_japanese_font() and can_install():
            try:
                install((FONT_PACKAGE,))
            except ChromiumError as error:  # Japanese text shows as boxes; the browser still works
                _say(f"no Japanese font: {error}")
        return found


__all__ = ["DEFAULT_PATH", "FONT_PACKAGE", "HEADLESS_ARGS", "PACKAGE", "ChromiumError", "ensure_installed", "find",
           "has_japanese_font", "install"]
