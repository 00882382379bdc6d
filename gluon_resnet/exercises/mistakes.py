"""Known mistakes: the reference block, wired wrong in one place, for
``compare`` to name the mistake whose output the student's block gives."""
from dataclasses import replace

import numpy as np
from mxnet.gluon import nn

from .._arrays import operators
from ..blocks import RELU, residual_parts
from .compare import _numpy


# Helpers

def _relu(x):
    return operators().relu(x)


def _ordinal(n):
    return ['first', 'second', 'third', 'fourth', 'fifth'][n] if n < 5 else f'{n + 1}th'


# Mistakes: the reference, wrong in one place

def _run(parts, X, add_at=None):
    """Run a block's ``ResidualParts`` on ``X``, the addition after the first
    ``add_at`` layers of the body (default: after all of them)."""
    def apply(layers, Y):
        for layer in layers:
            Y = _relu(Y) if layer is RELU else layer(Y)
        return Y
    add_at = len(parts.body) if add_at is None else add_at
    P = apply(parts.pre, X)
    Y = apply(parts.body[:add_at], P)
    if parts.shortcut is not None:
        Y = Y + apply(parts.shortcut, P if parts.tap_preact else X)
    return apply(parts.post, apply(parts.body[add_at:], Y))


def _is_relu(layer):
    return layer is RELU or (isinstance(layer, nn.Activation) and layer._act_type == 'relu')


def _residual_mistakes(block, *args, **kwargs):
    """``(diagnosis, forward)`` for each known mistake in wiring the residual
    ``block``: the block run with its own layers, wired wrong in one place."""
    p = residual_parts(block)
    mistakes = []
    if p.post and p.shortcut is not None:
        mistakes += [('a ReLU missing after the addition?',
                      lambda X: _run(replace(p, post=()), X)),
                     ('is the shortcut added after the final ReLU?',
                      lambda X: _run(replace(p, body=p.body + p.post, post=()), X))]
    if isinstance(p.body[-1], nn.BatchNorm) and p.shortcut is not None:
        mistakes.append(('is the shortcut added before the last BatchNorm?',
                         lambda X: _run(p, X, add_at=len(p.body) - 1)))
    for i, layer in enumerate(p.body):
        if _is_relu(layer):
            rank = sum(isinstance(b, nn.BatchNorm) for b in p.body[:i]) - 1
            mistakes.append((f'a ReLU missing after the {_ordinal(rank)} BatchNorm?',
                             lambda X, i=i: _run(replace(p, body=p.body[:i] + p.body[i + 1:]),
                                                 X)))
    if p.shortcut:
        mistakes.append(('is the 1x1 conv applied to the input before the addition?',
                         lambda X: _run(replace(p, shortcut=()), X)))
        if len(p.shortcut) > 1:
            mistakes.append(("is the BatchNorm applied after the shortcut's 1x1 conv?",
                             lambda X: _run(replace(p, shortcut=p.shortcut[:1]), X)))
    if p.shortcut is not None:
        mistakes.append(('is the input added to the output of the body?',
                         lambda X: _run(replace(p, shortcut=None), X)))
    return mistakes


def _option_a_mistakes(block, channels, stride, in_channels):
    """The ways to get option A wrong, computed with numpy."""
    def subsample(X, start=0):
        return X[:, :, start::stride, start::stride]

    def pad(Y, first=False):
        zeros = np.zeros((Y.shape[0], channels - in_channels) + Y.shape[2:], Y.dtype)
        return np.concatenate([zeros, Y] if first else [Y, zeros], axis=1)

    def pool(X, reduce):
        n, c, h, w = X.shape
        return reduce(X.reshape(n, c, h // stride, stride, w // stride, stride), axis=(3, 5))

    def mistake(f):
        return lambda X: f(_numpy(X))

    mistakes = [("are the zero channels put before the input's? they come after them",
                 mistake(lambda X: pad(subsample(X), first=True))),
                ('are the new channels copies of the input? option A appends zeros',
                 mistake(lambda X: np.concatenate(
                     [subsample(X), subsample(X)[:, :channels - in_channels]], axis=1)))]
    if stride > 1:
        mistakes += [(f'does the subsampling start at pixel 1? it keeps pixels 0, {stride}, '
                      f'{2 * stride}, ...', mistake(lambda X: pad(subsample(X, start=1)))),
                     (f'does it average {stride}x{stride} windows? option A keeps one pixel '
                      'of each', mistake(lambda X: pad(pool(X, np.mean)))),
                     (f'does it take the largest of {stride}x{stride} pixels? option A keeps '
                      'the first of each window', mistake(lambda X: pad(pool(X, np.max))))]
    return mistakes


def _option_b_mistakes(block, *args):
    return [('is there a ReLU on the shortcut? option B is a 1x1 conv and a BatchNorm only',
             lambda X: _relu(block(X)))]
