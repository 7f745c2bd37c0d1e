"""Take the README's screenshots of bulkref serve (docs/screenshots/*.png).

They come from the browser tests themselves (tests/test_web_browser.py, the
mapping page's and the team's), which save a PNG of each step when
BULKREF_SCREENSHOTS names a folder: what the pictures show is what the tests
checked. Needs Debian's chromium and
chromium-driver, as the tests do.

    .venv/bin/python scripts/screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BULKREF_SCREENSHOTS": str(out.resolve())}
    tests = [
        ROOT / "tests" / name
        for name in ("test_web_browser.py", "test_web_browser_mapping.py", "test_web_team.py")
    ]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, tests)]
    done = subprocess.run(command, env=env, check=False)
    if done.returncode == 0:
        for png in sorted(out.glob("*.png")):
            print(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
