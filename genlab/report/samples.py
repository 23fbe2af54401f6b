"""The latest sample grid of each run (``samples/<panel>_step<N>.png``, or the scatter plot for 2D data) and,
for a VAE, its latest reconstructions (TensorBoard's ``images/reconstructions``), checked and embedded."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from genlab.report.leaderboard import Row
from genlab.report.plots import data_uri
from genlab.utils.rundir import is_real_dir, read_bytes

SAMPLE_FILE = re.compile(r"^(?P<panel>[A-Za-z0-9_]+)_step(?P<step>\d+)\.png$")
PANELS = ("samples", "scatter")  # the main panel genlab.run.callbacks.images saves, image data / 2D data
MAX_SIDE = 640  # larger grids are shrunk so a 50-run page stays small
MAX_PNG = 64 * 2**20  # bytes of a sample grid read from a run dir


@dataclass
class Images:
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, PNG URI)
    note: str | None = None


def latest_sample(run_dir: Path) -> tuple[str, int, Path] | None:
    """(panel, step, file) of the newest main-panel PNG under ``samples/``, or None."""
    best: tuple[int, int, str, Path] | None = None
    if not is_real_dir(run_dir / "samples"):
        return None
    try:
        files = list((run_dir / "samples").iterdir())
    except OSError:
        return None
    for path in files:
        match = SAMPLE_FILE.match(path.name)
        if not match:
            continue
        panel = match["panel"]
        rank = PANELS.index(panel) if panel in PANELS else len(PANELS)
        key = (-rank, int(match["step"]), panel, path)
        if best is None or key[:2] > best[:2]:
            best = key
    return None if best is None else (best[2], best[1], best[3])


def embeddable(png: bytes) -> bytes:
    """``png`` checked to decode (ValueError if not), shrunk to MAX_SIDE when larger."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as img:
            img.verify()
        with Image.open(io.BytesIO(png)) as img:
            if img.format == "PNG" and max(img.size) <= MAX_SIDE:
                return png
            img.thumbnail((MAX_SIDE, MAX_SIDE))
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="PNG", optimize=True)
            return buf.getvalue()
    except (OSError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ValueError(" ".join(str(e).split())[:80] or type(e).__name__) from e


def run_images(row: Row) -> Images:
    images = Images()
    latest = latest_sample(row.run.path)
    if latest is not None:
        panel, step, path = latest
        try:
            images.figures.append(
                (
                    f"{panel}, step {step}",
                    data_uri(embeddable(read_bytes(path, MAX_PNG, within=row.run.path))),
                )
            )
        except (OSError, ValueError) as e:
            images.note = f"{path.relative_to(row.run.path)} unreadable ({e})"
    for tag, (step, png) in sorted(row.curves.images.items()):
        try:
            images.figures.append((f"{tag.rsplit('/', 1)[-1]}, step {step}", data_uri(embeddable(png))))
        except ValueError as e:
            images.note = f"TensorBoard {tag} unreadable ({e})"
    if not images.figures and images.note is None:
        images.note = "no sample grid yet"
    return images
