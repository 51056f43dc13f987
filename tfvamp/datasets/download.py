"""Where dataset files come from: a local directory, or a checked download into a cache.

In the spirit of TensorFlow Datasets' download-and-prepare step: every file has
canonical URLs and, where known, a SHA-256; it is fetched once into a cache
directory, checked, and only then moved into place.

Where a file is looked for, first match wins:

1. the ``data_dir`` argument (``--data_dir``), else the ``TFVAMP_DATA_DIR``
   environment variable: a local directory laid out as ``../shared/data``
   (``<folder>/<file>``, or ``<file>`` at its top). Nothing is downloaded into it;
   a missing file is an error.
2. otherwise the cache, ``TFVAMP_CACHE_DIR`` (default ``$XDG_CACHE_HOME/tfvamp``,
   i.e. ``~/.cache/tfvamp``), with the same layout; a missing file is downloaded
   into it.

A download goes to a temporary file in the target's directory, is checked
(size and SHA-256 where known, else a format check), and is renamed into place
with ``os.replace``; on any failure the temporary file is removed, so the cache
never holds a half-written file.
"""
import dataclasses
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request

from tfvamp.datasets.core import DatasetError, sha256_of

DATA_DIR_ENV = "TFVAMP_DATA_DIR"
CACHE_DIR_ENV = "TFVAMP_CACHE_DIR"
TIMEOUT_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Remote:
    """Where a file can be downloaded from (mirrors in order) and what its bytes must be."""

    urls: tuple
    sha256: str = None  # of the downloaded bytes; None where unknown
    size: int = None


def cache_dir():
    """``$TFVAMP_CACHE_DIR``, else ``$XDG_CACHE_HOME/tfvamp``, else ``~/.cache/tfvamp``."""
    if os.environ.get(CACHE_DIR_ENV):
        return os.environ[CACHE_DIR_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tfvamp")


def local_dir(data_dir=None):
    """The local data directory in force: ``data_dir``, else ``$TFVAMP_DATA_DIR``, else None."""
    return data_dir or os.environ.get(DATA_DIR_ENV) or None


def _candidates(root, folder, names):
    return [path for name in names for path in (os.path.join(root, folder, name), os.path.join(root, name))]


def find(root, folder, names):
    """The first existing ``root/folder/name`` or ``root/name`` for ``name`` in ``names``, else None."""
    return next((path for path in _candidates(root, folder, names) if os.path.isfile(path)), None)


def locate(folder, names, remote, data_dir=None, validate=None, hint=""):
    """Path of a dataset file, accepted under any of ``names`` (``names[0]`` is the canonical one).

    Looks in the local data directory if one is in force (see the module
    docstring), else in the cache, downloading ``remote`` there if missing.
    ``validate(path)`` checks a download whose checksum is unknown.
    """
    root = local_dir(data_dir)
    if root is not None:
        path = find(root, folder, names)
        if path is None:
            raise DatasetError(
                f"{names[0]} not found{hint}; looked for {_candidates(root, folder, names)}. "
                f"Get it from {' or '.join(remote.urls)}, or use neither --data_dir nor {DATA_DIR_ENV} "
                f"to download it into the cache {cache_dir()}.")
        return path
    root = cache_dir()
    path = find(root, folder, names)
    return path if path is not None else download(remote, os.path.join(root, folder, names[0]), validate)


def fetch(url, file):
    """Writes the resource at ``url`` (http(s) or file) into the open binary ``file``."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        shutil.copyfileobj(response, file)


def _check_download(path, remote, validate):
    size = os.path.getsize(path)
    if remote.size is not None and size != remote.size:
        raise DatasetError(f"got {size} bytes, expected {remote.size} (truncated or not the expected file)")
    if remote.sha256 is not None:
        actual = sha256_of(path)
        if actual != remote.sha256:
            raise DatasetError(f"checksum mismatch: expected sha256 {remote.sha256}, got {actual}")
    if validate is not None:
        validate(path)


def download(remote, target, validate=None):
    """Downloads ``remote`` to ``target`` atomically, trying each mirror; returns ``target``."""
    directory, name = os.path.split(target)
    os.makedirs(directory, exist_ok=True)
    errors = []
    for url in remote.urls:
        # Hidden, and ending in the file's name so that format checks see its suffix (.gz, .tar.gz).
        handle, part = tempfile.mkstemp(prefix=".part-", suffix=f"-{name}", dir=directory)
        try:
            with os.fdopen(handle, "wb") as file:
                fetch(url, file)
            _check_download(part, remote, validate)
            os.replace(part, target)
            return target
        except (OSError, ValueError, http.client.HTTPException, urllib.error.URLError, DatasetError) as error:
            errors.append(f"{url}: {error}")
        finally:
            if os.path.exists(part):
                os.remove(part)
    raise DatasetError(
        f"Could not download {name} into {directory} ({'; '.join(errors)}). Download it yourself and "
        f"pass its directory with --data_dir (or {DATA_DIR_ENV}), or put it at {target}.")
