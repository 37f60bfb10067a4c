"""Where a run came from: code version, packages, hardware, data and cache hashes, resources."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import torch

PACKAGES = (
    "prefopt",
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "peft",
    "accelerate",
    "hydra-core",
    "omegaconf",
)


def git_commit(path: Path) -> str | None:
    """The commit checked out where prefopt's code lives, with "+dirty" for local changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    """Installed versions of the packages a result depends on."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def hardware() -> dict:
    """CPU, accelerator and OS of this process."""
    info = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["gpu_count"] = torch.cuda.device_count()
    return info


def peak_memory() -> dict:
    """Peak resident memory of this process and, on a GPU, peak allocated device memory (bytes)."""
    usage = {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if torch.cuda.is_available():
        usage["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
    return usage


def provenance(extra: dict) -> dict:
    """Everything above plus run-specific facts (hashes, tokens, wall time) given in ``extra``."""
    return {
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "versions": versions(),
        "hardware": hardware(),
        **peak_memory(),
        **extra,
    }
