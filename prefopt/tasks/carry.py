"""A task build carried between machines: packed once into an archive, unpacked into any cache.

The same seed builds a different pi_ref on another CPU (float kernels differ), so a study that
spans sessions on different machines, or a cluster without a shared cache, carries the build it
started with instead of rebuilding it:

    pack(artifacts.root, Path("results/compare/task_builds"))  # <root name>.tar.gz
    unpack(Path("results/compare/task_builds/reviews-53e8cf50b1d0.tar.gz"), cache_dir)

An archive holds the build's directory (pi_ref, data files, config.json, info.json) and
``carry.json``, the content fingerprint of the files a run reads (the one its run identity
records, :func:`prefopt.results.identity.task_build_fingerprint`). Unpacking checks that
fingerprint after extraction, publishes the directory atomically, and refuses a cache that already
holds another build under the same name.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from prefopt.errors import UserError
from prefopt.tasks.base import TaskArtifacts

MANIFEST = "carry.json"  # archive member: {"build": <root name>, "content": <fingerprint>}
SUFFIX = ".tar.gz"


class CarriedBuildError(UserError):
    """An archive that cannot be used, or a cache holding another build of the same name."""


def content_fingerprint(root: Path, cache_dir: Path) -> str:
    """The fingerprint of the build under ``root`` that a run's identity records."""
    from prefopt.results.identity import Fingerprints

    fingerprints = Fingerprints(cache_dir)
    digest = fingerprints.of_files(root, TaskArtifacts.at(root, "", {}).content_files())
    fingerprints.save()
    return digest


def pack(root: Path, out_dir: Path) -> Path:
    """Write ``out_dir/<root name>.tar.gz`` from the build under ``root`` (atomically); returns it.

    The archive is reproducible: members sorted, times and owners zeroed."""
    root = Path(root)
    problem = TaskArtifacts.at(root, "", {}).problem()
    if problem is not None:
        raise CarriedBuildError(f"{root}: not a complete task build ({problem})")
    manifest = {"build": root.name, "content": content_fingerprint(root, root.parents[1])}
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"{root.name}{SUFFIX}"
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{archive.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle, tarfile.open(fileobj=handle, mode="w:gz") as tar:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, sort_keys=True).encode())
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                _add_bytes(
                    tar, f"{root.name}/{path.relative_to(root).as_posix()}", path.read_bytes()
                )
        os.replace(tmp, archive)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return archive


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def manifest_of(archive: Path) -> dict:
    """The archive's carry.json; a CarriedBuildError when it is missing or unreadable."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            return json.loads(member.read()) if member is not None else {}
    except (OSError, tarfile.TarError, KeyError, json.JSONDecodeError) as error:
        raise CarriedBuildError(f"{archive}: not a carried task build ({error})") from error


def unpack(archive: Path, cache_dir: Path) -> Path:
    """Make ``cache_dir/tasks/<build>`` the archive's build; returns that directory.

    An entry already there with the same content is kept; one with other content is refused
    (runs bound to one build must not read another)."""
    manifest = manifest_of(archive)
    tasks = Path(cache_dir) / "tasks"
    target = tasks / manifest["build"]
    if target.is_dir():
        found = content_fingerprint(target, Path(cache_dir))
        if found != manifest["content"]:
            raise CarriedBuildError(
                f"{target} holds another build of {manifest['build']} than {archive} (content "
                f"{found[:12]} against {manifest['content'][:12]}); move it aside or use another "
                "cache_dir"
            )
        return target
    tasks.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=tasks))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(scratch, filter="data")
        built = scratch / manifest["build"]
        found = content_fingerprint(built, Path(cache_dir))
        if found != manifest["content"]:
            raise CarriedBuildError(
                f"{archive}: its files do not match its carry.json (content {found[:12]} against "
                f"{manifest['content'][:12]}); the archive is damaged"
            )
        os.rename(built, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
