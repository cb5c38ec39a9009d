"""What the test script writes: aged faces, strips, pasted photos, a contact sheet.

Layout of ``save_dir`` for an input ``NAME.ext`` (one aged face per target):

- ``NAME_input.png``: the input as the generator saw it (S x S, S = 128).
- ``NAME_group{k}_{ages}.png``: the face aged to group k, e.g. ``NAME_group3_41-50.png``;
  blended steps (``--interpolate``) are ``NAME_group{k.ff}_{ages}_to_{ages}.png``.
- ``NAME_strip.png``: 1 x (1 + targets) strip, S high: the input then each target in
  order (the seed's ``*_1x5.jpg``).
- With face detection, every face ``i`` gets the files above as ``NAME_face{i}_...``,
  and each target the whole photo with the aged faces pasted in,
  ``NAME_group{k}_{ages}_photo.jpg``.
- ``index.html``: every strip of the run, with column headings, and the failed files.

All images are uint8 RGB in memory. Every file is written by ``face_aging.files`` (a
temporary name in the same directory, fsync, rename), so a crash or a full disk never leaves a
half-written file under a final name; existing files are replaced, nothing else is deleted.
"""
from __future__ import annotations

import html
import os
import urllib.parse
from typing import Sequence, Tuple

import cv2
import numpy as np

from face_aging import files


def make_strip(input_face: np.ndarray, aged_faces: Sequence[np.ndarray]) -> np.ndarray:
    """1 x (1 + N) strip: the input face then the N aged faces, side by side.

    Args:
      input_face: uint8 ``[S, S, 3]``.
      aged_faces: N uint8 ``[S, S, 3]`` (or an array ``[N, S, S, 3]``).
    Returns:
      uint8 ``[S, S * (1 + N), 3]``.
    """
    return np.concatenate([np.asarray(input_face)] + [np.asarray(a) for a in aged_faces], axis=1)


def write_face_outputs(save_dir: str, name: str, input_face: np.ndarray, aged_faces,
                       targets) -> str:
    """Writes ``name``'s input, its aged faces (one per target) and its strip.

    Args:
      input_face: uint8 ``[S, S, 3]``, the generator's view of the input.
      aged_faces: uint8 ``[len(targets), S, S, 3]``.
      targets: ``inference.AgeTarget`` list (their ``tag`` names the files).
    Returns:
      the strip's file name (relative to ``save_dir``).
    """
    files.atomic_write_image(os.path.join(save_dir, f"{name}_input.png"), input_face)
    for aged, target in zip(aged_faces, targets):
        files.atomic_write_image(os.path.join(save_dir, f"{name}_{target.tag}.png"), aged)
    strip_name = f"{name}_strip.png"
    files.atomic_write_image(os.path.join(save_dir, strip_name), make_strip(input_face, aged_faces))
    return strip_name


def soft_mask(height: int, width: int, feather: float = 0.12) -> np.ndarray:
    """float32 ``[height, width]`` in [0, 1]: an ellipse filling the box, edges feathered.

    1 in the middle, falling smoothly to 0 at the box's border; ``feather`` is the width
    of the fall-off as a fraction of the smaller side.
    """
    y = (np.arange(height, dtype=np.float32) + 0.5) / height * 2.0 - 1.0
    x = (np.arange(width, dtype=np.float32) + 0.5) / width * 2.0 - 1.0
    radius = np.sqrt(y[:, np.newaxis] ** 2 + x[np.newaxis, :] ** 2)  # 1 on the inscribed ellipse
    band = max(2.0 * feather, 1e-3)
    t = np.clip((1.0 - radius) / band, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)  # smoothstep


def paste_face(photo: np.ndarray, face: np.ndarray, square: Tuple[int, int, int, int],
               angle: float = 0.0) -> np.ndarray:
    """Blends ``face`` into a copy of ``photo`` over ``square`` with :func:`soft_mask`.

    The soft-edged counterpart of ``faces.paste_back``: the same geometry (the crop's
    square, rotated back by ``angle``), but faded into the photo instead of a hard edge.

    Args:
      photo: uint8 RGB ``[H, W, 3]``.
      face: uint8 RGB ``[h, w, 3]``, any size; resized to the square.
      square: ``(x1, y1, x2, y2)`` photo pixels, exclusive end (``faces.square_with_margin``);
        may reach outside the photo (only the inside part is pasted).
      angle: degrees the crop was levelled by (``faces.crop_with_margin``'s ``angle``).
    Returns:
      a new uint8 ``[H, W, 3]``.
    """
    x1, y1, x2, y2 = (int(round(v)) for v in square)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"empty paste square {square}")
    side_w, side_h = x2 - x1, y2 - y1
    interpolation = cv2.INTER_AREA if side_w < face.shape[1] else cv2.INTER_CUBIC
    patch = cv2.resize(np.ascontiguousarray(face), (side_w, side_h), interpolation=interpolation)
    mask = soft_mask(side_h, side_w)
    if abs(angle) >= 1e-3:
        centre = ((side_w - 1) / 2.0, (side_h - 1) / 2.0)
        matrix = cv2.getRotationMatrix2D(centre, -float(angle), 1.0)
        patch = cv2.warpAffine(patch, matrix, (side_w, side_h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(mask, matrix, (side_w, side_h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    height, width = photo.shape[:2]
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    out = photo.copy()
    if cx2 <= cx1 or cy2 <= cy1:
        return out
    region = out[cy1:cy2, cx1:cx2].astype(np.float32)
    inside = patch[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1].astype(np.float32)
    alpha = mask[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1, np.newaxis]
    out[cy1:cy2, cx1:cx2] = np.clip(np.round(region + alpha * (inside - region)), 0, 255) \
        .astype(np.uint8)
    return out


def contact_sheet_html(strips: Sequence[dict], column_labels: Sequence[str],
                       failed: Sequence[Tuple[str, str]] = (), title: str = "Face aging",
                       panel_size: int = 128) -> str:
    """The ``index.html`` text: a table of strips under their column labels, then failures.

    Args:
      strips: ``[{"name", "source", "strip"}]``, ``strip`` a file name relative to the page.
      column_labels: ``["input", "21-30", ...]`` one per strip panel.
      failed: ``[(path, reason)]``.
      panel_size: side of one strip panel in pixels (the column width).
    """
    esc = html.escape
    heading = "".join(f'<th style="width:{panel_size}px">{esc(label)}</th>'
                      for label in column_labels)
    rows = "\n".join(
        f'<tr><td class="name">{esc(s["name"])}<br><small>{esc(str(s["source"]))}</small></td>'
        f'<td colspan="{len(column_labels)}"><img src="{urllib.parse.quote(s["strip"])}" '
        f'alt="{esc(s["name"])}"></td></tr>' for s in strips)
    failures = ""
    if failed:
        items = "\n".join(f"<li><code>{esc(str(p))}</code>: {esc(r)}</li>" for p, r in failed)
        failures = f"<h2>Not processed ({len(failed)})</h2>\n<ul>\n{items}\n</ul>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
table {{ border-collapse: collapse; }}
td, th {{ padding: 2px 0; text-align: center; }}
td.name {{ text-align: left; font-size: 90%; }}
td.name {{ padding-right: 8px; }}
img {{ display: block; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>{len(strips)} face(s). Each row: the input face, then its outputs under the column headings.</p>
<table>
<tr><th>face</th>{heading}</tr>
{rows}
</table>
{failures}
</body></html>
"""


def write_contact_sheet(save_dir: str, strips: Sequence[dict], column_labels: Sequence[str],
                        failed: Sequence[Tuple[str, str]] = (), title: str = "Face aging",
                        panel_size: int = 128) -> str:
    """Writes ``index.html`` into ``save_dir`` atomically; returns its path."""
    path = os.path.join(save_dir, "index.html")
    files.atomic_write_text(path, contact_sheet_html(strips, column_labels, failed, title,
                                                     panel_size))
    return path
