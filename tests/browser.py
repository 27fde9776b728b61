"""Headless Chromium for page tests: Debian's /usr/bin/chromium, no network."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path

from .conftest import skip_or_fail

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def _chromium() -> str:
    path = os.environ.get("CROSSROADS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        msg = "Chromium not found: `apt-get install -y chromium` (Debian) for the browser test"
        skip_or_fail(msg)
    return path


def _png_pixels(png: bytes) -> tuple[int, int, bytes]:
    """(width, height, decompressed scanlines) of a PNG, stdlib only."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, bytes per pixel, unfiltered RGB(A) rows) of an 8-bit PNG."""
    width, height, raw = _png_pixels(png)
    stride = len(raw) // height
    bpp = (stride - 1) // width
    rows: list[bytes] = []
    prev = bytearray(stride - 1)
    for y in range(height):
        kind, line = raw[y * stride], bytearray(raw[y * stride + 1 : (y + 1) * stride])
        n = len(line)
        if kind == 1:
            for i in range(bpp, n):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(n):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(n):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


def _region(
    rows: list[bytes], bpp: int, x0: int, y0: int, x1: int, y1: int
) -> list[tuple[int, ...]]:
    return [tuple(row[x * bpp : x * bpp + 3]) for row in rows[y0:y1] for x in range(x0, x1)]


def _near(pixels: list[tuple[int, ...]], hex_colour: str, tol: int = 40) -> int:
    want = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(1 for p in pixels if all(abs(a - b) <= tol for a, b in zip(p, want, strict=True)))
