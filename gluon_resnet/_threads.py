"""Pick the number of CPU threads before MXNet starts.

MXNet 1.9 halves the core count on x86 when ``OMP_NUM_THREADS`` is unset
(it assumes hyper-threading), so a 2-core machine trains on one thread:
a CIFAR resnet20 at 28x28, batch 128, runs at 355 images/s instead of 663.
We set ``OMP_NUM_THREADS`` to the usable cores unless the user chose a value.

A value is read as OpenMP reads it: a positive integer, or a comma list of
them, one per level of nested parallelism (``2,1``), spaces allowed around
each; the first entry is the number of threads.  Anything else (``abc``,
``0``, ``-1``, nothing) is replaced by the usable cores, with one line on
stderr, because MXNet 1.9.1 cannot run with it (see ``choose_threads``).
"""
import os
import re
import sys

# One entry of an OpenMP thread list: a positive integer, as libgomp's strtoul reads it.
_ENTRY = re.compile(r'\s*\+?0*[1-9][0-9]*\s*', re.ASCII)
# MXNet reads the value into a C int: a larger one aborts the process.
_MAX_THREADS = 2 ** 31 - 1


def usable_cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def parse_threads(text):
    """The thread count in an ``OMP_NUM_THREADS`` value (``'4'``, ``' 2,1 '``
    -> 4, 2), or ``None`` where OpenMP would reject the value."""
    entries = text.split(',')
    if not all(_ENTRY.fullmatch(entry) for entry in entries):
        return None
    threads = int(entries[0])
    return threads if threads <= _MAX_THREADS else None


def choose_threads():
    """Set ``OMP_NUM_THREADS`` and return ``(threads, chosen_by_us)``.

    The user's value is kept when OpenMP accepts it, reduced to its first
    entry: MXNet 1.9.1 parses the variable as a single C ``int`` when it is
    imported, and aborts the whole process (SIGABRT, "Invalid Parameter format
    for OMP_NUM_THREADS expect int but value='2,1'") on a list, on ``abc`` and
    on anything too large for an ``int``; Python cannot catch that.  The first
    entry keeps the thread count of the outer level; only nested parallel
    regions would have seen the others.  A value OpenMP rejects (``0``, ``-1``,
    empty) does not abort, but libgomp prints "Invalid value for environment
    variable OMP_NUM_THREADS" and falls back to all cores: we use the usable
    cores instead, say so once, and write them into the environment so that
    MXNet, libgomp and child processes (which inherit it) agree and none of
    them complains again.
    """
    text = os.environ.get('OMP_NUM_THREADS')
    threads = None if text is None else parse_threads(text)
    if threads is not None:
        os.environ['OMP_NUM_THREADS'] = str(threads)
        return threads, False
    threads = usable_cores()
    if text is not None:
        print(f'gluon_resnet: warning: ignoring OMP_NUM_THREADS={text!r}: expected a positive '
              f'integer or a comma list of them (4 or 4,1); using {threads}, the CPU cores '
              'this process may use', file=sys.stderr)
    os.environ['OMP_NUM_THREADS'] = str(threads)
    if 'mxnet' in sys.modules:  # too late for the environment: tell the engine
        import ctypes
        sys.modules['mxnet'].base._LIB.MXSetNumOMPThreads(ctypes.c_int(threads))
    return threads, True


NUM_THREADS, THREADS_CHOSEN = choose_threads()
