"""Sample images for the examples in README.md and docs/: `python -m devtools.samples [DIR]` (or `make sample-images`).

Writes `cover.jpg` (a small JPEG for an inline cover: its base64 must fit in one shell
argument, 128 KiB), `photo.jpg` (a 12 MP JPEG of a few MB, a phone photo, for the direct S3
upload) and `new.png` (a PNG cover to replace it), drawn with Pillow (already a dependency),
so no example needs a file nobody supplies.
"""

from __future__ import annotations

import argparse
import io
import random
from pathlib import Path

from PIL import Image, ImageDraw

SAMPLES = {"cover.jpg": (400, 600, "JPEG"), "photo.jpg": (4000, 3000, "JPEG"), "new.png": (400, 600, "PNG")}


def image_bytes(width: int, height: int, kind: str, seed: int = 1) -> bytes:
    """A picture with shapes and noise (noise keeps a JPEG from compressing to nothing)."""
    rng = random.Random(seed)
    picture = Image.effect_noise((width, height), 40).convert("RGB")
    tint = Image.new("RGB", (width, height), tuple(rng.randrange(60, 200) for _ in range(3)))
    picture = Image.blend(picture, tint, 0.6)
    draw = ImageDraw.Draw(picture)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(min(width, height) // 20, min(width, height) // 4)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    picture.save(out, kind, **({"quality": 85} if kind == "JPEG" else {}))
    return out.getvalue()


def write_samples(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for seed, (name, (width, height, kind)) in enumerate(SAMPLES.items(), 1):
        path = directory / name
        path.write_bytes(image_bytes(width, height, kind, seed))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default=".", type=Path)
    args = parser.parse_args(argv)
    for path in write_samples(args.directory):
        print(f"{path}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
