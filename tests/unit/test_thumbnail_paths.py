"""Which decoder each format takes, and what the fast JPEG path keeps: orientation, sizes, files."""

from __future__ import annotations

import io
from typing import cast

import pytest
from PIL import Image, ImageOps

from chalicelib.covers import images
from chalicelib.covers.images import make_thumbnails

pytestmark = pytest.mark.unit  # pure logic: no AWS endpoint is started for these tests

QUADRANTS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0))  # top left, top right, bottom left, bottom right


def _save(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _quadrants_photo(orientation: int) -> bytes:
    """A 1600x800 JPEG whose centre square holds four coloured quadrants, with an EXIF orientation."""
    im = Image.new("RGB", (1600, 800), (128, 128, 128))
    for (x, y), colour in zip(((400, 0), (800, 0), (400, 400), (800, 400)), QUADRANTS, strict=True):
        im.paste(colour, (x, y, x + 400, y + 400))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(im, "JPEG", quality=95, exif=exif.tobytes())


def _corners(im: Image.Image) -> list[tuple[int, int, int]]:
    w, h = im.size
    rgb = im.convert("RGB")
    return [
        cast("tuple[int, int, int]", rgb.getpixel((x, y))) for y in (h // 4, 3 * h // 4) for x in (w // 4, 3 * w // 4)
    ]


def _close(seen: list[tuple[int, int, int]], expected: list[tuple[int, int, int]]) -> bool:
    return all(abs(a - b) <= 40 for s, e in zip(seen, expected, strict=True) for a, b in zip(s, e, strict=True))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_what_turning_the_whole_image_gives(orientation: int) -> None:
    """GIVEN a JPEG with orientation 1-8 WHEN thumbnailed (turned after the resize, not before)
    THEN each size of each format shows the quadrants where Pillow's exif_transpose of the full
    image, centre-cropped, puts them."""
    data = _quadrants_photo(orientation)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    side = min(upright.size)
    left, top = (upright.width - side) // 2, (upright.height - side) // 2
    expected = _corners(upright.crop((left, top, left + side, top + side)))
    assert len(set(expected)) == 4  # the reference itself tells the quadrants apart
    thumbs = make_thumbnails(data)
    assert {(t.name, t.width) for t in thumbs} == {
        ("200.jpg", 200),
        ("200.webp", 200),
        ("100.jpg", 100),
        ("100.webp", 100),
    }
    for thumb in thumbs:
        with Image.open(io.BytesIO(thumb.data)) as out:
            assert out.size == (thumb.width, thumb.height)
            assert _close(_corners(out), expected), (thumb.name, _corners(out), expected)


def test_large_jpeg_is_decoded_dct_scaled_by_pillow_and_turned_later() -> None:
    """GIVEN a 4000x3000 JPEG stored sideways THEN Pillow decodes it at 1/8 scale (500x375, no
    larger than needed for a 200 px square) and hands back the turn to apply, not a turned copy."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _save(Image.new("RGB", (4000, 3000), (10, 120, 10)), "JPEG", exif=exif.tobytes())
    assert not images._shrinks_on_load(data)
    decoded, turn = images._decode(data, largest=200, max_pixels=images.MAX_PIXELS)
    assert decoded.size == (500, 375)
    assert turn is Image.Transpose.ROTATE_270


@pytest.mark.parametrize(("fmt", "by_libvips"), [("JPEG", False), ("GIF", False), ("PNG", True), ("WEBP", True)])
def test_each_format_goes_to_its_decoder(fmt: str, by_libvips: bool) -> None:
    data = _save(Image.new("RGB", (300, 300), (200, 30, 30)), fmt)
    assert images._shrinks_on_load(data) is by_libvips
    thumbs = {t.name: t for t in make_thumbnails(data)}
    assert set(thumbs) == {"100.jpg", "100.webp", "200.jpg", "200.webp"}  # the same set either way
    for thumb in thumbs.values():
        with Image.open(io.BytesIO(thumb.data)) as out:
            assert _close(_corners(out), [(200, 30, 30)] * 4), (thumb.name, _corners(out))


def test_jpeg_thumbnails_are_baseline_with_optimized_tables() -> None:
    """Progressive scans double a small thumbnail's encode time for no saving: baseline JPEGs."""
    thumbs = make_thumbnails(_quadrants_photo(1))
    for thumb in (t for t in thumbs if t.content_type == "image/jpeg"):
        with Image.open(io.BytesIO(thumb.data)) as out:
            assert not out.info.get("progressive") and not out.info.get("progression")


def test_the_small_size_is_the_large_one_halved() -> None:
    """GIVEN the 200 px square THEN the 100 px square is its 2x2 average (what `_shrink` makes
    from an exact half), so both sizes show the same picture."""
    large = Image.effect_noise((200, 200), 60).convert("RGB")
    small = images._shrink(large, (0, 0, 200, 200), 100)
    assert small.size == (100, 100)
    assert small.tobytes() == large.reduce(2).tobytes()
    other = images._shrink(large, (0, 0, 200, 200), 150)  # not an exact half: a filtered resize
    assert other.size == (150, 150)
