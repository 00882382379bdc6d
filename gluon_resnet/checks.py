"""Argument checks shared by the library and its command-line tools.

Each check returns the value as a plain Python ``int`` or ``float`` or raises
``ValueError`` with one line that names the argument, what it must be and
what it got.  Integers are every ``numbers.Integral`` (Python's and numpy's
alike) except ``bool``; numbers are every finite ``numbers.Real`` except ``bool``.
"""
import difflib
import math
import numbers

__all__ = ['is_integer', 'is_number', 'check_int', 'check_positive', 'check_number',
           'check_choice', 'describe_int', 'describe_number']


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
