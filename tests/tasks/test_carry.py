"""A task build carried in an archive: the same files in another cache, refused where another
build of the same name is already there, and a damaged archive named."""

import io
import json
import shutil
import tarfile

import pytest

from prefopt.tasks.carry import CarriedBuildError, content_fingerprint, manifest_of, pack, unpack


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_packed_build_unpacks_to_the_same_files_in_another_cache(tiny_artifacts, tmp_path):
    archive = pack(tiny_artifacts.root, tmp_path / "carried")
    assert archive.name == f"{tiny_artifacts.root.name}.tar.gz"
    again = pack(tiny_artifacts.root, tmp_path / "again")
    assert archive.read_bytes() == again.read_bytes()  # reproducible archive
    target = unpack(archive, tmp_path / "other_cache")
    assert target == tmp_path / "other_cache" / "tasks" / tiny_artifacts.root.name
    assert _files(target) == _files(tiny_artifacts.root)
    assert manifest_of(archive)["content"] == content_fingerprint(target, tmp_path / "other_cache")
    assert unpack(archive, tmp_path / "other_cache") == target  # the same build again: kept


def test_a_cache_holding_another_build_of_the_same_name_is_refused(tiny_artifacts, tmp_path):
    archive = pack(tiny_artifacts.root, tmp_path / "carried")
    cache = tmp_path / "cache"
    other = cache / "tasks" / tiny_artifacts.root.name
    shutil.copytree(tiny_artifacts.root, other)
    prompts = other / "prompts" / "test.jsonl"
    lines = prompts.read_text().splitlines()
    prompts.write_text("\n".join([json.dumps({"prompt": "another prompt"}), *lines[1:]]) + "\n")
    with pytest.raises(CarriedBuildError, match="holds another build") as raised:
        unpack(archive, cache)
    assert str(other) in str(raised.value)
    assert prompts.read_text().startswith('{"prompt": "another prompt"}')  # left as it was


def test_an_archive_whose_files_differ_from_its_manifest_is_named_damaged(tiny_artifacts, tmp_path):
    archive = pack(tiny_artifacts.root, tmp_path / "carried")
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive, "r:gz") as source, tarfile.open(damaged, "w:gz") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name.endswith("prompts/test.jsonl"):
                data = data.replace(b"\n", b"\n\n", 1)  # still valid JSONL, other content
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    cache = tmp_path / "cache"
    with pytest.raises(CarriedBuildError, match="damaged") as raised:
        unpack(damaged, cache)
    assert str(damaged) in str(raised.value)
    assert not (cache / "tasks" / tiny_artifacts.root.name).exists()  # nothing published
    with pytest.raises(CarriedBuildError, match="not a carried task build"):
        unpack(tmp_path / "missing.tar.gz", cache)
