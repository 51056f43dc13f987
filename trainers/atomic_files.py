"""Files written atomically: a reader (or a crash) sees the old file or the
new one, never half of one."""
import contextlib
import json
import os
import shutil

import numpy as np


def write_file_atomic(path, write, mode="wb"):
    """Calls ``write(f)`` on a temporary file beside ``path`` and renames it to
    ``path`` once written and synced: a failed write (a full disk) leaves the
    file that was at ``path`` as it was, and no temporary behind."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_json_atomic(path, value):
    """Writes ``value`` as JSON to ``path`` as ``write_file_atomic`` does."""
    write_file_atomic(path, lambda f: json.dump(value, f, indent=2), mode="w")


def keep_copy(path, copy):
    """Makes ``copy`` a second name of the file ``path`` (a copy where links are not supported)."""
    try:
        os.link(path, copy)
    except OSError:
        with open(path, "rb") as source:
            write_file_atomic(copy, lambda f: shutil.copyfileobj(source, f))


def write_npz_atomic(path, **arrays):
    """Writes ``arrays`` as an ``.npz`` to ``path`` as ``write_file_atomic`` does."""
    write_file_atomic(path, lambda f: np.savez(f, **arrays))
