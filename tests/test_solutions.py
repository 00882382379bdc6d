"""The answers in ``notebooks/solutions/`` pass the notebooks' checkers, strictly.

Each solution file answers the code exercises of the notebook of the same
name; the checkers run with ``strict=True``, so a wrong answer fails the test
with the checker's diagnosis.  The files start with a digit, so they are
loaded by path rather than imported by name.
"""
import importlib.util
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from gluon_resnet import get_model, resnet18
from gluon_resnet import exercises as ex
from gluon_resnet.viz import confusion_matrix

SOLUTIONS_DIR = Path(__file__).resolve().parent.parent / 'notebooks' / 'solutions'
NOTEBOOKS_DIR = SOLUTIONS_DIR.parent


def solution(stem):
    """The module ``notebooks/solutions/<stem>.py``."""
    path = SOLUTIONS_DIR / f'{stem}.py'
    spec = importlib.util.spec_from_file_location(f'solution_{stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_solution_file_per_notebook():
    notebooks = {path.stem for path in NOTEBOOKS_DIR.glob('*.ipynb')}
    solutions = {path.stem for path in SOLUTIONS_DIR.glob('*.py')}
    assert notebooks == solutions, f'notebooks without solutions: {sorted(notebooks - solutions)}'


def test_01_residual_block():
    answers = solution('01_residual_block')
    assert ex.check_residual(answers.MyResidual, strict=True)
    net = resnet18()
    net.initialize()
    net(mx.nd.zeros((1, 1, 96, 96)))
    assert ex.check_zero_gamma(answers.zero_gamma(net), strict=True)
    net = get_model('cifar_resnet56_v1')
    net.initialize()
    net(mx.nd.zeros((1, 1, 32, 32)))
    assert ex.check_zero_gamma(answers.zero_gamma_cifar(net), strict=True)


@pytest.mark.parametrize('side', [28, 96, 224])
def test_02_macs_by_hand(side):
    answers = solution('02_resnet18_layer_by_layer')
    assert ex.check_macs(answers.resnet18_macs(side), 'resnet18', (1, 1, side, side), strict=True)


def test_02_parameters_by_hand():
    answers = solution('02_resnet18_layer_by_layer')
    assert ex.check_parameters(answers.resnet18_parameters(), 'resnet18', (1, 1, 224, 224),
                               strict=True)


def test_03_confusion_matrix():
    answers = solution('03_training_resnet18')
    rng = np.random.default_rng(0)
    labels, predicted = rng.integers(0, 10, 200), rng.integers(0, 10, 200)
    np.testing.assert_array_equal(answers.my_confusion_matrix(labels, predicted, 10),
                                  confusion_matrix(labels, predicted, 10))


def test_04_degradation():
    answers = solution('04_degradation')
    for depth in (32, 44):
        assert ex.check_depth(answers.plain_net(depth), depth, shortcuts=False, strict=True)
        assert ex.check_depth(answers.residual_net(depth), depth, shortcuts=True, strict=True)
    assert ex.check_shortcut(answers.MyProjection, option='B', strict=True)


def test_05_family():
    answers = solution('05_family')
    assert ex.check_resnext_block(answers.MyResNeXtBlock, strict=True)
    assert ex.check_bottleneck(answers.MyBottleneck, strict=True)
    assert ex.check_shortcut(answers.MyZeroPad, option='A', strict=True)


def test_06_parameters_by_hand():
    answers = solution('06_inside_the_network')
    assert ex.check_parameters(answers.cifar_resnet20_parameters(),
                               get_model('cifar_resnet20_v1'), (1, 1, 32, 32), strict=True)
