"""Builds the deploy artifact: build/functions (the Cloud Functions source directory) and its zip.

Cloud Functions needs all local code inside the source directory: functions/main.py, the pinned
functions/requirements.txt, functions/manifest.yaml (read at run time) and a copy of the
playbook_core package with its data files. Cloud Build's stage step and the deployed-shape tests
call this same command, so what deploys is what is tested. The zip is reproducible: sorted
entries, fixed timestamps and modes, so the same tree gives the same bytes.

    python shared/tools/package.py [--out build]   → <out>/functions/ and <out>/functions.zip
"""

from __future__ import annotations

import argparse
import shutil
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_FILES = ("main.py", "requirements.txt", "manifest.yaml")
PACKAGE = ROOT / "shared" / "src" / "playbook_core"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def build(out: Path) -> tuple[Path, Path]:
    """(<out>/functions, <out>/functions.zip), rebuilt from scratch."""
    source, archive = out / "functions", out / "functions.zip"
    shutil.rmtree(source, ignore_errors=True)
    archive.unlink(missing_ok=True)
    source.mkdir(parents=True)
    for name in FUNCTION_FILES:
        shutil.copy2(ROOT / "functions" / name, source / name)
    shutil.copytree(
        PACKAGE, source / "playbook_core", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            entry = zipfile.ZipInfo(path.relative_to(source).as_posix(), _EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(entry, path.read_bytes())
    return source, archive


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    args = parser.parse_args(argv)
    source, archive = build(args.out.resolve())
    with zipfile.ZipFile(archive) as bundle:
        print(f"{source}: {len(bundle.namelist())} files in {archive}")  # noqa: T201


if __name__ == "__main__":
    main()
