"""What the command-line tools share: one-line errors, exit code 2, argument
types built from the library's checks, the thread notice."""
import argparse
import sys

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


def run(main, prog):
    """Call ``main()``; a ``ValueError`` or missing file becomes one line and exit 2."""
    try:
        return main()
    except (ValueError, FileNotFoundError) as error:
        print(f'{prog}: error: {error}', file=sys.stderr)
        sys.exit(2)


def announce_threads():
    """Say on stderr how many CPU threads MXNet uses and how to change it."""
    how = 'chosen for you; set OMP_NUM_THREADS to change' if THREADS_CHOSEN \
        else 'from OMP_NUM_THREADS'
    print(f'using {NUM_THREADS} CPU thread{"s" * (NUM_THREADS != 1)} ({how})',
          file=sys.stderr)
