"""Writing files so that a crash or a full disk never leaves half of one.

Every file the package writes (checkpoints, config, metrics, curves,
downloads, exports) goes through ``write_atomically`` or ``commit``: the
bytes go to a temporary file in the same folder, are flushed to disk, and the
temporary file is renamed over the target (``os.replace``, atomic on POSIX
and Windows).  Readers see the old file or the new one, never a mix; a failed
write removes its temporary file and leaves the old file as it was.
"""
import os

__all__ = ['write_atomically', 'commit']


def write_atomically(path, data):
    """Write ``data`` (bytes) to ``path`` atomically (see the module docstring)."""
    path = os.fspath(path)
    temporary = f'{path}.tmp'
    try:
        with open(temporary, 'wb') as file:
            file.write(data)
        commit(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def commit(temporary, path):
    """Flush the finished file ``temporary`` to disk and rename it to ``path``."""
    with open(temporary, 'rb+') as file:
        os.fsync(file.fileno())
    os.replace(temporary, path)
