"""The wheel the site offers: the package as pyproject.toml builds it, plus the built site.

hatchling builds the wheel from the repository exactly as ``pip install .`` would (the
lab extension and the server's config included); then the finished HTML goes into it as
``wizard/docs_html/`` (``docs_map.INSTALLED_SITE``), so an installed server can serve the
pages its links point to. Entries get a fixed timestamp, RECORD is written anew.
"""

import base64
import csv
import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
SITE_IN_PACKAGE = "wizard/docs_html"
# Not part of the served copy: Sphinx's own state, and the wheel itself.
SKIP_PARTS = {".doctrees", ".buildinfo", "_sources"}


def _digest(data):
    raw = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _entry(name, mode=0o644):
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | mode) << 16
    return info


def build_plain_wheel(root, directory):
    """hatchling's wheel of the project at ``root``, in ``directory``; its path."""
    from hatchling.builders.wheel import WheelBuilder

    builder = WheelBuilder(str(root))
    return Path(next(iter(builder.build(directory=str(directory), versions=["standard"]))))


def site_files(site):
    site = Path(site)
    for path in sorted(site.rglob("*")):
        rel = path.relative_to(site)
        if not path.is_file() or path.suffix == ".whl":
            continue
        if any(part in SKIP_PARTS or part.startswith(".") for part in rel.parts):
            continue
        yield rel.as_posix(), path


def add_site(wheel, site, dest):
    """Write ``dest``: ``wheel`` with the site's files under SITE_IN_PACKAGE."""
    entries = []
    record = None
    with zipfile.ZipFile(wheel) as src:
        for info in src.infolist():
            if info.filename.endswith(".dist-info/RECORD"):
                record = info.filename
                continue
            mode = (info.external_attr >> 16) & 0o777 or 0o644
            entries.append((info.filename, src.read(info), mode))
    if record is None:
        raise ValueError(f"{wheel}: no RECORD")
    # the package's files first, then the site inside it, then .data and .dist-info
    first_meta = next(
        (
            i
            for i, (name, _d, _m) in enumerate(entries)
            if ".data/" in name or ".dist-info/" in name
        ),
        len(entries),
    )
    added = [(f"{SITE_IN_PACKAGE}/{rel}", p.read_bytes(), 0o644) for rel, p in site_files(site)]
    entries[first_meta:first_meta] = added
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, mode in entries:
            zf.writestr(_entry(name, mode), data)
            writer.writerow([name, _digest(data), len(data)])
        writer.writerow([record, "", ""])
        zf.writestr(_entry(record), out.getvalue())
    tmp = Path(dest).with_name(Path(dest).name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, dest)
    return Path(dest)


def build_site_wheel(root, site):
    """Build the wheel with the site in it, into the site's own folder; its path."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = build_plain_wheel(root, tmp)
        return add_site(plain, site, Path(site) / plain.name)


def build_sdist(root, directory):
    """hatchling's source archive of the project at ``root``, in ``directory``; its path."""
    from hatchling.builders.sdist import SdistBuilder

    builder = SdistBuilder(str(root))
    return Path(next(iter(builder.build(directory=str(directory), versions=["standard"]))))


def _meta(root):
    import tomllib

    path = Path(root) / "pyproject.toml"
    if not path.is_file():
        return None
    return tomllib.loads(path.read_text(encoding="utf-8")).get("project")


def is_project(root):
    """Whether ``root`` holds a pyproject.toml with a [project] table (a wheel can be built)."""
    return bool(_meta(root))


def project(root):
    """(name, version) from pyproject.toml, as the wheel's file name spells them."""
    meta = _meta(root)
    return meta["name"].replace("-", "_"), meta["version"]


def file_names(root):
    """The wheel's and the source archive's file names."""
    name, version = project(root)
    return f"{name}-{version}-py3-none-any.whl", f"{name}-{version}.tar.gz"
