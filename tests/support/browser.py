"""Headless Chromium for the page tests: Debian's `chromium`, installed with apt-get when it is
missing (the tests run as root; `make setup` installs it too), driven by Playwright without a
browser download of its own. The machine has no network: the browser's background traffic is
switched off and every profile is fresh."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def ensure_chromium() -> str | None:
    """None when Chromium is there (installing it if need be), else why it cannot be."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None:
        return "no /usr/bin/chromium and no apt-get to install Debian's chromium"
    if os.geteuid() != 0:
        return "no /usr/bin/chromium, and installing it needs root (apt-get install chromium)"
    # Test workers (pytest -n) may get here together: one installs, the others wait for it.
    with open(Path(tempfile.gettempdir()) / "invoke-audit-chromium.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if CHROMIUM.exists():
            return None
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
                return f"{' '.join(command)} failed: {last[0]}"
    return None if CHROMIUM.exists() else "apt-get installed chromium, but not /usr/bin/chromium"
