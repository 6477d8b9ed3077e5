#!/usr/bin/env python3
"""Render a GitHub step summary (markdown) to HTML as GitHub would, and screenshot it.

    .venv/bin/python scripts/summary-preview.py summary.md out.png   # needs Debian's chromium

GitHub renders step summaries as GitHub Flavored Markdown; markdown-it-py's CommonMark parser
with tables is close enough to see where blocks land (a <details> inside or outside its list item).
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from markdown_it import MarkdownIt

CSS = """
body { font: 14px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328;
       max-width: 880px; margin: 16px; }
table { border-collapse: collapse; } td, th { border: 1px solid #d0d7de; padding: 4px 12px; }
code, pre { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; background: #f6f8fa; }
pre { padding: 8px; overflow: auto; } details { border-left: 3px solid #0969da; padding-left: 8px; }
blockquote { color: #59636e; border-left: 3px solid #d0d7de; margin-left: 0; padding-left: 12px; }
"""


def to_html(markdown: str) -> str:
    """A whole HTML page for the summary (raw HTML allowed, as GitHub allows <details>)."""
    body = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>"
            f"{html.escape('step summary')}</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>")


def screenshot(page: str, png: Path, size: str = "1000,1400") -> None:
    """Headless Chromium (Debian's) takes a picture of the page, every <details> opened."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    page = page.replace("<details>", "<details open>")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "summary.html"
        source.write_text(page, encoding="utf-8")
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp}/profile", "--hide-scrollbars",
             f"--window-size={size}", f"--screenshot={png.resolve()}", source.as_uri()],
            check=True, capture_output=True, timeout=120)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, png = Path(argv[0]), Path(argv[1])
    screenshot(to_html(source.read_text(encoding="utf-8")), png)
    print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
