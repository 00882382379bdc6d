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

Checkers run in MXNet's current array mode: ``mx.np`` after ``npx.set_np()``
(as d2l 1.0), else ``mx.nd``.

The package: ``compare`` runs a student's block class against the package's
and tells the first difference, ``mistakes`` makes the known wrong wirings of
a block, ``block_checks`` and ``net_checks`` hold the checkers.
"""
from .block_checks import check_bottleneck, check_residual, check_resnext_block, check_shortcut
from .net_checks import check_depth, check_macs, check_parameters, check_zero_gamma

__all__ = ['check_residual', 'check_bottleneck', 'check_resnext_block', 'check_shortcut',
           'check_zero_gamma', 'check_depth', 'check_macs', 'check_parameters']
