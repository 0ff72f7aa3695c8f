"""Take the README's screenshot of the teaching page (docs/serve-page.png) with the shipped model.

Serves ``ml.serve.create_app(load_model())`` on a free loopback port, opens the issue's sparse
patient (a 60-year-old woman with lower-zone calcified nodules of 3 mm, nothing else recorded) in
Debian's chromium through Playwright, waits for the page to finish its update and writes a
full-page PNG. Needs ``pulmocalc[serve,browser]`` and ``apt-get install chromium``.

Usage::

    python tools/screenshot_page.py [--out docs/serve-page.png]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SPARSE = "?age_years=60&sex=female&zone=lower&calcified_nodules=1&lesion_size_mm=3"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "serve-page.png"))
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from ml import load_model
    from ml.serve import create_app, serve_in_thread

    url, stop = serve_in_thread(create_app(load_model()))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(url + SPARSE)
            deadline = time.time() + 60
            while not page.evaluate("window.pulmocalc ? window.pulmocalc.updates : 0"):
                if time.time() > deadline:
                    raise RuntimeError("the page did not update within 60 s")
                time.sleep(0.1)
            time.sleep(0.5)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        stop()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
