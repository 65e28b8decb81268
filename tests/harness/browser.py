"""A real headless browser (Chromium, from the system's packages) for pages we generate: the
DOM after parsing, and a screenshot decoded to pixels (a small PNG reader, stdlib only).

Chromium runs with every network path closed (no proxy reachable, every host unresolvable),
so a page that needed the network would show it. Where Chromium is not installed,
`find_chromium()` is None and the test skips saying so (`make setup-test` installs it with
apt-get where it runs as root)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

TIMEOUT = 60
OFFLINE = (
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--disable-background-networking",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(chromium: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="chinwag-chromium-") as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *OFFLINE,
            *args,
        ]
        return subprocess.run(command, capture_output=True, timeout=TIMEOUT, check=True)


def dump_dom(chromium: str, page: Path) -> str:
    return _run(chromium, "--dump-dom", page.resolve().as_uri()).stdout.decode()


def screenshot(chromium: str, page: Path, size: tuple[int, int]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="chinwag-shot-") as directory:
        out = Path(directory) / "shot.png"
        _run(
            chromium,
            f"--screenshot={out}",
            f"--window-size={size[0]},{size[1]}",
            "--hide-scrollbars",
            page.resolve().as_uri(),
        )
        return out.read_bytes()


def png_pixels(data: bytes) -> list[list[tuple[int, int, int]]]:
    """The RGB rows of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, chunks, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks += body
        offset += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0, "unsupported PNG"
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(chunks)
    stride = width * channels
    rows: list[list[tuple[int, int, int]]] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + best) & 0xFF
        rows.append([(line[x], line[x + 1], line[x + 2]) for x in range(0, stride, channels)])
        previous = line
    return rows


def count_color(pixels: list[list[tuple[int, int, int]]], rgb: tuple[int, int, int]) -> int:
    """Pixels within a small distance of `rgb` (antialiasing aside)."""
    return sum(
        1
        for row in pixels
        for pixel in row
        if all(abs(a - b) <= 6 for a, b in zip(pixel, rgb, strict=True))
    )
