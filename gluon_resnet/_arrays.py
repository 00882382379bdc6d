"""MXNet's two array APIs, the one that is on: ``mx.np``/``mx.npx`` after
``npx.set_np()`` (d2l's mode), else the legacy ``mx.nd``.  The package's blocks
and loops work in both; these pick the current one at call time."""
import mxnet as mx

__all__ = ['arrays', 'operators']


def arrays():
    """``mx.np`` in numpy mode, else ``mx.nd``: ``arrays().zeros((N, C, H, W))``."""
    return mx.np if mx.util.is_np_array() else mx.nd


def operators():
    """The neural-network operators: ``mx.npx`` in numpy mode, else ``mx.nd``:
    ``operators().relu(x)``, ``operators().one_hot(y, num_classes)``."""
    return mx.npx if mx.util.is_np_array() else mx.nd
