"""How an answer is compared with the package's own and told: the verdict
lines every checker prints, and the engine that checks a block class.

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
"""
import collections
import itertools
import math

import mxnet as mx
import numpy as np
from mxnet import autograd
from mxnet.gluon import nn

from ..report import named_children
from .._arrays import arrays

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
    return arrays().array(values, dtype='float32')


def _numpy(x):
    return x.asnumpy() if hasattr(x, 'asnumpy') else np.asarray(x)



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
