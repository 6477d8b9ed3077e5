"""The step summary as GitHub shows it: markdown rendered to HTML, and a headless screenshot."""

from __future__ import annotations

import importlib.util
import io
import shutil
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ci_nix.models import Case, Failure, FailureType, RunReport, Status
from ci_nix.report import github

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("summary_preview",
                                               ROOT / "scripts" / "summary-preview.py")
assert _spec is not None and _spec.loader is not None
preview = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(preview)

EVAL = Failure(FailureType.EVAL, "attribute 'nope' missing at flake.nix:12:35",
               log="error: attribute 'nope' missing\n\n   at flake.nix:12:35:", hint="check, typo",
               file="flake.nix", line=12, column=35)
BUILD = Failure(FailureType.BUILD, "builder for a.drv failed with exit code 2",
                log="compiling\nbroken.c:3: error", drv="/nix/store/aaaa-a.drv")
REPORT = RunReport(("hosts", "modules/sub"), (
    Case("hosts", "packages.x86_64-linux.missing", Status.FAILED, failure=EVAL),
    Case("modules/sub", "packages.x86_64-linux.a", Status.FAILED, failure=BUILD),
    Case("modules/sub", "packages.x86_64-linux.ok", Status.PASSED),
))


class _Items(HTMLParser):
    """Each top-level <li>'s text, and where each <details> sits (inside an <li> or not)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.items: list[list[str]] = []
        self.details_outside_items = 0
        self.details = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "li" and "li" not in self.stack:
            self.items.append([])
        if tag == "details":
            self.details += 1
            self.details_outside_items += "li" not in self.stack
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if "li" in self.stack:
            self.items[-1].append(data)


def rendered() -> _Items:
    out = io.StringIO()
    github.write_summary(REPORT, out)
    parser = _Items()
    parser.feed(preview.to_html(out.getvalue()))
    return parser


def test_log_tails_render_inside_their_list_item() -> None:
    items = rendered()
    assert items.details == 2 and items.details_outside_items == 0
    assert "broken.c:3: error" in "".join(items.items[1])


def test_a_position_is_said_once_and_names_the_repo() -> None:
    first = "".join(rendered().items[0]).strip().split("\n")[0]
    assert first == ("hosts#packages.x86_64-linux.missing eval: attribute 'nope' missing at "
                     "flake.nix:12:35 in repo hosts")


def _png_size_and_colours(png: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the image data): enough to tell a blank page."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            chunks.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    return width, height, len(set(zlib.decompress(b"".join(chunks))))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_summary_screenshot_shows_something(tmp_path: Path) -> None:
    """A picture of the summary to look at (scripts/summary-preview.py); here: it is not blank."""
    out = io.StringIO()
    github.write_summary(REPORT, out)
    png = tmp_path / "summary.png"
    preview.screenshot(preview.to_html(out.getvalue()), png, size="800,600")
    width, height, colours = _png_size_and_colours(png)
    assert (width, height) == (800, 600)
    assert colours > 20  # text and code blocks, not an empty white page
