"""The attachment-name rule every store shares (riskmap.store.attachment_name)."""

from __future__ import annotations

import hashlib

import pytest

from riskmap.errors import DataFileError
from riskmap.store import attachment_name, check_attachment_name
from riskmap.store.files import FileStore


def test_name_is_content_hash_and_lower_suffix():
    data = b"\x89PNG evidence photo"
    expected = hashlib.sha256(data).hexdigest() + ".png"
    assert attachment_name(data, ".PNG") == expected
    assert attachment_name(data, "png") == expected
    assert check_attachment_name(expected) == expected


@pytest.mark.parametrize("suffix", ["", "tar.gz", "a/b", "toolongsuffix", "中文"])
def test_bad_suffix_refused(suffix):
    with pytest.raises(ValueError, match="附件类型无效"):
        attachment_name(b"x", suffix)


@pytest.mark.parametrize("name", ["../secrets.toml", "a.png", "0" * 64, "0" * 64 + ".PNG"])
def test_names_not_generated_are_refused(name):
    with pytest.raises(DataFileError, match="附件名称无效"):
        check_attachment_name(name)


def test_file_store_round_trip_uses_the_rule(tmp_path):
    from riskmap.settings import Settings

    store = FileStore(Settings(root=tmp_path, layers_dir=tmp_path / "layers"))
    name = store.write_attachment(b"scan", suffix="PDF")
    assert name == attachment_name(b"scan", "pdf")
    assert store.read_attachment(name) == b"scan"
    with pytest.raises(DataFileError):
        store.read_attachment("../catalog.toml")
