#!/usr/bin/env python3
"""Draws packaging/icon.png, the NuGet packages' icon: a white gatehouse (two towers, a wall, a portcullis) on
navy. Standard library only, and the same bytes on every run: python3 packaging/icon.py"""
import os
import struct
import zlib

SIZE = 128
SCALE = 4  # samples per pixel along each axis, for smooth edges
NAVY = (30, 58, 95)
WHITE = (245, 247, 250)


def in_rounded_square(x, y, radius=24.0):
    cx = min(max(x, radius), SIZE - radius)
    cy = min(max(y, radius), SIZE - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2


def in_rect(x, y, left, top, right, bottom):
    return left <= x < right and top <= y < bottom


def in_gate(x, y):
    """The arched gateway: a rectangle under a half circle."""
    return in_rect(x, y, 52, 72, 76, 106) or (y < 72 and (x - 64) ** 2 + (y - 72) ** 2 <= 12 ** 2)


def in_building(x, y):
    towers = in_rect(x, y, 18, 32, 46, 106) or in_rect(x, y, 82, 32, 110, 106)
    tower_merlons = any(in_rect(x, y, left, 22, left + 7, 32) for left in (18, 28.5, 39, 82, 92.5, 103))
    wall = in_rect(x, y, 46, 46, 82, 106)
    wall_merlons = any(in_rect(x, y, left, 38, left + 7, 46) for left in (49, 60.5, 72))
    windows = in_rect(x, y, 29, 48, 35, 60) or in_rect(x, y, 93, 48, 99, 60)
    solid = (towers or tower_merlons or wall or wall_merlons) and not windows
    if in_gate(x, y):
        # The portcullis: two bars down and one across, inside the gateway.
        return in_rect(x, y, 59, 60, 61.5, 106) or in_rect(x, y, 66.5, 60, 69, 106) or in_rect(x, y, 52, 80, 76, 82.5)
    return solid


def pixel(px, py):
    background = building = 0
    for sy in range(SCALE):
        for sx in range(SCALE):
            x = px + (sx + 0.5) / SCALE
            y = py + (sy + 0.5) / SCALE
            if in_rounded_square(x, y):
                if in_building(x, y):
                    building += 1
                else:
                    background += 1
    samples = SCALE * SCALE
    alpha = (background + building) / samples
    if alpha == 0:
        return (0, 0, 0, 0)
    white = building / (background + building)
    rgb = tuple(round(n + (w - n) * white) for n, w in zip(NAVY, WHITE))
    return rgb + (round(alpha * 255),)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def main():
    rows = b"".join(b"\x00" + bytes(v for px in range(SIZE) for v in pixel(px, py)) for py in range(SIZE))
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows, 9))
           + chunk(b"IEND", b""))
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "icon.png"), "wb") as f:
        f.write(png)


if __name__ == "__main__":
    main()
