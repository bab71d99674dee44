"""Map label glyphs, made here from a system font so the web map needs no glyph server or CDN.

MapLibre draws text from signed-distance-field glyphs in protobuf files of 256 code points
(`/glyphs/{fontstack}/{start}-{end}.pbf`, the format of node-fontnik). Chinese ideographs are drawn by the
browser itself (`localIdeographFontFamily`), so only Latin letters, digits and punctuation are normally asked
for; any range the font covers is answered. No npm package ships prebuilt glyphs, so they are rendered with
Pillow from the same CJK font the door plates embed and turned into distance fields with numpy (a few hundred
milliseconds per range, cached per process).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from citygrid.errors import E

FONTSTACK = "citygrid Sans"  # the one fontstack served; any name asked for gets it, as glyph servers do
SIZE, BUFFER, RADIUS, CUTOFF = 24, 3, 8.0, 0.25  # fontnik's and MapLibre's constants
ASCENDER = 27  # MapLibre's top adjustment for glyphs it draws itself: server glyphs agree with local ones
RANGE_SIZE = 256


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, value: int | bytes, signed: bool = False) -> bytes:
    if isinstance(value, bytes):
        return _varint(num << 3 | 2) + _varint(len(value)) + value
    v = (value << 1) ^ (value >> 31) if signed else value  # sint32: zigzag
    return _varint(num << 3) + _varint(v & 0xFFFFFFFF if signed else v)


@lru_cache(maxsize=1)
def _font(path: str) -> tuple[ImageFont.FreeTypeFont, frozenset[int]]:
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped]  # fpdf2's dependency, untyped

    kw = {"fontNumber": 0} if path.endswith((".ttc", ".otc")) else {}
    with TTFont(path, lazy=True, **kw) as tt:
        cmap = frozenset(tt.getBestCmap())
    return ImageFont.truetype(path, SIZE, index=0), cmap


def _sdf(alpha: np.ndarray) -> np.ndarray:
    """Signed distance field of a glyph's coverage, padded by BUFFER, as MapLibre reads it (edge at 192)."""
    h, w = alpha.shape
    inside = np.zeros((h + 2 * BUFFER, w + 2 * BUFFER), dtype=bool)
    inside[BUFFER:BUFFER + h, BUFFER:BUFFER + w] = alpha >= 128
    ys, xs = np.indices(inside.shape)
    pts = np.stack([ys.ravel(), xs.ravel()], axis=1).astype(np.float32)
    ins, outs = pts[inside.ravel()], pts[~inside.ravel()]
    d = np.zeros(len(pts), dtype=np.float32)
    if len(ins) and len(outs):
        # each pixel's distance to the nearest pixel of the other side (glyphs are small: brute force is quick)
        to_in = np.sqrt(((outs[:, None, :] - ins[None, :, :]) ** 2).sum(-1)).min(1)
        to_out = np.sqrt(((ins[:, None, :] - outs[None, :, :]) ** 2).sum(-1)).min(1)
        d[~inside.ravel()] = to_in - 0.5
        d[inside.ravel()] = -(to_out - 0.5)
    elif not len(ins):
        d[:] = RADIUS
    v = 255 - 255 * (d / RADIUS + CUTOFF)
    out: np.ndarray = np.clip(np.rint(v), 0, 255).astype(np.uint8)
    return out


def _glyph(font: ImageFont.FreeTypeFont, cp: int) -> bytes:
    ch = chr(cp)
    advance = round(font.getlength(ch))
    x0, y0, x1, y1 = (int(v) for v in font.getbbox(ch))  # relative to the ascender line ("la" anchor)
    w, h = x1 - x0, y1 - y0
    ascent = int(font.getmetrics()[0])
    out = _field(1, cp)
    if w > 0 and h > 0:
        img = Image.new("L", (w, h), 0)
        ImageDraw.Draw(img).text((-x0, -y0), ch, font=font, fill=255)
        out += _field(2, _sdf(np.asarray(img)).tobytes())
    else:
        w = h = 0
    out += _field(3, w) + _field(4, h) + _field(5, x0, signed=True)
    out += _field(6, (ascent - y0) - ASCENDER, signed=True) + _field(7, advance)
    return out


def glyph_range(font_path: Path, fontstack: str, start: int, end: int) -> bytes:
    """The protobuf of code points start..end (a block of 256 on a multiple of 256) in `font_path`."""
    if start % RANGE_SIZE or end != start + RANGE_SIZE - 1 or not 0 <= start <= 0xFFFF:
        raise E.glyph_range("range", range=f"{start}-{end}")
    return _range(str(font_path), fontstack[:200], start)


@lru_cache(maxsize=64)
def _range(path: str, fontstack: str, start: int) -> bytes:
    font, cmap = _font(path)
    glyphs = b"".join(_field(3, _glyph(font, cp)) for cp in range(start, start + RANGE_SIZE)
                      if cp in cmap and (cp >= 32 or cp == 0x20))
    stack = _field(1, fontstack.encode()) + _field(2, f"{start}-{start + RANGE_SIZE - 1}".encode()) + glyphs
    return _field(1, stack)
