"""Headless Chromium for the report tests: render a local HTML file, return
its DOM after scripts ran, and take a screenshot. The flags keep Chromium off
the network (this machine has none to offer) and out of the user's profile."""

import shutil
import subprocess
import tempfile

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(html_path, screenshot_path, size="900,1400"):
    """Returns the DOM of html_path as Chromium built it; writes a PNG."""
    profile = tempfile.mkdtemp(prefix="chromium-")
    flags = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--user-data-dir=" + profile,
    ]  # fmt: skip
    try:
        dom = subprocess.run(
            flags + ["--dump-dom", html_path.as_uri()], capture_output=True, text=True,
            timeout=60,
        ).stdout  # fmt: skip
        subprocess.run(
            flags + ["--screenshot=" + str(screenshot_path), "--window-size=" + size,
                     html_path.as_uri()],
            capture_output=True,
            timeout=60,
        )  # fmt: skip
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return dom
