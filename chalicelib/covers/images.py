"""Cover thumbnails: orientation fixed, cropped to fill a square, JPEG and WebP.

Pillow decodes JPEG (a DCT-scaled `draft` decode) and GIF; libvips (pyvips) decodes PNG and
WebP, which Pillow can only decode at full size: libvips shrinks WebP on load (libwebp's
scaled decode, which Pillow's WebP plugin does not expose) and decodes PNG with libspng, about
twice as fast as Pillow's zlib path for the same pixels. Both hand a Pillow image to the same
resize and encoders, so every format gives the same sizes, modes and files. JPEG stays on
Pillow: both reach libjpeg-turbo's 1/8 DCT-scaled decode, whose Huffman decoding is most of a
thumbnail's time, and Pillow drives it with less around it than libvips' pipeline.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image, UnidentifiedImageError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
MAX_PIXELS = 50_000_000
REDUCING_GAP = 2.0
#: Pillow's own `thumbnail()` filter. A decoded JPEG is at most ~4.5x the largest thumbnail
#: (DCT-scaled) and PNG/WebP arrive at its size (shrunk on load), so Lanczos' wider kernel buys
#: nothing visible for half as much time again.
RESAMPLE = Image.Resampling.BICUBIC
WEBP_METHOD = 0
#: EXIF orientation -> the transpose that makes the stored pixels upright (the table of
#: Pillow's `ImageOps.exif_transpose`, applied here to the small thumbnail, not the decoded image).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
#: Leading bytes of the formats libvips decodes faster than Pillow (PNG; WebP is RIFF....WEBP).
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class UnreadableImage(ValueError):
    """The bytes are not an image we can (or may) decode."""


@dataclass(frozen=True)
class Thumbnail:
    """One encoded thumbnail."""

    name: str
    data: bytes
    content_type: str
    width: int
    height: int


def _center_box(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _normalise_mode(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if im.mode == "F":
        return im.convert("L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA")
    if im.mode != "RGB":
        return im.convert("RGB")
    return im


def _shrinks_on_load(data: bytes) -> bool:
    return data.startswith(PNG_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _decode_vips(data: bytes, max_pixels: int, size: int, scales: tuple[int, ...]) -> Image.Image:
    """PNG and WebP through libvips: decoded (shrunk on load where the format allows) straight
    to the largest square thumbnail, upright, 8-bit sRGB with its alpha, as a Pillow image."""
    import pyvips  # type: ignore[import-untyped]  # imported on first use: only PNG/WebP covers pay for it

    pyvips.cache_set_max(0)  # one image per call: libvips' operation cache would only hold memory
    try:
        header = pyvips.Image.new_from_buffer(data, "")  # reads the header only
        width, height = header.width, header.height
        if width * height > max_pixels:
            raise UnreadableImage(f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")
        side = sides_for(min(width, height), size, scales)[0]
        # fail_on=error: a truncated or corrupt file is refused, as Pillow refuses it, not half grey.
        thumb = pyvips.Image.thumbnail_buffer(
            data, side, height=side, crop="centre", size="down", option_string="fail_on=error"
        )
        thumb = thumb.colourspace("srgb")  # grey, 16-bit and palette sources become 8-bit RGB(A)
        mode = "RGBA" if thumb.bands == 4 else "RGB"
        if thumb.bands not in (3, 4) or thumb.format != "uchar":
            raise UnreadableImage(f"not a readable image: {thumb.bands} bands of {thumb.format}")
        return Image.frombytes(mode, (thumb.width, thumb.height), thumb.write_to_memory())
    except pyvips.Error as exc:
        first = str(exc).strip().splitlines()[-1].strip()[:200]
        raise UnreadableImage(f"corrupt image: {first}") from None


def _decode(data: bytes, largest: int, max_pixels: int) -> tuple[Image.Image, Image.Transpose | None]:
    """JPEG and GIF through Pillow, as stored (not yet upright), with the transpose that makes
    them upright: a centred square turned is the turned image's centred square, so the caller
    turns each small thumbnail instead of the whole decoded image."""
    im = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    width, height = im.size
    if width * height > max_pixels:
        raise UnreadableImage(f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")
    if im.format == "JPEG":
        scale = min(width, height) / largest
        if scale > 1:
            im.draft("RGB", (int(width / scale) + 1, int(height / scale) + 1))
    im.seek(0)
    im.load()
    return _normalise_mode(im), UPRIGHT.get(im.getexif().get(ExifTags.Base.Orientation, 1))


def _encode(im: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        if im.mode == "RGBA":
            background = Image.new("RGB", im.size, (255, 255, 255))
            background.paste(im, mask=im.getchannel("A"))
            im = background
        # Not progressive: on a 100-200 px thumbnail its extra scans double the encode time and
        # save ~1.5 % at 200 px (add 5 % at 100 px); optimized Huffman tables alone save 4-9 %.
        im.save(out, "JPEG", quality=85, optimize=True)
    else:
        # method 0 instead of Pillow's default 4: a third of the encode time (the largest part of
        # a JPEG's set after its decode) for ~12 % larger files of the same PSNR, still smaller
        # than the JPEG thumbnail (bench/README.md, thumbnails).
        im.save(out, "WEBP", quality=80, method=WEBP_METHOD)
    return out.getvalue()


def _shrink(im: Image.Image, box: tuple[int, int, int, int], side: int) -> Image.Image:
    """The `box` of `im` as a `side` square: a 2x2 average when it halves an already resized
    square exactly (the 100 px from the 200 px), else a filtered resize."""
    if box == (0, 0, side * 2, side * 2) and im.size == (side * 2, side * 2):
        return im.reduce(2)
    return im.resize((side, side), RESAMPLE, box=box, reducing_gap=REDUCING_GAP)


def sides_for(short_side: int, size: int, scales: tuple[int, ...]) -> list[int]:
    """The square sizes to make, largest first, never upscaling.

    The standard sizes (`size` times each scale) up to the source's short side; a source
    smaller than the smallest standard size gets one thumbnail of its own short side.
    """
    standard = sorted({size * scale for scale in scales}, reverse=True)
    fitting = [side for side in standard if side <= short_side]
    return fitting or [max(1, short_side)]


def make_thumbnails(
    data: bytes, size: int = 100, scales: tuple[int, ...] = (1, 2), max_pixels: int = MAX_PIXELS
) -> list[Thumbnail]:
    """Square thumbnails as JPEG and WebP, centre-cropped to fill, none larger than the source."""
    largest = size * max(scales)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if _shrinks_on_load(data):
                im, upright = _decode_vips(data, max_pixels, size, scales), None  # libvips turns it
            else:
                im, upright = _decode(data, largest, max_pixels)
            source, box = im, _center_box(*im.size)
            thumbs: list[Thumbnail] = []
            for side in sides_for(min(im.size), size, scales):
                # Largest first; each smaller size is derived from the one before (a small square,
                # not the decoded image again).
                resized = _shrink(source, box, side)
                if upright is not None and source is im:  # the largest; the rest derive from it upright
                    resized = resized.transpose(upright)
                source, box = resized, (0, 0, side, side)
                for fmt, ext, mime in (("JPEG", "jpg", "image/jpeg"), ("WEBP", "webp", "image/webp")):
                    thumbs.append(Thumbnail(f"{side}.{ext}", _encode(resized, fmt), mime, side, side))
            return thumbs
    except UnreadableImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImage(f"not a readable image: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise UnreadableImage(f"corrupt image: {type(exc).__name__}: {exc}") from None
