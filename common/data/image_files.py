"""Reading one image file, with one error line naming the file when it cannot be read.

Every loader of image files goes through `open_rgb` (the small-image decoder, the large-image
ImageFolder and the FGVR list data sets), so a corrupt, truncated or foreign file stops the run
with `UnreadableImageError` naming it, instead of PIL's traceback.

A DataLoader worker's exception reaches the main process re-created from its type with the
worker's whole traceback as its message (torch's `ExceptionWrapper.reraise`);
`UnreadableImageError` recovers its own one-line message from that text, so the user still
sees one line naming the file.
"""

from __future__ import annotations

from PIL import Image, UnidentifiedImageError

from common.errors import DataError

TRACEBACK_MARK = "Traceback (most recent call last)"


def original_message(text: str, type_name: str) -> str:
    """The `<type_name>: message` line at the end of a formatted traceback, else `text`."""
    if TRACEBACK_MARK not in text:
        return text
    marker = f"{type_name}: "
    for line in reversed(text.strip().splitlines()):
        if marker in line:
            return line.split(marker, 1)[1].strip()
    return text


class UnreadableImageError(DataError):
    """An image file that PIL cannot open or decode; the message names the file."""

    def __init__(self, message: str) -> None:
        super().__init__(original_message(str(message), type(self).__name__))


def unreadable(path: str, err: BaseException) -> UnreadableImageError:
    """The error for `path`, with PIL's reason on the same line."""
    if isinstance(err, UnidentifiedImageError):
        reason = "PIL cannot identify it as an image"  # PIL's text repeats the path
    else:
        reason = " ".join(str(err).split()) or type(err).__name__
    return UnreadableImageError(
        f"cannot read image file {path} ({reason}): the file is corrupt or not an image; "
        "replace it or delete it from the data set"
    )


def open_rgb(path: str) -> Image.Image:
    """The image at `path`, fully decoded and converted to RGB (greyscale, palette, CMYK)."""
    try:
        with open(path, "rb") as fh, Image.open(fh) as image:
            return image.convert("RGB")
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... for bad files
        raise unreadable(path, err) from None


def image_size(path: str) -> tuple[int, int]:
    """(width, height) of the image at `path`, read from its header."""
    try:
        with Image.open(path) as image:
            return image.size
    except Exception as err:
        raise unreadable(path, err) from None
