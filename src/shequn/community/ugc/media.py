"""Images for posts and reviews: checked with Pillow, re-encoded without metadata, stored by content hash."""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shequn.community.ugc.errors import ImageTooLarge, MediaNotFound, NotAnImage, UnknownMedia
from shequn.community.ugc.models import Media
from shequn.core.settings import get_settings

MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 6000  # a 36-megapixel phone photo fits; anything bigger is refused before decoding
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
EXTENSIONS = {ext: ctype for ctype, ext in FORMATS.values()}
SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class CleanImage:
    """A validated image, ready to store."""

    data: bytes
    content_type: str
    ext: str
    width: int
    height: int


def limits() -> dict[str, int]:
    """The limits, as error parameters and for the upload forms."""
    return {"limit_mb": MAX_BYTES // (1024 * 1024), "max_side": MAX_SIDE}


def clean_image(data: bytes) -> CleanImage:
    """Check an upload is a real JPEG/PNG/WebP within limits; re-encode it to drop EXIF (GPS) and other metadata."""
    if len(data) > MAX_BYTES:
        raise ImageTooLarge(limit_mb=MAX_BYTES // (1024 * 1024), max_side=MAX_SIDE)
    if not data:
        raise NotAnImage()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            fmt = probe.format or ""
            if fmt not in FORMATS:
                raise NotAnImage()
            if max(probe.size) > MAX_SIDE:
                raise ImageTooLarge(limit_mb=MAX_BYTES // (1024 * 1024), max_side=MAX_SIDE)
            probe.verify()  # structure check; the image must be reopened after verify()
            decoded = Image.open(io.BytesIO(data))
            decoded.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        if isinstance(exc, Image.DecompressionBombWarning):
            raise ImageTooLarge(limit_mb=MAX_BYTES // (1024 * 1024), max_side=MAX_SIDE) from None
        raise NotAnImage() from None
    img: Image.Image = ImageOps.exif_transpose(decoded)  # keep the photo upright once the orientation tag is gone
    out = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(out, format="JPEG", quality=88, optimize=True)
    elif fmt == "PNG":
        img.save(out, format="PNG", optimize=True)
    else:
        img.save(out, format="WEBP", quality=88)
    content_type, ext = FORMATS[fmt]
    return CleanImage(out.getvalue(), content_type, ext, img.width, img.height)


def _path(workspace_id: int, sha: str, ext: str) -> Path:
    return get_settings().var_dir / "media" / str(workspace_id) / sha[:2] / f"{sha}.{ext}"


def store_image(
    session: Session, *, workspace_id: int, data: bytes, customer_id: int | None = None, operator_id: int | None = None
) -> Media:
    """Validate and store an image once per workspace (the same photo uploaded twice is one row, one file)."""
    img = clean_image(data)
    sha = hashlib.sha256(img.data).hexdigest()
    existing = get_media(session, workspace_id=workspace_id, sha256=sha)
    if existing is not None:
        return existing
    path = _path(workspace_id, sha, img.ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():  # write-then-rename: a reader never sees half a file
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(img.data)
        tmp.replace(path)
    row = Media(
        workspace_id=workspace_id,
        sha256=sha,
        content_type=img.content_type,
        width=img.width,
        height=img.height,
        bytes=len(img.data),
        customer_id=customer_id,
        operator_id=operator_id,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # the same photo stored by a concurrent request
        found = get_media(session, workspace_id=workspace_id, sha256=sha)
        assert found is not None
        return found
    return row


def get_media(session: Session, *, workspace_id: int, sha256: str) -> Media | None:
    """An image of this workspace by hash, or None."""
    if not SHA_RE.match(sha256 or ""):
        return None
    return session.scalar(select(Media).where(Media.workspace_id == workspace_id, Media.sha256 == sha256))


def media_file(session: Session, *, workspace_id: int, sha256: str) -> tuple[Path, str]:
    """The file and content type of an image (MediaNotFound when unknown here)."""
    row = get_media(session, workspace_id=workspace_id, sha256=sha256)
    if row is None:
        raise MediaNotFound()
    ext = FORMATS[next(k for k, v in FORMATS.items() if v[0] == row.content_type)][1]
    path = _path(workspace_id, row.sha256, ext)
    if not path.exists():
        raise MediaNotFound()
    return path, row.content_type


def check_refs(session: Session, *, workspace_id: int, refs: list[str]) -> list[str]:
    """The photo references of a post or review, de-duplicated; each must be an image of this workspace."""
    out: list[str] = []
    for ref in refs:
        if ref in out:
            continue
        if get_media(session, workspace_id=workspace_id, sha256=ref) is None:
            raise UnknownMedia(details=[{"field": "media", "message": f"unknown image {ref[:64]}"}])
        out.append(ref)
    return out


def media_url(workspace_slug: str, sha256: str) -> str:
    """Where an image is served (public: the hash is unguessable and the content is meant to be shown)."""
    return f"/api/v1/public/{workspace_slug}/media/{sha256}"
