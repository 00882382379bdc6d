"""Tests of gluon_resnet._threads: how ``import gluon_resnet`` reads and sets
``OMP_NUM_THREADS``, each in a fresh interpreter with its own environment."""
import os
import subprocess
import sys

import pytest

from gluon_resnet._threads import parse_threads

CORES = len(os.sched_getaffinity(0))
WARNING = 'gluon_resnet: warning: ignoring OMP_NUM_THREADS='
# Import, let MXNet run an operator (it aborts the process on a value it cannot
# parse), then show the threads, the variable the children inherit and the CLI notice.
PROGRAM = '''
import os, gluon_resnet, mxnet as mx
from gluon_resnet._cli import announce_threads
mx.nd.ones((2, 2)).sum().wait_to_read()
print(gluon_resnet.NUM_THREADS, os.environ['OMP_NUM_THREADS'])
announce_threads()
'''


def run_import(value, program=PROGRAM):
    """Run ``program`` with ``OMP_NUM_THREADS=value`` (unset if ``None``)."""
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    if value is not None:
        env['OMP_NUM_THREADS'] = value
    return subprocess.run([sys.executable, '-c', program], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize('value, threads', [
    (' 3 ', 3),
    ('2,1', 2),  # OpenMP: 2 threads, 1 in nested regions (alone, MXNet aborts on it)
    (' 4 , 2 ', 4),
])
def test_openmp_values_are_honoured(value, threads):
    result = run_import(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(threads), str(threads)]
    assert WARNING not in result.stderr and 'libgomp' not in result.stderr
    assert f'using {threads} CPU thread' in result.stderr


# Alone, MXNet 1.9.1 aborts the process on abc and 99999999999 and runs on the others.
@pytest.mark.parametrize('value', ['abc', '0', '-1', '  ', '99999999999'])
def test_other_values_warn_once_and_use_the_cores(value):
    result = run_import(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(CORES), str(CORES)]
    assert result.stderr.count(WARNING) == 1
    assert (f'{WARNING}{value!r}: expected a positive integer or a comma list of them '
            f'(4 or 4,1); using {CORES}, the CPU cores this process may use\n') in result.stderr
    assert 'libgomp' not in result.stderr  # libgomp never saw the bad value
    assert f'using {CORES} CPU thread' in result.stderr and 'using 0' not in result.stderr


def test_unset_is_the_usable_cores_without_warning():
    result = run_import(None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(CORES), str(CORES)]
    assert WARNING not in result.stderr
    assert 'chosen for you' in result.stderr


def test_bad_value_after_mxnet_is_imported():
    """Too late for the environment: the engine is told the cores instead."""
    result = run_import('0', 'import mxnet, gluon_resnet; print(gluon_resnet.NUM_THREADS)')
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(CORES)]
    assert result.stderr.count(WARNING) == 1


@pytest.mark.parametrize('text, threads', [
    ('8', 8), ('08', 8), (' 8\t', 8), ('+8', 8), ('8,4,1', 8), ('2 ,1', 2),
    ('2147483647', 2 ** 31 - 1),
    ('', None), (' ', None), ('abc', None), ('0', None), ('-1', None), ('1.5', None),
    ('1,', None), (',1', None), ('1,,1', None), ('1,0', None), ('1,x', None), ('2_000', None),
    ('\u0663', None), ('2147483648', None),
])
def test_parse_threads(text, threads):
    assert parse_threads(text) == threads
