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
