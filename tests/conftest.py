"""Helpers shared by the test modules (``from conftest import ...``) and fixtures.

How thresholds on training outcomes are chosen: see ``learning.py``.  In
short, equality between two runs on this machine is asserted exactly (or to a
few float32 ulps); an outcome of training (accuracy, loss) is asserted only
far below the worst value measured by ``measure_margins.py`` over seeds,
hybridization, oneDNN on and off and 1 and 2 threads, because another
machine's kernels change the last digits and a short run amplifies them.
"""
import contextlib

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
