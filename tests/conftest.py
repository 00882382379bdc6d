"""Helpers shared by the test modules (``from conftest import ...``) and fixtures.

How thresholds on training outcomes are chosen: see ``learning.py``.  In
short, equality between two runs on this machine is asserted exactly (or to a
few float32 ulps); an outcome of training (accuracy, loss) is asserted only
far below the worst value measured by ``measure_margins.py`` over seeds,
hybridization, oneDNN on and off and 1 and 2 threads, because another
machine's kernels change the last digits and a short run amplifies them.
"""
import contextlib
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest


@contextlib.contextmanager
def numpy_mode(active=True):
    """MXNet's numpy mode (``npx.set_np()``, as d2l 1.0) inside ``with``."""
    if active:
        mx.npx.set_np()
    try:
        yield
    finally:
        if active:
            mx.npx.reset_np()


@pytest.fixture(name='numpy_mode')
def numpy_mode_fixture():
    with numpy_mode():
        yield


def initialized(net, shape, seed=0):
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros(shape))
    return net


def randomize(net, seed=1):
    """Random values in every BatchNorm parameter and bias, running statistics
    included (weights keep their random init), so that copying a wrong tensor
    cannot go unnoticed."""
    rng = np.random.default_rng(seed)
    for p in net.collect_params().values():
        if len(p.shape) != 1:
            continue
        values = rng.normal(0, 0.1, p.shape)
        if p.name.endswith('running_var') or p.name.endswith('gamma'):
            values = 1 + np.abs(values)
        p.set_data((mx.np if mx.util.is_np_array() else mx.nd).array(values))


def copy_params(src, dst, skip=lambda p: False):
    """Copy ``src``'s parameters into ``dst`` in registration order, asserting shapes."""
    src_params = [p for p in src.collect_params().values() if not skip(p)]
    dst_params = list(dst.collect_params().values())
    assert len(src_params) == len(dst_params)
    for s, d in zip(src_params, dst_params):
        assert s.shape == d.shape, (s.name, s.shape, d.name, d.shape)
        d.set_data(s.data())


def count_trainable(net):
    """Parameters SGD updates (``grad_req != 'null'``: BatchNorm running stats left out)."""
    return sum(p.data().size for p in net.collect_params().values() if p.grad_req != 'null')


def trained_params(net, trainable_only=False):
    """``{name: numpy array}`` of the parameters (all, or those SGD updates),
    named without the net's prefix, so nets built alike have the same names."""
    return {name[len(net.prefix):]: p.data().asnumpy()
            for name, p in net.collect_params().items()
            if not trainable_only or p.grad_req != 'null'}


def max_difference(first, second):
    """Largest absolute difference of two arrays (mx or numpy), or of two
    dicts of arrays with the same keys."""
    if isinstance(first, dict):
        assert first.keys() == second.keys()
        return max(max_difference(first[name], second[name]) for name in first)
    as_numpy = lambda a: a.asnumpy() if hasattr(a, 'asnumpy') else np.asarray(a)
    return float(np.abs(as_numpy(first) - as_numpy(second)).max())


def all_blocks(net):
    """``net`` and every block below it, found by Gluon's own ``Block.apply``
    (not ``report._descendants``: tests of the report check that function's work)."""
    blocks = []
    net.apply(blocks.append)
    return blocks


# Command-line tools

# Tests run as root, who reads and writes anything: without these two
# capabilities the permission bits apply to root too.
WITHOUT_ROOT_OVERRIDE = ['setpriv', '--bounding-set=-dac_override,-dac_read_search']


def python_m(module, *args, prefix=(), **kwargs):
    """Run ``python -m module args`` in a subprocess with one CPU thread (the
    other tests share the machine), after the command ``prefix`` if given."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    return subprocess.run([*prefix, sys.executable, '-m', module, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120, **kwargs)


def cli_error(main, prog, argv, capsys, code=2):
    """The error that ``main(argv)`` says under ``_cli.run`` (without ``prog: error: ``),
    checked to be all of stderr, one line (no thread notice: the tool did not start), with
    exit ``code``."""
    from gluon_resnet._cli import run
    with pytest.raises(SystemExit) as exit_info:
        run(lambda: main([*map(str, argv)]), prog)
    assert exit_info.value.code == code
    stderr = capsys.readouterr().err
    assert len(stderr.splitlines()) == 1, stderr
    error = stderr.rstrip('\n')
    assert error.startswith(f'{prog}: error: ')
    return error[len(f'{prog}: error: '):]


def train_digits_run(out):
    """A finished one-epoch run of CIFAR ResNet-20 on the digits at 16x16 in ``out``."""
    result = python_m('gluon_resnet.train', '--model', 'cifar_resnet20_v1', '--image-size', 16,
                      '--epochs', 1, '--out', out)
    assert result.returncode == 0, result.stderr
    return str(out)


@pytest.fixture(scope='session')
def executed_notebook():
    """``executed_notebook(path)``: the notebook's ``book.Page``, run once a session in
    reduced mode (the notebook tests and the book test share the runs)."""
    from gluon_resnet import book
    pages = {}

    def execute(path):
        if path not in pages:
            pages[path] = book.execute(path, quick=True, timeout=300)
        return pages[path]
    return execute
