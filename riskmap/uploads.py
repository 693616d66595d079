"""Evidence uploads (status-change photos and PDFs): checked by content, stored by hash.

The one checking function the editing paths call before `Store.write_attachment`:

* **type by content**, never by the file name or the browser's claimed type: the leading
  bytes are matched with `filetype` (magic numbers), then the file is opened by the format's
  own parser: Pillow verifies an image and decodes it in full (a PNG/JPEG header glued to
  anything else, or a truncated photo, fails); a PDF must start with ``%PDF-`` and end
  with ``%%EOF``;
* **no active content**: SVG, HTML, XML, scripts and office files are refused outright
  (they are not in `EVIDENCE_MIME`); a PDF that declares JavaScript, launch actions,
  embedded files, rich media or XFA forms is refused (ISO 32000-1 §12.6.4.16, §12.6.4.5,
  §7.11.4, §13.6, §12.7.8), also when the name is hex-escaped (``/J#61vaScript``) or sits in
  a compressed object stream;
* **size**: at most `max_mb` MiB of file and `MAX_IMAGE_PIXELS` pixels (a small PNG that
  decompresses to gigabytes is refused before decoding);
* **stored under a generated name** ``<sha256>.<ext>`` (`store_upload`); the user's file
  name is kept only as display text (`display_name`), never as a path;
* **served** only as a download (`download_mime`: the sniffed ``image/jpeg``,
  ``image/png``, ``application/pdf``, else ``application/octet-stream``; Streamlit's
  ``st.download_button`` sends ``Content-Disposition: attachment``), never as HTML or SVG.

Sources: OWASP File Upload Cheat Sheet (allow-list by content, generated names, size
limits, ``Content-Disposition: attachment``).
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING

import filetype

from riskmap.errors import RiskmapError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from riskmap.store import Store

EVIDENCE_MIME = {"jpg": "image/jpeg", "png": "image/png", "pdf": "application/pdf"}
"""Evidence types accepted (extension → MIME type recognised from the content)."""
DEFAULT_MAX_MB = 10.0
"""Default largest evidence file, MiB."""
MAX_IMAGE_PIXELS = 50_000_000
"""Largest image accepted, pixels (a 50-megapixel photo; Pillow's own bomb limit is 89 M)."""
MAX_PDF_INFLATED = 64 * 2**20
"""Most bytes inflated while looking into a PDF's compressed streams."""
_PDF_ACTIVE = (b"/JavaScript", b"/JS", b"/Launch", b"/EmbeddedFile", b"/RichMedia", b"/XFA")
_PDF_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_STREAM = re.compile(rb"stream\r?\n(.*?)endstream", re.DOTALL)
_PDF_NAME_END = rb"(?=[\s/<>\[\]()%{}]|$)"


class UploadError(RiskmapError, ValueError):
    """An uploaded file is refused (empty, too large, wrong type, active content)."""


@dataclass(frozen=True)
class CheckedUpload:
    """
    An upload that passed `check_upload`.

    Attributes
    ----------
    ext
        ``"jpg"``, ``"png"`` or ``"pdf"`` (from the content).
    mime
        The matching MIME type (`EVIDENCE_MIME`).
    size
        Bytes.
    sha256
        Hex digest of the bytes (the stored name is ``<sha256>.<ext>``).
    display_name
        The user's file name made safe to show (`display_name`); never used as a path.
    """

    ext: str
    mime: str
    size: int
    sha256: str
    display_name: str


def display_name(filename: str, *, max_chars: int = 100) -> str:
    r"""
    Return the last part of a user's file name without control or format characters.

    ``"../../x\\u202egpj.exe"`` becomes ``"xgpj.exe"`` (the right-to-left override that
    would show it as ``exe.jpg`` is dropped). For showing only: never a path.
    """
    name = re.split(r"[\\/]", str(filename))[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return name.strip()[:max_chars] or "证明材料"


def _pdf_active_content(data: bytes) -> str | None:
    """Return the first active-content name found in a PDF (raw or inflated), else None."""
    chunks = [data]
    budget = MAX_PDF_INFLATED
    for match in _PDF_STREAM.finditer(data):
        if budget <= 0:
            break
        inflater = zlib.decompressobj()
        try:
            inflated = inflater.decompress(match.group(1), budget)
        except zlib.error:
            continue  # not Flate (image data, other filters): nothing to look into
        budget -= len(inflated)
        chunks.append(inflated)
    for chunk in chunks:
        plain = _PDF_NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), chunk)
        for name in _PDF_ACTIVE:
            if re.search(re.escape(name) + _PDF_NAME_END, plain):
                return name.decode()
    return None


_PIL_FLAG_LOCK = threading.Lock()


@contextmanager
def _strict_pillow() -> Iterator[None]:
    """Decode with ``ImageFile.LOAD_TRUNCATED_IMAGES`` off, whoever turned it on.

    WeasyPrint sets that process-wide flag to ``True`` when it is imported (the paper
    output uses it), after which Pillow pads a truncated JPEG instead of failing; the
    evidence check must see the truncation. The flag is restored afterwards.
    """
    from PIL import ImageFile  # noqa: PLC0415 - Pillow comes with Streamlit

    with _PIL_FLAG_LOCK:
        before = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before


def _check_image(data: bytes, label: str) -> None:
    from PIL import Image  # noqa: PLC0415 - Pillow comes with Streamlit

    too_big = f"{label}: 图片像素过多，超过上限 {MAX_IMAGE_PIXELS // 1_000_000} 百万像素"
    try:
        with warnings.catch_warnings(), _strict_pillow():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(BytesIO(data)) as img:
                width, height = img.size
                if width * height <= MAX_IMAGE_PIXELS:
                    img.verify()  # structure and checksums (PNG CRCs)
            if width * height <= MAX_IMAGE_PIXELS:
                with Image.open(BytesIO(data)) as img:
                    img.load()  # decode it all: a truncated JPEG passes verify() alone
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UploadError(too_big) from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for broken files
        msg = f"{label}: 图片文件已损坏或不完整，无法读取 ({type(exc).__name__})"
        raise UploadError(msg) from None
    if width * height > MAX_IMAGE_PIXELS:
        msg = f"{too_big}（{width}×{height}）"
        raise UploadError(msg)


def _check_pdf(data: bytes, label: str) -> None:
    if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-2048:]:
        msg = f"{label}: PDF 文件不完整（缺少文件头或结尾 %%EOF）"
        raise UploadError(msg)
    if (name := _pdf_active_content(data)) is not None:
        msg = (
            f"{label}: PDF 含有脚本、启动动作或嵌入文件（{name}），不能作为证明材料；"
            "请另存为普通 PDF 或拍照上传"
        )
        raise UploadError(msg)


def check_upload(
    data: bytes,
    *,
    filename: str = "",
    allowed: Iterable[str] = tuple(EVIDENCE_MIME),
    max_mb: float = DEFAULT_MAX_MB,
) -> CheckedUpload:
    """
    Check an evidence file by its content and size.

    Parameters
    ----------
    data
        The file's bytes as uploaded.
    filename
        The user's file name, for messages and `CheckedUpload.display_name` only; its
        extension is ignored.
    allowed
        Accepted types, keys of `EVIDENCE_MIME` (e.g. ``("jpg", "png", "pdf")``).
    max_mb
        Largest file, MiB (> 0).

    Returns
    -------
    checked
        Type, MIME, size, SHA-256 and display name.

    Raises
    ------
    UploadError
        Empty; larger than `max_mb`; a type not in `allowed` (by content: a page renamed
        ``.jpg`` or an SVG is refused); an image that is broken or over `MAX_IMAGE_PIXELS`;
        a PDF that is truncated or carries active content. The Chinese message names the
        file.
    ValueError
        When `allowed` names a type not in `EVIDENCE_MIME` (a programming error).
    """
    allowed = tuple(allowed)
    if unknown := [t for t in allowed if t not in EVIDENCE_MIME]:
        msg = f"unknown evidence types {unknown}; known: {sorted(EVIDENCE_MIME)}"
        raise ValueError(msg)
    shown = display_name(filename)
    if not data:
        msg = f"{shown}: 文件为空"
        raise UploadError(msg)
    if len(data) > max_mb * 2**20:
        msg = f"{shown}: 文件 {len(data) / 2**20:.1f} MB，超过上限 {max_mb:g} MB"
        raise UploadError(msg)
    kind = filetype.guess(data[:8192])
    mime = kind.mime if kind is not None else "未知"
    ext = next((t for t in allowed if EVIDENCE_MIME[t] == mime), None)
    if ext is None:
        accepted = "、".join(t.upper() for t in allowed)
        msg = (
            f"{shown}: 文件类型 {mime} 不被接受；证明材料应为 {accepted}"
            "（按文件内容判断，不看扩展名）"
        )
        raise UploadError(msg)
    if ext == "pdf":
        _check_pdf(data, shown)
    else:
        _check_image(data, shown)
    return CheckedUpload(ext, mime, len(data), hashlib.sha256(data).hexdigest(), shown)


def store_upload(
    store: Store,
    data: bytes,
    *,
    filename: str = "",
    allowed: Iterable[str] = tuple(EVIDENCE_MIME),
    max_mb: float = DEFAULT_MAX_MB,
) -> tuple[str, CheckedUpload]:
    """
    Check an evidence file (`check_upload`) and store it under its generated name.

    Returns
    -------
    name, checked
        The attachment name (``<sha256>.<ext>``, from `Store.write_attachment`) and the
        check's result; record ``checked.display_name`` beside the name if it is shown.

    Raises
    ------
    UploadError
        As `check_upload`; nothing is stored then.
    """
    checked = check_upload(data, filename=filename, allowed=allowed, max_mb=max_mb)
    return store.write_attachment(data, suffix=checked.ext), checked


_STORED_NAME = re.compile(r"^[0-9a-f]{64}\.([a-z0-9]{1,8})$")


def download_mime(name: str) -> str:
    """
    Return the MIME type to serve a stored attachment with.

    ``image/jpeg``, ``image/png`` or ``application/pdf`` for a generated name of those
    types, else ``application/octet-stream`` (never ``text/html``, ``image/svg+xml`` or
    anything a browser would run). Serve it as a download: ``st.download_button`` sends
    ``Content-Disposition: attachment``.
    """
    match = _STORED_NAME.match(str(name))
    return EVIDENCE_MIME.get(match.group(1), "application/octet-stream") if match else (
        "application/octet-stream"
    )
