"""Argument checks shared by the library and its command-line tools.

Each check returns the value as a plain Python ``int`` or ``float`` or raises
``ValueError`` with one line that names the argument, what it must be and
what it got.  The checks of ``fit``'s inputs (its settings, loaders, batches
and labels) are here too, below the general ones.  Integers are every ``numbers.Integral`` (Python's and numpy's
alike) except ``bool``; numbers are every finite ``numbers.Real`` except ``bool``.
"""
import collections.abc
import difflib
import math
import numbers

import numpy as np

from .schedules import SCHEDULES

__all__ = ['is_integer', 'is_number', 'check_int', 'check_positive', 'check_number',
           'check_choice', 'describe_int', 'describe_number', 'check_settings', 'check_amp',
           'check_loaders', 'check_batch', 'check_labels']


def is_integer(value):
    """Whether ``value`` is an integer: ``3``, ``np.int64(3)``; not ``True`` or ``3.0``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    """Whether ``value`` is a finite real number (integers included, not ``bool``)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value)


def check_int(value, name, minimum=None, maximum=None):
    """``int(value)`` if it is an integer in ``[minimum, maximum]``, else ``ValueError``."""
    if not is_integer(value) or (minimum is not None and value < minimum) \
            or (maximum is not None and value > maximum):
        raise ValueError(f'{name} must be {describe_int(minimum, maximum)}, got {value!r}')
    return int(value)


def check_positive(**values):
    """Raise ``ValueError`` unless every value is a positive integer: ``check_positive(depth=3)``."""
    for name, value in values.items():
        check_int(value, name, minimum=1)


def check_number(value, name, low=None, high=None, high_open=False, low_open=False):
    """``float(value)`` if it is a finite number within the bounds, else ``ValueError``.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``.
    """
    ok = is_number(value) and not (
        low is not None and (value <= low if low_open else value < low)) and not (
        high is not None and (value >= high if high_open else value > high))
    if not ok:
        raise ValueError(f'{name} must be {describe_number(low, high, low_open, high_open)}, '
                         f'got {value!r}')
    return float(value)


def check_choice(value, name, choices):
    """``value`` if it is one of ``choices``, else ``ValueError`` with a close match.
    ``True`` is not ``1`` here, nor ``'1'``: a choice matches by type too."""
    if any(value == choice and type(value) is type(choice) for choice in choices) or (
            is_integer(value) and any(is_integer(c) and value == c for c in choices)):
        return value
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    hint = f'; did you mean {close[0]!r}?' if close and close[0] != str(value) else ''
    raise ValueError(f'{name} must be one of {", ".join(map(repr, choices))}, '
                     f'got {value!r}{hint}')


def describe_int(minimum=None, maximum=None):
    """What ``check_int`` accepts, in words: ``'a positive integer'``."""
    if minimum == 1 and maximum is None:
        return 'a positive integer'
    if minimum == 0 and maximum is None:
        return 'a non-negative integer'
    if maximum is None:
        return f'an integer >= {minimum}'
    if minimum is None:
        return f'an integer <= {maximum}'
    return f'an integer from {minimum} to {maximum}'


def describe_number(low=None, high=None, low_open=False, high_open=False):
    """What ``check_number`` accepts, in words: ``'a number in [0, 1)'``."""
    if low == 0 and low_open and high is None:
        return 'a positive number'
    if high is None:
        return f'a number {">" if low_open else ">="} {low:g}' if low is not None \
            else 'a finite number'
    if low is None:
        return f'a number {"<" if high_open else "<="} {high:g}'
    return f'a number in {"(" if low_open else "["}{low:g}, {high:g}{")" if high_open else "]"}'


# The inputs of fit

def check_settings(num_epochs, lr, schedule='cosine', warmup_epochs=0, wd=5e-4, momentum=0.9,
                   label_smoothing=0.0, seed=0):
    """Raise ``ValueError`` naming the first bad training setting of ``fit``."""
    check_int(num_epochs, 'num_epochs', minimum=1)
    check_number(lr, 'lr', low=0, low_open=True)
    check_choice(schedule, 'schedule', SCHEDULES)
    check_int(warmup_epochs, 'warmup_epochs', minimum=0)
    if warmup_epochs >= num_epochs:
        raise ValueError(f'warmup_epochs must be less than num_epochs ({num_epochs}), '
                         f'got {warmup_epochs!r}')
    check_number(wd, 'wd', low=0)
    check_number(momentum, 'momentum', low=0, high=1, high_open=True)
    check_number(label_smoothing, 'label_smoothing', low=0, high=1, high_open=True)
    check_int(seed, 'seed', minimum=0)


def check_amp(amp, ctx):
    """Raise ``ValueError`` if ``amp`` is asked for on devices ``ctx`` without float16 kernels."""
    if amp and any(c.device_type != 'gpu' for c in ctx):
        raise ValueError('amp (float16 mixed precision) needs GPUs (--ctx gpu): MXNet has no '
                         f'float16 training kernels for the CPU; got {ctx}')


def check_loaders(train_iter, test_iter):
    """Raise ``ValueError`` unless both are re-iterable, sized and not empty."""
    for name, data in (('train_iter', train_iter), ('test_iter', test_iter)):
        if isinstance(data, collections.abc.Iterator) or not hasattr(data, '__len__'):
            raise ValueError(f'{name} must be a sized iterable that can be iterated again every '
                             'epoch (a list of batches, a DataLoader, load_data\'s loaders), '
                             f'got {type(data).__name__}')
        if len(data) < 1:
            raise ValueError(f'{name} has no batches: expected at least one')


def check_batch(batch):
    """Raise ``ValueError`` unless ``batch`` is ``(X, y)`` with ``X : (N, C, H, W)``
    and ``y : (N,)``; returns the pair."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        size = f' of length {len(batch)}' if isinstance(batch, (tuple, list)) else ''
        raise ValueError(f'train_iter must yield pairs (X, y), got a {type(batch).__name__}{size}')
    X, y = batch
    if len(X.shape) != 4:
        raise ValueError(f'images X must have shape (N, C, H, W), got {tuple(X.shape)}')
    if len(y.shape) != 1:
        raise ValueError(f'labels y must have shape (N,), one class index per image, got '
                         f'{tuple(y.shape)} (one-hot labels? pass y.argmax(axis=1))')
    if len(y) != len(X):
        raise ValueError(f'a batch has {len(X)} images but {len(y)} labels: expected as many')
    return X, y


def check_labels(y, num_classes):
    """Raise ``ValueError`` unless the labels ``y`` are class indices below ``num_classes``."""
    labels = y.asnumpy()
    if (labels != np.round(labels)).any() or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f'labels must be class indices 0..{num_classes - 1} (the net has '
                         f'{num_classes} outputs), got values from {labels.min():g} to '
                         f'{labels.max():g}')
