"""Evidence uploads: type by content, size and pixel limits, no active content, generated names."""

from __future__ import annotations

import hashlib
import io
import zlib

import matplotlib as mpl
import pytest

mpl.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image

from riskmap.settings import Settings
from riskmap.store.files import FileStore
from riskmap.uploads import (
    MAX_IMAGE_PIXELS,
    UploadError,
    check_upload,
    display_name,
    download_mime,
    store_upload,
)


def _image(fmt: str, size=(640, 480), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pdf() -> bytes:
    """A real PDF written by matplotlib's PDF backend (a chart, as a scanned form would be)."""
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [2, 1, 3])
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf")
    plt.close(fig)
    return buf.getvalue()


def _handmade_pdf(body: bytes) -> bytes:
    return b"%PDF-1.7\n1 0 obj\n" + body + b"\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def test_real_photos_and_pdf_pass_with_type_from_content(pdf):
    jpg, png = _image("JPEG"), _image("PNG")
    assert check_upload(jpg, filename="现场照片.png").ext == "jpg"  # the name lies: content wins
    assert check_upload(png, filename="x.jpg").mime == "image/png"
    checked = check_upload(pdf, filename="销号验收单.pdf")
    assert (checked.ext, checked.mime, checked.size) == ("pdf", "application/pdf", len(pdf))
    assert checked.sha256 == hashlib.sha256(pdf).hexdigest()
    assert check_upload(jpg, allowed=("jpg",)).ext == "jpg"


REFUSED = {
    "html renamed .jpg": (b"<html><script>alert(1)</script></html>", "photo.jpg", "不被接受"),
    "svg with script": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                        "map.png", "不被接受"),
    "windows exe": (b"MZ\x90\x00" + b"\x00" * 200, "scan.pdf", "不被接受"),
    "zip (docx)": (b"PK\x03\x04" + b"\x00" * 200, "report.pdf", "不被接受"),
    "png header then junk": (b"\x89PNG\r\n\x1a\n" + b"<script>alert(1)</script>" * 20,
                             "a.png", "已损坏"),
    "empty": (b"", "a.jpg", "文件为空"),
    "pdf without %%EOF": (b"%PDF-1.4\n1 0 obj << >> endobj\n", "a.pdf", "不完整"),
    "pdf javascript": (_handmade_pdf(b"<< /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>"),
                       "a.pdf", "JavaScript"),
    "pdf hex-escaped name": (_handmade_pdf(b"<< /OpenAction << /S /J#61vaScript /JS (x) >> >>"),
                             "a.pdf", "JavaScript"),
    "pdf launch": (_handmade_pdf(b"<< /OpenAction << /S /Launch /F (cmd.exe) >> >>"),
                   "a.pdf", "Launch"),
    "pdf embedded file": (_handmade_pdf(b"<< /Type /EmbeddedFile >>"), "a.pdf", "EmbeddedFile"),
    "pdf js in a compressed stream": (
        _handmade_pdf(b"<< /Type /ObjStm /Filter /FlateDecode >>\nstream\n"
                      + zlib.compress(b"<< /S /JavaScript /JS (app.alert(1)) >>")
                      + b"\nendstream"),
        "a.pdf", "JavaScript"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_by_content(case):
    data, name, why = REFUSED[case]
    with pytest.raises(UploadError, match=why) as info:
        check_upload(data, filename=name)
    assert str(info.value).startswith(name)  # names the file


def test_truncated_photo_is_refused():
    jpg = _image("JPEG")
    with pytest.raises(UploadError, match="已损坏"):
        check_upload(jpg[: len(jpg) // 2], filename="half.jpg")


def test_truncated_photo_is_refused_after_weasyprint_loosened_pillow():
    """WeasyPrint turns on Pillow's LOAD_TRUNCATED_IMAGES when imported (the paper output
    imports it in the same process); the evidence check must still see the truncation."""
    pytest.importorskip("weasyprint")
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # what importing WeasyPrint did
    jpg = _image("JPEG")
    with pytest.raises(UploadError, match="已损坏"):
        check_upload(jpg[: len(jpg) // 2], filename="half.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for WeasyPrint


def test_type_not_allowed_and_gif():
    with pytest.raises(UploadError, match="image/gif"):
        check_upload(_image("GIF", mode="P"), filename="a.gif")
    with pytest.raises(UploadError, match="应为 JPG"):
        check_upload(_image("PNG"), allowed=("jpg",))
    with pytest.raises(ValueError, match="unknown evidence types"):
        check_upload(_image("PNG"), allowed=("svg",))


def test_size_and_pixel_limits():
    png = _image("PNG")
    with pytest.raises(UploadError, match=r"超过上限 0\.001 MB"):
        check_upload(png, max_mb=0.001)
    width = 10_000
    height = MAX_IMAGE_PIXELS // width + 1  # one row over the limit
    bomb = _image("PNG", size=(width, height), mode="1")
    assert len(bomb) < 2**20  # a small file that would decode to 50 M pixels
    with pytest.raises(UploadError, match="像素"):
        check_upload(bomb, filename="bomb.png")


def test_stored_under_generated_name_never_the_users(tmp_path):
    store = FileStore(Settings.from_env({}, root=tmp_path))
    png = _image("PNG")
    name, checked = store_upload(store, png, filename="../../../etc/cron.d/x.html")
    assert name == f"{hashlib.sha256(png).hexdigest()}.png"
    assert store.read_attachment(name) == png
    assert [p.name for p in (tmp_path / "layers" / "attachments").iterdir()] == [name]
    assert checked.display_name == "x.html"  # shown as text only
    with pytest.raises(UploadError):
        store_upload(store, b"<html></html>", filename="y.jpg")
    assert len(list((tmp_path / "layers" / "attachments").iterdir())) == 1  # nothing stored


def test_display_name_drops_paths_and_control_characters():
    assert display_name("C:\\Users\\a\\照片.jpg") == "照片.jpg"
    assert display_name("x\u202egpj.exe") == "xgpj.exe"  # no right-to-left override
    assert display_name("a\nb\x00c.pdf") == "abc.pdf"
    assert display_name("") == "证明材料"


def test_download_type_never_runs_script():
    sha = "0" * 64
    assert download_mime(f"{sha}.jpg") == "image/jpeg"
    assert download_mime(f"{sha}.png") == "image/png"
    assert download_mime(f"{sha}.pdf") == "application/pdf"
    for name in (f"{sha}.html", f"{sha}.svg", "x.jpg", "../a.pdf", f"{sha}.htm"):
        assert download_mime(name) == "application/octet-stream"
