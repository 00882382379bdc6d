"""What the command-line tools share: one-line errors, exit code 2, thread notice."""
import argparse
import sys

from ._threads import NUM_THREADS, THREADS_CHOSEN


class ArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code 2."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message} (see --help)\n')


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
