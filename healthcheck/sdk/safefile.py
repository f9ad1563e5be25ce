"""Files written as root: never follow a link, never block, never leave half a line.

Everything this program writes (state files and their locks, ``host_event.log``, ``npd-config``
output) goes through these few functions, because the directories involved may be writable by
someone else (a shared state directory, ``/var/log``, a mounted host path):

- a file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and must then be a regular file: a symbolic
  link planted at its name is refused (``ELOOP``), and so is a FIFO or a device, without waiting
  for a reader or writer at the other end;
- a replaced file is written to a temporary file created exclusively (``O_EXCL``) under an
  unpredictable name in the same directory, then renamed over the target (which replaces a link
  at that name rather than following it);
- an append is one ``write`` of whole lines; a short write (disk full) is undone by truncating
  the file back to where that write began, so no fragment merges with the next line.

Only ``os``, ``errno`` and ``stat`` are imported: one-shot checks pay for this module.
Documented in ``docs/sdk.md``.
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["append_whole", "open_append", "open_regular", "read_regular", "replace_file"]

# Each open also gets O_CLOEXEC: no child we run inherits a descriptor of ours.
_SAFE = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_TEMP_ATTEMPTS = 16


def open_regular(path: str, flags: int, mode: int = 0o600) -> int:
    """``os.open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)``, a regular file or an error.

    Raises ``OSError`` whose ``strerror`` says what is at ``path`` when it is a symbolic link, a
    FIFO, a socket, a device or a directory. O_NONBLOCK changes nothing for a regular file.
    """
    try:
        fd = os.open(path, flags | _SAFE, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(exc.errno, "a symbolic link, not a regular file", path) from None
        if exc.errno == errno.ENXIO:  # a FIFO without a reader, or a device without its driver
            raise OSError(exc.errno, "not a regular file (FIFO or device)", path) from None
        raise
    try:
        kind = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(kind):
        os.close(fd)
        raise OSError(errno.EINVAL, f"not a regular file ({_kind(kind)})", path)
    return fd


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a file"


def read_regular(path: str, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file at ``path`` (``FileNotFoundError`` if absent)."""
    fd = open_regular(path, os.O_RDONLY)
    try:
        chunks: list[bytes] = []
        remaining = limit
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)  # short only on a full disk: the next write raises ENOSPC
        if written <= 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def _create_temp(directory: str, base: str, mode: int) -> tuple[int, str]:
    """A new file in ``directory`` under an unpredictable name, created exclusively."""
    for _ in range(_TEMP_ATTEMPTS):
        tmp = os.path.join(directory, f".{base}.{os.urandom(8).hex()}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _SAFE, mode), tmp
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "cannot create a temporary file", directory)


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: str, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically: readers see the old file or the new, whole.

    The data goes to an exclusively created temporary file with a random name beside ``path``
    (mode ``mode``, less the umask), which is fsynced and renamed over ``path``; the directory is
    fsynced last. A symbolic link at ``path`` is replaced, never followed. On failure the temporary
    file is removed and ``OSError`` raised.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = _create_temp(directory, os.path.basename(path), mode)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        import contextlib  # only on this error path: one-shot checks skip its import

        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def open_append(path: str, mode: int = 0o644) -> int:
    """The regular file ``path`` opened to append (created when absent): :func:`open_regular`.

    A file with more than one name is refused too: O_NOFOLLOW does not see a hard link, and one
    planted at ``path`` (where ``fs.protected_hardlinks`` is off) would make root append to its
    other name, say ``/etc/passwd``. A replaced file (:func:`replace_file`) needs no such check.
    """
    fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        links = os.fstat(fd).st_nlink
    except OSError:
        os.close(fd)
        raise
    if links > 1:
        os.close(fd)
        raise OSError(errno.EMLINK, f"a file with {links} hard links, not one", path)
    return fd


def append_whole(fd: int, data: bytes) -> None:
    """Append ``data`` (whole lines) to ``fd`` (from :func:`open_append`) with one ``write``, or
    not at all.

    With ``O_APPEND`` concurrent appenders never overwrite each other. When the write comes up
    short (a full disk), the file is truncated back to where this write began, unless someone
    appended after it, and ``OSError`` is raised: no fragment is left to merge with the next line.
    """
    written = os.write(fd, data)
    if written != len(data):
        end = os.lseek(fd, 0, os.SEEK_CUR)  # O_APPEND: the offset is the end of our write
        if os.fstat(fd).st_size == end:
            os.ftruncate(fd, end - written)
        raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")
