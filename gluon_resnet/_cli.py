"""What the command-line tools share: one-line errors, exit code 2, argument
types built from the library's checks, the thread notice.

The contract of every tool (``run``): an expected failure (a bad value, a
missing or unreadable file, a read-only folder, a full disk, too little
memory) is one line on stderr and exit code 2; a closed stdout or stderr (``|
head``) is ignored and the work goes on; the first Ctrl-C is the tool's to
handle (``train`` stops after the step and saves; ``export`` removes its
temporary files, or finishes once it commits them), a second one ends the
process at once with exit code 130; neither prints a traceback.
"""
import argparse
import errno
import os
import signal
import sys

from ._signals import SIGNALS
from ._threads import NUM_THREADS, THREADS_CHOSEN
from .checks import check_int, check_number, describe_int, describe_number


class ArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code 2,
    and that takes no abbreviations of flags (a typo is an error)."""

    def __init__(self, **kwargs):
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message} (see --help)\n')


def _argument_type(kind, check, expected):
    """An argparse type: ``kind(text)``, then ``check(value)``; errors say ``expected``."""
    def parse(text):
        try:
            return check(kind(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {expected}, got {text!r}') from None
    return parse


def int_type(minimum=None, maximum=None):
    """An argparse type for integers in ``[minimum, maximum]`` (``checks.check_int``)."""
    return _argument_type(int, lambda v: check_int(v, 'value', minimum, maximum),
                          describe_int(minimum, maximum))


def number_type(low=None, high=None, low_open=False, high_open=False):
    """An argparse type for finite numbers within bounds (``checks.check_number``)."""
    bounds = dict(low=low, high=high, low_open=low_open, high_open=high_open)
    return _argument_type(float, lambda v: check_number(v, 'value', **bounds),
                          describe_number(**bounds))


positive_int = int_type(minimum=1)
non_negative_int = int_type(minimum=0)
positive_float = number_type(low=0, low_open=True)
non_negative_float = number_type(low=0)
fraction = number_type(low=0, high=1, high_open=True)


EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class _ClosedPipeSafe:
    """A text stream that stops writing, quietly, once its reader has gone:
    the file descriptor then points to /dev/null, so Python's final flush
    does not complain either."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._silence()

    def _silence(self):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name):  # isatty, fileno, encoding, ...
        return getattr(self._stream, name)


def abort_handler(message='aborted'):
    """A signal handler that prints ``message`` and ends the process at once,
    exit code 130: safe where every file is written atomically (a second Ctrl-C)."""
    def abort(signum, frame):
        print(f'\n{message}', file=sys.stderr, flush=True)
        os._exit(EXIT_INTERRUPTED)
    return abort


def interrupt_handler(prog):
    """A signal handler that stops the work as Ctrl-C does in Python
    (``KeyboardInterrupt``: ``finally`` blocks remove temporary files, ``run``
    exits with 130), and makes the next signal abort at once."""
    def interrupt(signum, frame):
        for other in SIGNALS:
            signal.signal(other, abort_handler(f'{prog}: aborted'))
        raise KeyboardInterrupt
    return interrupt


def ignore_signals():
    """Ignore SIGINT and SIGTERM until ``run`` restores the handlers: for a tool's
    last step, committing its files and saying so, which a signal must not turn
    into exit 130 with the files written; the tool finishes, exit code 0."""
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def describe_os_error(error):
    """One line for an ``OSError``: what failed, on which path, what to do."""
    path = error.filename if error.filename is not None else ''
    hints = {
        errno.EACCES: 'permission denied: choose a path you can read and write',
        errno.EPERM: 'operation not permitted: choose a path you can read and write',
        errno.EROFS: 'read-only file system: choose a writable folder',
        errno.ENOSPC: 'no space left on the device: free some space or choose another disk',
        errno.EDQUOT: 'disk quota exceeded: free some space or choose another disk',
        errno.EEXIST: 'already exists: choose another path',
        errno.ENOTDIR: 'a file stands where a folder is expected: choose another path',
        errno.EISDIR: 'is a folder where a file is expected',
        errno.ENOENT: 'no such file or folder',
    }
    what = hints.get(error.errno, error.strerror or str(error))
    return f'{path}: {what}' if path else what


def run(main, prog):
    """Call ``main()`` under the contract of the module docstring; the streams
    and signal handlers are restored afterwards (tests call it in-process)."""
    streams = sys.stdout, sys.stderr
    handlers = {signum: signal.getsignal(signum) for signum in SIGNALS}
    sys.stdout, sys.stderr = _ClosedPipeSafe(sys.stdout), _ClosedPipeSafe(sys.stderr)
    for signum in handlers:  # train's fit stops gracefully at the first signal, and hands
        signal.signal(signum, abort_handler(f'{prog}: aborted'))  # the second to this one
    try:
        try:
            return main()
        except (ValueError, FileNotFoundError) as error:
            message = str(error)
        except OSError as error:
            message = describe_os_error(error)
        except MemoryError:
            message = 'out of memory: use a smaller batch size or image size'
        except KeyboardInterrupt:
            print(f'{prog}: interrupted', file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        print(f'{prog}: error: {message}', file=sys.stderr)
        sys.exit(EXIT_ERROR)
    finally:
        sys.stdout, sys.stderr = streams
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def announce_threads():
    """Say on stderr how many CPU threads MXNet uses and how to change it."""
    how = 'chosen for you; set OMP_NUM_THREADS to change' if THREADS_CHOSEN \
        else 'from OMP_NUM_THREADS'
    print(f'using {NUM_THREADS} CPU thread{"s" * (NUM_THREADS != 1)} ({how})',
          file=sys.stderr)
