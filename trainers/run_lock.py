"""One program at a time per ``--output_dir``: an exclusive OS lock.

``hold(output_dir, program)`` takes an ``flock`` on ``OUTPUT_DIR/run.lock``
for the life of the ``with`` block and writes who holds it (host, PID, start
time, command) into the file. The kernel drops the lock when the process
ends, however it ends (a crash, SIGKILL), so no lock is ever left behind; the
file is removed on a clean exit. A second program on the same directory gets
``RunLockedError`` at once, naming the holder. Without TensorFlow.

On a network filesystem the lock holds across machines only where the
filesystem supports locks (NFSv4, or NFSv3 with lockd; NFS mounted with
``nolock`` or ``local_lock=flock`` locks only within one machine); where it
has none, ``hold`` warns and goes on unlocked (docs/guides/training.md).
"""
import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import sys

from trainers import cli

LOCK_FILE = "run.lock"
# flock's errors where the filesystem has no locks at all (not: somebody holds it).
UNSUPPORTED = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)


class RunLockedError(RuntimeError):
    """Another process holds the lock of the output directory."""


def _holder_text(text):
    """The holder recorded in a lock file's ``text``, in words."""
    try:
        holder = json.loads(text)
        return (f"{holder['program']} (PID {holder['pid']} on {holder['host']}, started "
                f"{holder['started']}: {holder['command']})")
    except (ValueError, KeyError, TypeError):
        return "another process (still starting up)"


def _open_locked(path):
    """An open file of ``path`` holding its exclusive lock (the file still at
    ``path``: not one a releasing holder removed meanwhile); ``None`` if the
    filesystem has no locks. Raises ``RunLockedError`` if someone holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.read(fd, 1 << 16).decode(errors="replace")
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                directory = os.path.dirname(path)
                raise RunLockedError(
                    f"{directory} is in use by {_holder_text(holder)}. Wait for it to end, "
                    "stop it, or use another --output_dir; nothing was changed.") from None
            if error.errno in UNSUPPORTED:
                return None
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # locked a file its holder removed on release: lock the new one


@contextlib.contextmanager
def hold(output_dir, program, create=False):
    """Holds the lock of ``output_dir`` for the ``with`` block (made first if
    ``create``, and removed again if still empty at the end; else it must
    exist). Raises ``RunLockedError`` if another process holds it, ``OSError``
    if the directory cannot be made or written."""
    created = create and not os.path.isdir(output_dir)
    if not create and not os.path.isdir(output_dir):
        raise FileNotFoundError(errno.ENOENT, "No such run directory", output_dir)
    path = os.path.join(output_dir, LOCK_FILE)
    for attempt in range(3):
        if create:
            os.makedirs(output_dir, exist_ok=True)
        try:
            fd = _open_locked(path)
            break
        except FileNotFoundError:
            if not create or attempt == 2:
                raise  # else: removed by a holder that made it and wrote nothing; make it again
    if fd is None:
        print(f"Warning: the filesystem of {output_dir} does not support locks: nothing stops a "
              "second program from using it at the same time.", file=sys.stderr, flush=True)
        yield
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({
            "program": program, "pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": cli.command_line()}).encode())
        os.fsync(fd)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)  # before unlocking: a waiter then locks a fresh file
            if created:
                os.rmdir(output_dir)  # made for nothing (a failure before the run wrote): not left behind
        os.close(fd)

