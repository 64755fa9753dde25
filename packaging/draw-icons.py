#!/usr/bin/env python3
"""Draws the add-on's icon.png (128x128) and logo.png (250x100).

Only the Python standard library is used: shapes are described by signed
distance functions, sampled 4x4 per pixel for smooth edges, and written as
8-bit RGBA PNG with zlib. Run from the repository root:

    python3 packaging/draw-icons.py
"""

import math
import struct
import zlib

SAMPLES = 4  # per axis and pixel

BLUE = (3, 169, 244)
DARK = (38, 50, 56)
DISPLAY = (200, 230, 201)
WHITE = (255, 255, 255)
AMBER = (255, 179, 0)


class Canvas:
    """An RGBA image that shapes are painted onto, back to front."""

    def __init__(self, width, height):
        self.width = width
        self.height = height
        self.px = [[(0.0, 0.0, 0.0, 0.0)] * width for _ in range(height)]

    def paint(self, inside, bbox, color, alpha=1.0):
        """Paints where inside(x, y) holds, within bbox (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = bbox
        step = 1.0 / SAMPLES
        for py in range(max(0, int(y0)), min(self.height, int(math.ceil(y1)) + 1)):
            for px in range(max(0, int(x0)), min(self.width, int(math.ceil(x1)) + 1)):
                hits = 0
                for sy in range(SAMPLES):
                    for sx in range(SAMPLES):
                        if inside(px + (sx + 0.5) * step, py + (sy + 0.5) * step):
                            hits += 1
                if hits:
                    self._blend(px, py, color, alpha * hits / SAMPLES**2)

    def _blend(self, x, y, color, a):
        r, g, b, da = self.px[y][x]
        out = a + da * (1 - a)
        mix = [(c * a + d * da * (1 - a)) / out for c, d in zip(color, (r, g, b))]
        self.px[y][x] = (mix[0], mix[1], mix[2], out)

    def round_rect(self, x, y, w, h, radius, color):
        def inside(px, py):
            qx = max(abs(px - (x + w / 2)) - (w / 2 - radius), 0.0)
            qy = max(abs(py - (y + h / 2)) - (h / 2 - radius), 0.0)
            return qx * qx + qy * qy <= radius * radius

        self.paint(inside, (x, y, x + w, y + h), color)

    def circle(self, cx, cy, radius, color):
        def inside(px, py):
            return (px - cx) ** 2 + (py - cy) ** 2 <= radius * radius

        self.paint(inside, (cx - radius, cy - radius, cx + radius, cy + radius), color)

    def line(self, ax, ay, bx, by, width, color):
        """A stroke with round caps from (ax, ay) to (bx, by)."""
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy or 1.0
        half = width / 2

        def inside(px, py):
            t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
            qx, qy = px - (ax + t * dx), py - (ay + t * dy)
            return qx * qx + qy * qy <= half * half

        bbox = (min(ax, bx) - half, min(ay, by) - half, max(ax, bx) + half, max(ay, by) + half)
        self.paint(inside, bbox, color)

    def png(self):
        raw = bytearray()
        for row in self.px:
            raw.append(0)  # filter type: none
            for r, g, b, a in row:
                raw += bytes((round(r), round(g), round(b), round(a * 255)))

        def chunk(kind, data):
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 6, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
            + chunk(b"IEND", b"")
        )


# 5x7 dot-matrix glyphs, as on a meter's display.
GLYPHS = {
    "M": ["10001", "11011", "10101", "10101", "10001", "10001", "10001"],
    "B": ["11110", "10001", "10001", "11110", "10001", "10001", "11110"],
    "U": ["10001", "10001", "10001", "10001", "10001", "10001", "01110"],
    "S": ["01111", "10000", "10000", "01110", "00001", "00001", "11110"],
    "-": ["00000", "00000", "00000", "11111", "00000", "00000", "00000"],
}


def dot_text(canvas, text, x, y, dot, color):
    """Writes text in dot-matrix glyphs; dot is the pitch of one dot."""
    for i, ch in enumerate(text):
        for row, bits in enumerate(GLYPHS[ch]):
            for col, bit in enumerate(bits):
                if bit == "1":
                    cx = x + (i * 6 + col + 0.5) * dot
                    cy = y + (row + 0.5) * dot
                    canvas.circle(cx, cy, dot * 0.42, color)


def meter(canvas, x, y, size):
    """A meter on a two-wire bus: body, display, status light, bus taps."""
    s = size / 128.0
    # The bus: two wires along the bottom, tapped by the meter.
    canvas.line(x + 6 * s, y + 112 * s, x + 122 * s, y + 112 * s, 5 * s, DARK)
    canvas.line(x + 6 * s, y + 122 * s, x + 122 * s, y + 122 * s, 5 * s, DARK)
    canvas.line(x + 52 * s, y + 96 * s, x + 52 * s, y + 112 * s, 5 * s, DARK)
    canvas.line(x + 76 * s, y + 96 * s, x + 76 * s, y + 122 * s, 5 * s, DARK)
    canvas.circle(x + 52 * s, y + 112 * s, 5 * s, DARK)
    canvas.circle(x + 76 * s, y + 122 * s, 5 * s, DARK)
    # Body and display.
    canvas.round_rect(x + 14 * s, y + 8 * s, 100 * s, 92 * s, 16 * s, BLUE)
    canvas.round_rect(x + 24 * s, y + 22 * s, 80 * s, 34 * s, 6 * s, DARK)
    for i in range(5):
        canvas.round_rect(x + (29 + i * 15) * s, y + 27 * s, 11 * s, 24 * s, 2 * s, DISPLAY)
    # Status light and the optical interface ring.
    canvas.circle(x + 40 * s, y + 78 * s, 8 * s, AMBER)
    canvas.circle(x + 84 * s, y + 78 * s, 11 * s, WHITE)
    canvas.circle(x + 84 * s, y + 78 * s, 6 * s, DARK)


def main():
    icon = Canvas(128, 128)
    meter(icon, 0, 0, 128)
    with open("icon.png", "wb") as f:
        f.write(icon.png())

    logo = Canvas(250, 100)
    meter(logo, 2, 6, 88)
    logo.round_rect(98, 22, 148, 56, 10, DARK)
    dot_text(logo, "M-BUS", 108, 29, 4.4, DISPLAY)
    logo.line(108, 67, 236, 67, 3, AMBER)
    with open("logo.png", "wb") as f:
        f.write(logo.png())


if __name__ == "__main__":
    main()
