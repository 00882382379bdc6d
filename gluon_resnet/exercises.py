"""Checkers for the notebooks' exercises: a student's block, net or number
against the package's own.

Every checker prints one line and returns ``True`` when the answer is right,
or prints what is wrong, in one sentence, and returns ``False``::

    >>> check_residual(MyResidual)
    ✓ correct: MyResidual computes d2l's Residual in 3 configurations, in prediction and training
    True
    >>> check_residual(MyResidual)    # without the last ReLU
    ✗ MyResidual(6): outputs differ after copying the weights: a ReLU missing after the addition?
    False

``strict=True`` raises ``AssertionError`` with that sentence instead, for a
solutions notebook or a test; ``assert check_residual(MyResidual)`` works too.
An exercise not started yet (``check_zero_gamma`` on a net whose gammas are
all untouched) is no mistake: the line says ``not done yet`` and what to do,
without ✗ (and ``False`` is returned, or ``AssertionError`` raised, as well).

==========================  ====================================================
checker                     the answer it checks
==========================  ====================================================
``check_residual``          a class like d2l's ``Residual`` (notebook 1)
``check_bottleneck``        a bottleneck class with d2l's arguments (notebook 5)
``check_resnext_block``     a class like d2l's ``ResNeXtBlock``, ``groups`` the
                            cardinality (notebook 5)
``check_shortcut``          an option A or option B shortcut (notebook 5)
``check_zero_gamma``        a net whose residual branches end in a BatchNorm
                            with gamma 0 (Goyal et al. 2017)
``check_depth``             a net of a given depth, with or without shortcuts
                            (notebook 4)
``check_macs``,             a number of multiply-accumulates or of parameters
``check_parameters``        worked out by hand (notebook 2)
==========================  ====================================================

How a block class is checked, for each of a few sets of arguments:

1. it is built with the arguments, and the package's block too, and both run
   on the same random batch: an error, or an output of another shape, is the
   diagnosis;
2. its conv and BatchNorm layers are paired with the reference's by shape (in
   the order they are registered, then in other orders if the outputs
   differ): a layer missing, or a conv with another stride, padding or number
   of groups, is the diagnosis;
3. the reference's weights, BatchNorm statistics included, all random, are
   copied into it (a conv bias that only one of the two has is set to 0: a
   bias before a BatchNorm changes nothing worth an exercise);
4. the outputs are compared in prediction, then in training mode; if they
   differ, the reference is run with each known mistake (its wiring changed in
   one place: a ReLU left out, the addition moved, ...) and the mistake that
   gives the student's output names the diagnosis.

Checkers run in MXNet's current array mode: ``mx.np`` after ``npx.set_np()``
(as d2l 1.0), else ``mx.nd``.
"""
import collections
import copy
import itertools
import math
from dataclasses import replace

import mxnet as mx
import numpy as np
from mxnet import autograd
from mxnet.gluon import nn

from .blocks import RELU, BasicBlock, Bottleneck, ResNeXtBlock, Residual, residual_parts
from .models import get_model, is_initialized
from .report import layer_report, named_children

__all__ = ['check_residual', 'check_bottleneck', 'check_resnext_block', 'check_shortcut',
           'check_zero_gamma', 'check_depth', 'check_macs', 'check_parameters']

BATCH = 4
ATOL = 1e-4  # relative to the largest output: float32 sums in another order differ a little


# Helpers

def _verdict(diagnosis, success, strict):
    """Print ``✓ correct: success`` and return True, or ``✗ diagnosis`` and False
    (``strict``: raise ``AssertionError(diagnosis)``)."""
    if diagnosis is None:
        print(f'✓ correct: {success}')
        return True
    if strict:
        raise AssertionError(diagnosis)
    print(f'✗ {diagnosis}')
    return False


def _not_yet(todo, strict):
    """Print ``not done yet: todo`` and return False (``strict``: raise
    ``AssertionError``): the exercise has not been started, no mistake made."""
    message = f'not done yet: {todo}'
    if strict:
        raise AssertionError(message)
    print(message)
    return False


def _array(values):
    """A float32 array in MXNet's current mode (``mx.np`` or ``mx.nd``)."""
    return (mx.np if mx.util.is_np_array() else mx.nd).array(values, dtype='float32')


def _numpy(x):
    return x.asnumpy() if hasattr(x, 'asnumpy') else np.asarray(x)


def _relu(x):
    return mx.npx.relu(x) if mx.util.is_np_array() else mx.nd.relu(x)


def _error(error):
    """An exception in a line: its type and the last line of its message."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return f'{type(error).__name__}: {lines[-1] if lines else ""}'.rstrip(': ')


def _name(cls):
    return getattr(cls, '__name__', type(cls).__name__)


def _call(cls, args, kwargs):
    """``MyBlock(6, use_1x1conv=True)``, as the student would write it."""
    parts = [repr(a) for a in args] + [f'{k}={v!r}' for k, v in kwargs.items()]
    return f'{_name(cls)}({", ".join(parts)})'


def _ordinal(n):
    return ['first', 'second', 'third', 'fourth', 'fifth'][n] if n < 5 else f'{n + 1}th'


def _named_blocks(block, path=''):
    """``(path, child)`` for every block below ``block``; an element of a
    Sequential is named by its kind and rank, as ``layer_report`` names rows."""
    for key, child in named_children(block):
        name = f'{path}/{key}' if path else key
        yield name, child
        yield from _named_blocks(child, name)


def _layers(block):
    """``(path, layer)`` of the conv, BatchNorm and dense layers of ``block``."""
    return [(path, b) for path, b in [(type(block).__name__, block)] + list(_named_blocks(block))
            if isinstance(b, (nn.Conv2D, nn.BatchNorm, nn.Dense))]


def _key(layer):
    """What must agree for two layers to swap weights: kind and parameter shape."""
    if isinstance(layer, nn.BatchNorm):
        return 'BatchNorm', layer.gamma.shape
    return type(layer).__name__, layer.weight.shape


def _describe(layer):
    if isinstance(layer, nn.BatchNorm):
        return f'a BatchNorm of {layer.gamma.shape[0]} channels'
    if isinstance(layer, nn.Conv2D):
        kh, kw = layer._kwargs['kernel']
        groups = layer._kwargs['num_group']
        in_groups = f' in {groups} groups' if groups > 1 else ''
        return (f'a {kh}x{kw} conv from {layer.weight.shape[1] * groups} to '
                f'{layer.weight.shape[0]} channels{in_groups}')
    return f'a dense layer of weight shape {layer.weight.shape}'


def _params(layer):
    """The parameters of a layer by role: weight, bias, gamma, beta, running_mean, running_var."""
    if isinstance(layer, nn.BatchNorm):
        return {'gamma': layer.gamma, 'beta': layer.beta,
                'running_mean': layer.running_mean, 'running_var': layer.running_var}
    return {'weight': layer.weight, 'bias': layer.bias}


def _randomize(block, rng):
    """Random weights everywhere, and BatchNorm scales, shifts and statistics far
    from their defaults, so that every layer and every ReLU shows in the output."""
    for _, layer in _layers(block):
        for role, param in _params(layer).items():
            if param is None:
                continue
            if role in ('gamma', 'running_var'):
                values = rng.uniform(0.5, 1.5, param.shape)
            elif role == 'weight':  # He et al.'s normal init
                values = rng.normal(0, math.sqrt(2 / math.prod(param.shape[1:])), param.shape)
            else:  # bias, beta, running_mean
                values = rng.normal(0, 0.5, param.shape)
            param.set_data(_array(values))


def _copy(pairs):
    """Copy each reference layer's parameters into its student layer; a bias only
    one of them has is set to 0 on that side."""
    for ref, student in pairs:
        ref_params, student_params = _params(ref), _params(student)
        for role, param in student_params.items():
            source = ref_params[role]
            if param is None and source is not None:
                source.set_data(source.data() * 0)
            elif param is not None and source is None:
                param.set_data(param.data() * 0)
            elif param is not None:
                param.set_data(source.data())


def _pairings(ref_layers, student_layers, most=24):
    """Ways to pair reference and student layers of the same kind and shape: by
    registration order first, then other orders among layers of equal shape
    (at most ``most``).  Returns ``(pairings, unpaired reference layers,
    unpaired student (path, layer))``; no pairing if a layer is left unpaired."""
    groups = collections.defaultdict(lambda: ([], []))
    for _, layer in ref_layers:
        groups[_key(layer)][0].append(layer)
    for path, layer in student_layers:
        groups[_key(layer)][1].append((path, layer))
    unpaired_ref = [layer for refs, ours in groups.values() for layer in refs[len(ours):]]
    unpaired_student = [pair for refs, ours in groups.values() for pair in ours[len(refs):]]
    if unpaired_ref or unpaired_student:
        return [], unpaired_ref, unpaired_student
    orders = itertools.product(*[itertools.permutations(ours) for _, ours in groups.values()])
    pairings = [[(ref, layer) for (refs, _), ours in zip(groups.values(), order)
                 for ref, (_, layer) in zip(refs, ours)]
                for order in itertools.islice(orders, most)]
    return pairings, [], []


def _plural(n, word):
    return f'{n} {word}' + ('' if n == 1 else 's')


def _structure(ref, student, hints):
    """A diagnosis if the student's layers cannot take the reference's weights, else None."""
    ref_layers, student_layers = _layers(ref), _layers(student)
    for path, layer in student_layers:
        if min(_key(layer)[1]) < 1:  # 0, or -1 in numpy mode: not inferred
            return f'`{path}` is never used: its shape is still unknown after a forward pass'
    for kind, cls in (('conv layer', nn.Conv2D), ('BatchNorm layer', nn.BatchNorm),
                      ('dense layer', nn.Dense)):
        expected = sum(isinstance(b, cls) for _, b in ref_layers)
        got = sum(isinstance(b, cls) for _, b in student_layers)
        if got != expected:
            return f'it has {_plural(got, kind)}, expected {expected}: {hints["layers"]}'
    _, missing, extra = _pairings(ref_layers, student_layers)
    if not extra:
        return None
    path, layer = extra[0]
    # the reference layer it stands for: same kind, and for a conv same kernel and outputs
    alike = [b for b in missing if type(b) is type(layer) and (
        not isinstance(b, nn.Conv2D) or (b._kwargs['kernel'], b._channels) ==
        (layer._kwargs['kernel'], layer._channels))]
    expected = (alike or missing)[0]
    groups_hint = ''
    if isinstance(layer, nn.Conv2D) and isinstance(expected, nn.Conv2D) and \
            layer._kwargs['num_group'] != expected._kwargs['num_group']:
        groups_hint = f': {hints["groups"]}'
    return f'`{path}` is {_describe(layer)}, expected {_describe(expected)}{groups_hint}'


def _settings(pairing, student, hints):
    """A diagnosis if a paired conv has another stride or padding than the reference's;
    a stride where none belongs is named before a stride missing."""
    paths = {id(layer): path for path, layer in _layers(student)}
    wrong = [(setting, layer, layer._kwargs[setting][0], ref._kwargs[setting][0])
             for ref, layer in pairing if isinstance(ref, nn.Conv2D)
             for setting in ('stride', 'pad')
             if layer._kwargs[setting][0] != ref._kwargs[setting][0]]
    if not wrong:
        return None
    setting, layer, got, expected = max(wrong, key=lambda w: (w[0] == 'stride', w[2] > w[3]))
    name, hint = (('stride', hints['stride']) if setting == 'stride' else
                  ('padding', 'the reference pads to keep the size'))
    return (f'`{paths[id(layer)]}` ({_describe(layer)}) has {name} {got}, expected {expected}: '
            f'{hint}')


def _close(got, expected):
    got, expected = _numpy(got), _numpy(expected)
    return got.shape == expected.shape and \
        float(np.abs(got - expected).max()) <= ATOL * max(1.0, float(np.abs(expected).max()))


def _forward(block, X, train):
    with autograd.record(train_mode=train):
        return _numpy(block(X))


def _runs_in_other_mode(cls, args, kwargs, shape):
    """Whether ``cls(*args, **kwargs)`` runs in the array mode that is not on."""
    modes = mx.util.is_np_shape(), mx.util.is_np_array()
    mx.util.set_np(shape=not modes[1], array=not modes[1])
    try:
        block = cls(*args, **kwargs)
        block.initialize()
        _numpy(block((mx.nd if modes[1] else mx.np).zeros(shape)))
        return True
    except Exception:  # noqa: BLE001 (any error of the student's code)
        return False
    finally:
        mx.util.set_np(*modes)


def _check_case(cls, make_reference, args, kwargs, shape, hints, mistakes, rng):
    """``(progress, diagnosis)`` of ``cls`` for one set of arguments: how far the
    checks got (0 to 6), and ``None`` or what is wrong, in a sentence."""
    call = _call(cls, args, kwargs)
    try:
        student = cls(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 (any error of the student's code)
        return 0, f'{call} raised {_error(error)}'
    ref = make_reference(*args, **kwargs)
    X = _array(rng.normal(size=shape))
    ref.initialize()
    ref(X)
    _randomize(ref, rng)
    try:
        student.initialize()
        got = student(X)
        _numpy(got)  # MXNet runs asynchronously: its errors come here
    except Exception as error:  # noqa: BLE001
        if _runs_in_other_mode(cls, args, kwargs, shape):
            mode = 'with npx.reset_np()' if mx.util.is_np_array() else 'after npx.set_np()'
            return 1, (f'{call} runs only in the other array mode of MXNet: call it {mode}, '
                       'or use the operators of the mode you are in')
        return 1, f'{call} on a batch of shape {shape} raised {_error(error)}: {hints["error"]}'
    if not hasattr(got, 'shape'):
        return 1, f'{call} returned a {type(got).__name__}, expected an array'
    expected_shape = tuple(ref(X).shape)
    if tuple(got.shape) != expected_shape:
        return 2, (f'the output shape of {call} is {tuple(got.shape)}, expected '
                   f'{expected_shape}: {hints["shape"]}')
    diagnosis = _structure(ref, student, hints)
    if diagnosis:
        return 3, f'{call}: {diagnosis}'
    pairings = _pairings(_layers(ref), _layers(student))[0]
    diagnosis = _settings(pairings[0], student, hints)
    if diagnosis:
        return 4, f'{call}: {diagnosis}'
    for train in (False, True):
        for pairing in pairings:
            _copy(pairing)
            expected, got = _forward(ref, X, train), _forward(student, X, train)
            if _close(got, expected):
                break
        else:
            _copy(pairings[0])
            got = _forward(student, X, train)
            for message, wrong in mistakes(ref, *args, **kwargs):
                try:
                    with autograd.record(train_mode=train):
                        if _close(got, wrong(X)):
                            return 5, f'{call}: outputs differ after copying the weights: {message}'
                except Exception:  # noqa: BLE001 (a mistake that cannot run with these shapes)
                    continue
            difference = float(np.abs(got - _forward(ref, X, train)).max())
            mode = 'training' if train else 'prediction'
            return 5, (f'{call}: outputs differ after copying the weights, by up to '
                       f'{difference:.2g} in {mode} mode: {hints["outputs"]}')
    return 6, None


def _check_class(cls, references, cases, hints, mistakes, strict):
    """Check a student's block class against ``references``, ``[(label, make)]``:
    it is right if it computes one of them in every case, ``(args, kwargs, shape)``."""
    if isinstance(cls, nn.Block):
        return _verdict(f'pass the class itself, not a block built from it: '
                        f'{type(cls).__name__}, not {type(cls).__name__}(...)', None, strict)
    failures = []  # (progress, diagnosis) against each reference
    for label, make in references:
        rng = np.random.default_rng(0)  # weights are copied: MXNet's own seed is left alone
        for args, kwargs, shape in cases:
            progress, diagnosis = _check_case(cls, make, args, kwargs, shape, hints, mistakes,
                                              rng)
            if diagnosis:
                failures.append((progress, diagnosis))
                break
        else:
            return _verdict(None, f'{_name(cls)} computes {label} in {len(cases)} '
                                  'configurations, in prediction and training', strict)
    # the diagnosis against the reference the answer came closest to
    return _verdict(max(failures, key=lambda failure: failure[0])[1], None, strict)


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


# Blocks

# ``(args, kwargs, input shape)``: the arguments each block checker tries
_RESIDUAL_CASES = [((6,), {}, (BATCH, 6, 8, 8)),
                   ((6,), {'use_1x1conv': True, 'strides': 2}, (BATCH, 3, 8, 8)),
                   ((6,), {'use_1x1conv': True}, (BATCH, 3, 8, 8))]
# groups ** 2 != bot_channels in each: d2l 1.0.3's block differs from the paper's
_RESNEXT_CASES = [((32, 4, 1), {}, (BATCH, 32, 8, 8)),
                  ((32, 8, 0.5), {'use_1x1conv': True, 'strides': 2}, (BATCH, 16, 8, 8)),
                  ((32, 2, 0.25), {'use_1x1conv': True}, (BATCH, 16, 8, 8))]
_BOTTLENECK_CASES = [((32,), {}, (BATCH, 32, 8, 8)),
                     ((32,), {'use_1x1conv': True, 'strides': 2}, (BATCH, 16, 8, 8)),
                     ((32,), {'use_1x1conv': True}, (BATCH, 16, 8, 8))]
_SHORTCUT_CASES = {'A': [((32, 2, 16), {}, (BATCH, 16, 8, 8)),
                         ((24, 1, 16), {}, (BATCH, 16, 8, 8)),
                         ((16, 2, 16), {}, (BATCH, 16, 8, 8))],
                   'B': [((32, 2, 16), {}, (BATCH, 16, 8, 8)),
                         ((32, 1, 16), {}, (BATCH, 16, 8, 8))]}
_ERROR = 'do both sides of the addition have the same shape?'


def check_residual(cls, strict=False):
    """Check a class like d2l's ``Residual(num_channels, use_1x1conv=False, strides=1)``.

    It is built and compared with ``gluon_resnet.Residual`` with and without
    the 1x1 conv, with strides 1 and 2: conv3x3-BN-ReLU-conv3x3-BN, plus the
    input (through a 1x1 conv with ``strides`` if ``use_1x1conv``), then ReLU.
    Prints one line; returns True if right, else False (``strict``: raises
    ``AssertionError`` with the diagnosis).

    Example::

        class MyResidual(nn.Block):
            def __init__(self, num_channels, use_1x1conv=False, strides=1):
                ...
        check_residual(MyResidual)
    """
    hints = {'shape': 'is the stride on the first conv and the 1x1 conv?',
             'layers': "d2l's block has two 3x3 convs with a BatchNorm after each, and a "
                       '1x1 conv for the input if use_1x1conv',
             'stride': 'the stride belongs on the first 3x3 conv and the 1x1 conv',
             'groups': 'the convs of this block have one group',
             'error': _ERROR,
             'outputs': 'compare your forward with conv-BN-ReLU-conv-BN, plus the input, ReLU'}
    return _check_class(cls, [("d2l's Residual", Residual)], _RESIDUAL_CASES, hints,
                        _residual_mistakes, strict)


def check_resnext_block(cls, strict=False):
    """Check a class like d2l's ``ResNeXtBlock(num_channels, groups, bot_mul,
    use_1x1conv=False, strides=1)``, ``groups`` being the cardinality.

    It is compared with ``gluon_resnet.blocks.ResNeXtBlock``:
    conv1x1-BN-ReLU, a 3x3 conv in ``groups`` groups with ``strides``-BN-ReLU,
    conv1x1-BN, plus the input (through a 1x1 conv with ``strides`` and a BN
    if ``use_1x1conv``), then ReLU; ``bot_channels = round(num_channels *
    bot_mul)``.  d2l 1.0.3's own block, which gives its conv ``bot_channels
    // groups`` groups, is told so.  Prints one line; returns True if right.

    Example: ``check_resnext_block(MyResNeXtBlock)``.
    """
    hints = {'shape': "is the stride on the 3x3 conv and the shortcut's 1x1 conv?",
             'layers': 'the block has three convs (1x1, 3x3 in groups, 1x1) with a BatchNorm '
                       'after each, and a 1x1 conv with a BatchNorm for the input if '
                       'use_1x1conv',
             'stride': "the stride belongs on the 3x3 conv and the shortcut's 1x1 conv",
             'groups': 'give the 3x3 conv `groups` groups, the cardinality of Xie et al. '
                       '(d2l 1.0.3 gives it bot_channels // groups, the width of each group)',
             'error': _ERROR,
             'outputs': 'compare your forward with conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1-BN, '
                        'plus the input, ReLU'}
    return _check_class(cls, [('the ResNeXt block', ResNeXtBlock)], _RESNEXT_CASES, hints,
                        _residual_mistakes, strict)


def _bottleneck(stride_on):
    def make(num_channels, use_1x1conv=False, strides=1):
        return Bottleneck(num_channels, strides, downsample=use_1x1conv, stride_on=stride_on)
    return make


def check_bottleneck(cls, strict=False):
    """Check a bottleneck class with d2l's arguments, ``(num_channels,
    use_1x1conv=False, strides=1)``.

    He et al.'s bottleneck (2015, Fig. 5): a 1x1 conv to ``num_channels // 4``
    channels, a 3x3 conv, a 1x1 conv back to ``num_channels``, a BatchNorm
    after each and a ReLU after the first two; plus the input (through a 1x1
    conv with ``strides`` and a BatchNorm if ``use_1x1conv``), then ReLU.  The
    stride may sit on the first 1x1 conv (the paper, MXNet's
    ``resnet50_v1``) or on the 3x3 conv (torchvision's "v1.5"); conv biases
    may be there or not.  Compared with ``gluon_resnet.Bottleneck``.  Prints
    one line; returns True if right.

    Example: ``check_bottleneck(MyBottleneck)``.
    """
    hints = {'shape': "is the stride on the first 1x1 conv (or the 3x3 conv) and on the "
                      "shortcut's 1x1 conv?",
             'layers': 'a bottleneck has three convs (1x1 to num_channels // 4 channels, 3x3, '
                       '1x1 back to num_channels) with a BatchNorm after each, and a 1x1 conv '
                       'with a BatchNorm for the input if use_1x1conv',
             'stride': 'the stride belongs on the first 1x1 conv (He et al.) or on the 3x3 '
                       "conv (torchvision's v1.5), and on the shortcut's 1x1 conv",
             'groups': "a bottleneck's convs have one group",
             'error': _ERROR,
             'outputs': 'compare your forward with conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1-BN, '
                        'plus the input, ReLU'}
    references = [("He et al.'s bottleneck (stride on the first 1x1 conv)", _bottleneck('1x1')),
                   ("torchvision's v1.5 bottleneck (stride on the 3x3 conv)", _bottleneck('3x3'))]
    return _check_class(cls, references, _BOTTLENECK_CASES, hints, _residual_mistakes, strict)


def _shortcut(option):
    def make(channels, stride, in_channels):
        return BasicBlock(channels, stride, True, in_channels, shortcut=option).downsample
    return make


def check_shortcut(cls, option='B', strict=False):
    """Check a shortcut class ``(channels, stride, in_channels)`` of He et al.'s
    ``option`` ``'A'`` or ``'B'`` (2015, section 3.3): what the input of a block
    goes through before the addition when the block changes its shape.

    Option A keeps every ``stride``-th pixel and appends zero channels up to
    ``channels`` (no parameters; ``ZeroPadShortcut``); option B is a 1x1 conv
    with ``stride`` and ``channels`` outputs followed by a BatchNorm.  Compared
    with the shortcut of the package's ``BasicBlock(..., shortcut=option)``.
    Prints one line; returns True if right.

    Example: ``check_shortcut(MyZeroPad, option='A')``.
    """
    if option not in _SHORTCUT_CASES:
        raise ValueError(f"option must be one of 'A', 'B', got {option!r}")
    if option == 'A':
        hints = {'shape': 'option A keeps every stride-th pixel and appends zero channels up '
                          'to `channels`',
                 'layers': 'option A has no parameters: it subsamples and pads with zeros',
                 'outputs': 'keep X[:, :, ::stride, ::stride] and append channels of zeros'}
        mistakes = _option_a_mistakes
    else:
        hints = {'shape': 'is the stride on the 1x1 conv, with `channels` outputs?',
                 'layers': 'option B is a 1x1 conv followed by a BatchNorm',
                 'outputs': 'option B is a 1x1 conv followed by a BatchNorm'}
        mistakes = _option_b_mistakes
    hints.update(stride='the 1x1 conv has the stride', groups='the 1x1 conv has one group',
                 error='are the channels and the stride taken in the order '
                       '(channels, stride, in_channels)?')
    return _check_class(cls, [(f'option {option}', _shortcut(option))], _SHORTCUT_CASES[option],
                        hints, mistakes, strict)


# Nets

def _residual_blocks(net):
    """``(path, block, parts)`` of every residual block in ``net`` (itself included)."""
    named = [(type(net).__name__, net)] + list(_named_blocks(net))
    return [(path, block, parts) for path, block in named
            for parts in [residual_parts(block)] if parts is not None]


def _main_path(block):
    """The conv and dense layers on the path from input to output, shortcuts left out."""
    if isinstance(block, (nn.Conv2D, nn.Dense)):
        return [block]
    parts = residual_parts(block)
    children = (parts.pre + parts.body + parts.post if parts else
                tuple(block._children.values()))
    return [layer for child in children if child is not RELU for layer in _main_path(child)]


def check_zero_gamma(net, strict=False):
    """Check that the last BatchNorm of every residual branch of ``net`` has
    gamma 0, and no other BatchNorm does.

    Goyal et al. (2017, section 5.1, https://arxiv.org/abs/1706.02677) start
    each residual block as the identity this way: the branch outputs 0, the
    block passes its input on.  That BatchNorm is ``bn2`` of d2l's
    ``Residual``, ``bn3`` of ``ResNeXtBlock``, the last of ``body`` of a
    ``BasicBlock`` or ``Bottleneck`` (in v2, the one before the last conv).
    The net must be initialized (run one batch if its shapes are deferred).
    Prints one line; returns True if right.  A net with no gamma at 0 at all
    is an exercise not started: the line says ``not done yet``, without ✗.

    Example: ``net = resnet18(); net.initialize(); net(X)``, then set the
    gammas (the exercise), then ``check_zero_gamma(net)``.
    """
    def is_zero(bn):
        return not _numpy(bn.gamma.data()).any()

    blocks = _residual_blocks(net)
    paths = {id(b): path for path, b in _named_blocks(net)}
    try:
        last = [(path, [b for b in parts.body if isinstance(b, nn.BatchNorm)][-1])
                for path, _, parts in blocks]
        nonzero = [(path, bn) for path, bn in last if not is_zero(bn)]
        others = [(path, b) for path, b in _named_blocks(net) if isinstance(b, nn.BatchNorm)
                  and b.gamma.grad_req != 'null' and all(b is not bn for _, bn in last)
                  and is_zero(b)]
    except RuntimeError:  # not initialized, or its shapes still deferred
        return _verdict("the net's parameters have no values yet: initialize it and run one "
                        'batch through it first', None, strict)
    if not blocks:
        diagnosis = 'the net has no residual block (BasicBlock, Bottleneck, Residual, ResNeXtBlock)'
    elif len(nonzero) == len(blocks) and not others:  # every gamma as initialized
        return _not_yet(f'no BatchNorm has gamma 0; set the gamma of the last BatchNorm of each '
                        f'of the {len(blocks)} residual branches to 0, then run this cell again',
                        strict)
    elif nonzero:
        path, bn = nonzero[0]
        diagnosis = (f'`{paths.get(id(bn), "")}`, the last BatchNorm of the residual branch of '
                     f'`{path}`, has a gamma that is not 0 (so do {len(nonzero) - 1} more of '
                     f'the {len(blocks)} blocks)')
    elif others:
        diagnosis = (f'`{others[0][0]}` has gamma 0 too ({_plural(len(others), "BatchNorm")} '
                     'in all): only the last BatchNorm of each residual branch should, or '
                     'what passes through it is lost')
    else:
        diagnosis = None
    return _verdict(diagnosis, f'the last BatchNorm of each of the {len(blocks)} residual '
                               'branches has gamma 0, and no other BatchNorm', strict)


def check_depth(net, depth, shortcuts=None, strict=False):
    """Check that ``net`` has ``depth`` weight layers, and shortcuts or none.

    The depth of a ResNet counts the conv and dense layers on the way from the
    input to the output, not the 1x1 convs of the shortcuts: ResNet-18 has a
    stem conv, 16 convs in 8 blocks and a dense layer.  ``shortcuts=True``
    wants a shortcut in every residual block, ``False`` a plain net (no block
    adds its input, as ``cifar_plain20``), ``None`` either.  Prints one line;
    returns True if right.

    Example: ``check_depth(my_plain_net, 32, shortcuts=False)``.
    """
    layers = _main_path(net)
    convs = sum(isinstance(b, nn.Conv2D) for b in layers)
    blocks = _residual_blocks(net)
    added = sum(parts.shortcut is not None for _, _, parts in blocks)
    if len(layers) != depth:
        diagnosis = (f'it has {len(layers)} weight layers on its main path ({convs} convs, '
                     f'{len(layers) - convs} dense), expected {depth}: the depth counts the '
                     "convs and dense layers from input to output, not the shortcuts' 1x1 convs")
    elif shortcuts and not blocks:
        diagnosis = 'it has no residual block, so no shortcut'
    elif shortcuts and added < len(blocks):
        diagnosis = f'{len(blocks) - added} of its {len(blocks)} blocks have no shortcut'
    elif shortcuts is False and added:
        diagnosis = (f'{added} of its {len(blocks)} blocks add their input: a plain net has '
                     'no shortcut (shortcut=None)')
    else:
        diagnosis = None
    kind = {True: f', a shortcut in each of its {len(blocks)} blocks', False: ', no shortcut',
            None: ''}[shortcuts]
    return _verdict(diagnosis, f'{depth} weight layers on the main path{kind}', strict)


def _check_count(answer, exact, what, where, hints, strict):
    """Right within 1%; else the hint of the first wrong count it matches."""
    def near(value):
        return value and abs(answer - value) <= 0.01 * abs(value)
    if near(exact):
        return _verdict(None, f'{where} has {exact:,} {what}', strict)
    wrong = f'{answer:,} is not the number of {what} of {where}'
    for value, hint in hints:
        if near(value):
            return _verdict(f'{wrong}: {hint}', None, strict)
    return _verdict(f'{wrong}: it is {answer / exact:.3g} times the count', None, strict)


def _net(net):
    """``(net, name)`` of a name of ``list_models()`` or a block; a block not
    initialized yet is copied, as ``layer_report`` would initialize it."""
    if isinstance(net, str):
        return get_model(net), net
    return net if is_initialized(net) else copy.deepcopy(net), type(net).__name__


def check_macs(macs, net, input_shape, strict=False):
    """Check a number of multiply-accumulates of ``net`` (a block, or a name of
    ``list_models()``) on a batch of ``input_shape`` ``(N, C, H, W)``.

    Right within 1% of ``layer_report(net, input_shape).total_macs``: convs
    and dense layers, ``prod(output shape) * in_channels/groups * kh * kw``
    for a conv.  Prints one line; returns True if right.

    Example: ``check_macs(30_000_000, 'resnet18', (1, 1, 28, 28))``.
    """
    net, name = _net(net)
    report = layer_report(net, input_shape)
    exact, batch = report.total_macs, input_shape[0]
    paths = {id(block): path for path, block in _named_blocks(net)}
    shortcuts = {paths[id(layer)] for _, _, parts in _residual_blocks(net)
                 for layer in parts.shortcut or ()}
    hints = [(2 * exact, 'that is twice the count: a multiply-accumulate is one '
                         'multiplication and one addition, counted once (the FLOPs of He et al.)'),
             (report.total_params, 'that is the number of parameters'),
             (exact - sum(r.macs for r in report.records if r.name in shortcuts),
              "the MACs of the shortcuts' 1x1 convs are missing")]
    if batch > 1:
        hints.append((exact // batch, f'that is for one image; the batch has {batch}'))
    height, width = input_shape[2:]
    if (height, width) != (224, 224):
        at_224 = layer_report(net, tuple(input_shape[:2]) + (224, 224)).total_macs
        sides = sorted({height} | {r.output_shape[2] for r in report.records
                                   if len(r.output_shape) == 4}, reverse=True)
        hints.append((at_224 * height * width / 224 ** 2,
                      f'that scales the count at 224x224 by the number of pixels, but the '
                      f'sides round up at each halving ({" -> ".join(map(str, sides))}): '
                      'count each layer at its own output size'))
    return _check_count(macs, exact, 'MACs', f'{name} on {tuple(input_shape)}', hints, strict)


def check_parameters(count, net, input_shape, strict=False):
    """Check a number of trainable parameters of ``net`` (a block, or a name of
    ``list_models()``) that takes batches of ``input_shape`` ``(N, C, H, W)``.

    Right within 1% of ``count_parameters``: weights, biases and BatchNorm
    scales and shifts, not the BatchNorm running statistics.  The input shape
    fixes the input channels of the first layer.  Prints one line; returns
    True if right.

    Example: ``check_parameters(546, Residual(6, use_1x1conv=True, strides=2), (1, 3, 6, 6))``.
    """
    net, name = _net(net)
    report = layer_report(net, input_shape)
    exact = report.total_params
    params = net.collect_params().values()

    def total(roles, trainable=True):
        return sum(p.data().size for p in params if p.name.endswith(roles)
                   and (p.grad_req != 'null' or not trainable))

    hints = [(total(('',), trainable=False), 'that counts the BatchNorm running means and '
                                             'variances, which are not learnt'),
             (exact - total(('bias',)), 'the biases are missing'),
             (exact - total(('gamma', 'beta')), "the BatchNorms' scales and shifts (gamma and "
                                               'beta, 2 per channel) are missing'),
             (report.total_macs, 'that is the number of MACs')]
    return _check_count(count, exact, 'parameters', f'{name} on {tuple(input_shape)}', hints,
                        strict)
