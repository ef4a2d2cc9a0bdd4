"""The end of a batch: ``report.csv``, ``report.html`` and the before/after contact sheet."""
from __future__ import annotations

import csv
import html
import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ...safe_io import atomic_write
from .process import THUMB_PX, PhotoRecord

SHEET_COLUMNS = 4  #: before/after pairs per row
SHEET_ROWS = 10  #: rows per page (a page of a big shoot stays a sensible image)
LABEL_PX = 16

COLUMNS = ("photo", "status", "faces_found", "faces_edited", "lpips", "identity", "seconds", "output", "reason", "worker",
           "peak_mib")


def _lpips(rec: PhotoRecord) -> str:
    return f"{float(np.mean(rec.lpips)):.4f}" if rec.lpips else ""


def _identity(rec: PhotoRecord) -> str:
    """The lowest identity similarity of the photo's faces (the one least like its person)."""
    return f"{float(np.min(rec.identity)):.3f}" if rec.identity else ""


def write_csv(path: Path, records: Sequence[PhotoRecord]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for r in records:
        w.writerow([r.photo, r.status, r.faces_found, r.faces_edited, _lpips(r), _identity(r), f"{r.seconds:.2f}", r.output,
                     r.reason, r.worker, f"{r.peak_mib:.0f}"])
    data = buf.getvalue().encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def summary(records: Sequence[PhotoRecord]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        out[r.status] = out.get(r.status, 0) + 1
    return out


def write_html(path: Path, records: Sequence[PhotoRecord], title: str, notes: Sequence[str] = ()) -> None:
    e = html.escape
    counts = ", ".join(f"{n} {s}" for s, n in summary(records).items()) or "no photos"
    rows = []
    for r in records:
        thumbs = "".join(f'<img src="{e(t)}" alt="{e(t.rsplit(".", 2)[-2])}">' for t in r.thumbs)
        out = f'<a href="{e(r.output)}">{e(r.output)}</a>' if r.output else ""
        rows.append(f"<tr class=\"{e(r.status.replace(' ', '-'))}\"><td>{e(r.photo)}</td><td>{e(r.status)}</td>"
                    f"<td>{r.faces_edited}/{r.faces_found}</td><td>{_lpips(r)}</td><td>{_identity(r)}</td><td>{r.seconds:.1f}</td>"
                    f"<td>{out}</td><td>{e(r.reason)}</td><td>{thumbs}</td></tr>")
    body = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif}} td,th{{padding:2px 8px;text-align:left;vertical-align:top}}
tr.failed,tr.no-face{{color:#a33}} img{{height:96px;margin-right:4px}}</style></head>
<body><h1>{e(title)}</h1><p>{e(counts)}. LPIPS: how far the inverted face is from the photo's face
(0 is identical, lower is better), mean over the photo's edited faces. Identity: cosine similarity of
face embeddings between the photo's face and the inverted one (1 is identical; the lowest of the photo's faces;
docs/photos.md gives the "same person" threshold).</p>
{''.join(f'<p>{e(n)}</p>' for n in notes)}
<table><tr><th>photo</th><th>status</th><th>faces edited/found</th><th>LPIPS</th><th>identity</th><th>seconds</th><th>output</th>
<th>reason</th><th>before / after</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
    data = body.encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def _cell(folder: Path, rec: PhotoRecord) -> Image.Image:
    cell = Image.new("RGB", (2 * THUMB_PX, THUMB_PX + LABEL_PX), (32, 32, 32))
    for i, rel in enumerate(rec.thumbs[:2]):
        try:
            with Image.open(folder / rel) as im:
                thumb = im.convert("RGB")
        except OSError:
            continue
        cell.paste(thumb, (i * THUMB_PX + (THUMB_PX - thumb.width) // 2, (THUMB_PX - thumb.height) // 2))
    ImageDraw.Draw(cell).text((4, THUMB_PX + 2), rec.photo[-48:], fill=(230, 230, 230))
    return cell


def write_contact_sheets(folder: Path, records: Sequence[PhotoRecord], stem: str = "contact-sheet") -> list[Path]:
    """Before/after thumbnails of every finished photo, pages of SHEET_COLUMNS × SHEET_ROWS pairs."""
    done = [r for r in records if r.ok and len(r.thumbs) == 2]
    per_page = SHEET_COLUMNS * SHEET_ROWS
    pages = math.ceil(len(done) / per_page)
    paths = []
    for page in range(pages):
        chunk = done[page * per_page:(page + 1) * per_page]
        cols = min(SHEET_COLUMNS, len(chunk))
        rows = math.ceil(len(chunk) / cols)
        cw, ch = 2 * THUMB_PX + 8, THUMB_PX + LABEL_PX + 8
        sheet = Image.new("RGB", (cols * cw, rows * ch), (16, 16, 16))
        for i, rec in enumerate(chunk):
            sheet.paste(_cell(folder, rec), ((i % cols) * cw + 4, (i // cols) * ch + 4))
        path = Path(folder) / (f"{stem}.jpg" if pages == 1 else f"{stem}-{page + 1}.jpg")
        buf = io.BytesIO()
        sheet.save(buf, format="JPEG", quality=88)
        data = buf.getvalue()
        atomic_write(path, lambda f: f.write(data))
        paths.append(path)
    return paths
