"""Draw the figure ``docs/img/kernel_SIGKILL.png``: a notebook whose kernel was killed.

The picture is a mock-up made from plain HTML (no third-party screenshot, no web
fonts): a notebook toolbar, the pale yellow "Kernel last terminated by signal
SIGKILL." bar, and a few cells. Headless Chromium renders it to a PNG.

The PNG has twice the pixels of its layout (``SCALE``), so it stays sharp on
high-density screens.

Usage::

    python scripts/make_banner_figure.py [--out docs/img/kernel_SIGKILL.png] [--chromium PATH]
"""

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "img" / "kernel_SIGKILL.png"
# CSS pixels: narrow enough that the bar's words stay legible when a phone shrinks the
# figure to its width; SCALE device pixels per CSS pixel keep it sharp on 2x screens.
WIDTH, HEIGHT = 600, 362
SCALE = 2

BANNER = "Kernel last terminated by signal SIGKILL."

CELLS = [
    ("1", "import numpy as np\nimport pandas as pd", None),
    (
        "2",
        "frames = []\nfor year in range(1990, 2024):\n"
        "    frames.append(pd.read_csv(f'data/{year}.csv'))",
        None,
    ),
    (
        " ",
        "big = pd.concat(frames)\nbig.groupby('station').describe()",
        None,
    ),
]

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>notebook</title>
<style>
  * {{ box-sizing: border-box; }}
  body {{ margin: 0; background: #eef0f2; font-family: "DejaVu Sans", Arial, sans-serif;
         font-size: 14px; color: #222; }}
  .top {{ background: #fff; border-bottom: 1px solid #d0d4d8; padding: 8px 14px;
          display: flex; align-items: center; gap: 12px; }}
  .tab {{ background: #f6f7f8; border: 1px solid #cfd3d7; border-bottom: none;
          border-radius: 4px 4px 0 0; padding: 5px 12px; font-weight: bold; }}
  .usage {{ margin-left: auto; color: #666; font-size: 12px; }}
  .toolbar {{ background: #fafbfc; border-bottom: 1px solid #d0d4d8; padding: 6px 14px;
              display: flex; gap: 6px; }}
  .btn {{ border: 1px solid #c4c8cc; border-radius: 3px; background: #fff; padding: 3px 10px;
          font-size: 12px; color: #333; }}
  .kernel {{ margin-left: auto; font-size: 12px; color: #555; padding: 3px 0; }}
  .banner {{ background: #fcf8e3; border: 1px solid #f0d98c; color: #6b5312; margin: 12px 14px 0;
             padding: 10px 14px; border-radius: 3px; font-size: 19px; font-weight: bold;
             display: flex; gap: 10px; align-items: center; }}
  .banner .icon {{ font-weight: bold; border: 2px solid #b8962a; border-radius: 50%;
                   width: 20px; height: 20px; display: inline-flex; align-items: center;
                   justify-content: center; font-size: 13px; color: #8a6d1a; }}
  .sheet {{ background: #fff; margin: 12px 14px; border: 1px solid #d0d4d8;
            padding: 10px 10px 14px; }}
  .cell {{ display: flex; margin: 6px 0; }}
  .prompt {{ width: 78px; white-space: nowrap; color: #303f9f;
             font-family: "DejaVu Sans Mono", monospace; font-size: 13px;
             padding-top: 7px; text-align: right; padding-right: 8px; }}
  .src {{ flex: 1; background: #f7f7f7; border: 1px solid #e0e0e0; border-radius: 2px;
          padding: 6px 8px; font-family: "DejaVu Sans Mono", monospace; font-size: 13px;
          white-space: pre; line-height: 1.45; }}
  .cell.active .src {{ border-color: #66a3e0; box-shadow: 0 0 0 1px #66a3e0; }}
  .kw {{ color: #008000; font-weight: bold; }}
  .str {{ color: #ba2121; }}
</style></head>
<body>
  <div class="top"><span class="tab">analysis.ipynb</span>
    <span class="usage">CPU 0% &nbsp; Memory 0 MB / 1000 MB</span></div>
  <div class="toolbar">
    <span class="btn">+</span><span class="btn">&#9654; Run</span>
    <span class="btn">&#9632; Stop</span>
    <span class="btn">&#8635; Restart</span><span class="btn">Halt</span>
    <span class="kernel">Python 3 (ipykernel) &#9675;</span>
  </div>
  <div class="banner" role="alert"><span class="icon">!</span><span>{banner}</span></div>
  <div class="sheet">
{cells}
  </div>
</body></html>
"""


def highlight(code):
    """Escape the code and colour keywords and strings, the way notebooks do."""
    out = html.escape(code, quote=False)
    out = re.sub(r"'[^'\n]*'", lambda m: f'<span class="str">{m.group(0)}</span>', out)
    return re.sub(r"\b(import|for|in|as)\b", r'<span class="kw">\1</span>', out)


def page():
    cells = []
    for i, (count, code, _output) in enumerate(CELLS):
        active = " active" if i == len(CELLS) - 1 else ""
        cells.append(
            f'    <div class="cell{active}"><div class="prompt">In [{count}]:</div>'
            f'<div class="src">{highlight(code)}</div></div>'
        )
    return PAGE.format(banner=html.escape(BANNER), cells="\n".join(cells))


def render(out, chromium):
    with tempfile.TemporaryDirectory(prefix="banner-figure-") as tmp:
        source = Path(tmp) / "notebook.html"
        source.write_text(page(), encoding="utf-8")
        profile = Path(tmp) / "profile"
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--force-device-scale-factor={SCALE}",
            source.as_uri(),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0 or not out.exists():
        tail = (result.stderr or "").strip().splitlines()[-3:]
        sys.exit(f"chromium failed (exit {result.returncode}): {' | '.join(tail)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    parser.add_argument(
        "--chromium",
        default=shutil.which("chromium") or "/usr/bin/chromium",
        help="headless Chromium to use",
    )
    args = parser.parse_args()
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    render(out, args.chromium)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
