"""The exercise checkers on right answers and on the typical wrong ones.

The wrong answers are small blocks written as a student would (d2l's style,
numpy mode, ``npx.relu``), each wrong in one place; every checker must accept
the right answers and name each mistake in its one-sentence diagnosis.
"""
import mxnet as mx
import numpy
import pytest
from mxnet import np, npx
from mxnet.gluon import nn

from conftest import numpy_mode
from d2l import mxnet as d2l

from gluon_resnet import BasicBlock, Bottleneck, Residual, get_model, resnet18
from gluon_resnet.blocks import ResNeXtBlock, ZeroPadShortcut, residual_parts
from gluon_resnet.exercises import (check_bottleneck, check_depth, check_macs, check_parameters,
                                    check_residual, check_resnext_block, check_shortcut,
                                    check_zero_gamma)
from gluon_resnet.exercises.compare import _named_blocks, _randomize
from gluon_resnet.exercises.mistakes import _residual_mistakes, _run
from gluon_resnet.models import cifar_resnet, is_initialized
from gluon_resnet.report import layer_report

relu = npx.relu


def answer(base, forward=None, init=None, name='MyBlock'):
    """A student's class: ``base`` with its ``forward``, or its layers changed after
    ``base.__init__`` by ``init(self, *args, **kwargs)``."""
    def __init__(self, *args, **kwargs):
        base.__init__(self, *args, **kwargs)
        if init:
            init(self, *args, **kwargs)
    members = {'__init__': __init__}
    if forward:
        members['forward'] = forward
    return type(name, (base,), members)


def expect(checker, cls, match, **kwargs):
    """``checker`` rejects ``cls`` with a diagnosis that matches ``match``."""
    with pytest.raises(AssertionError, match=match):
        checker(cls, strict=True, **kwargs)


# The printed verdict ------------------------------------------------------------

def test_verdict_is_printed_and_returned(capsys):
    with numpy_mode():
        assert check_residual(d2l.Residual) is True
        assert capsys.readouterr().out == ("✓ correct: Residual computes d2l's Residual in 3 "
                                           'configurations, in prediction and training\n')
        wrong = answer(d2l.Residual, lambda b, X: b.bn2(b.conv2(relu(b.bn1(b.conv1(X))))) + X,
                       name='MyResidual')
        assert check_residual(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith('✗ MyResidual(6): outputs differ after copying the weights: ')
    assert len(out.splitlines()) == 1


# check_residual -----------------------------------------------------------------

def body(b, X, act=relu):
    """d2l's residual branch, with ``act`` between the convs."""
    return b.bn2(b.conv2(act(b.bn1(b.conv1(X)))))


def shortcut(b, X):
    return b.conv3(X) if b.conv3 else X


def no_strides(b, num_channels, use_1x1conv=False, strides=1):
    b.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
    if use_1x1conv:
        b.conv3 = nn.Conv2D(num_channels, kernel_size=1)


def stride_on_conv2(b, num_channels, use_1x1conv=False, strides=1):
    b.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
    b.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)


class Unbiased(nn.Block):
    """A right answer in another style: no conv biases, BatchNorms declared first."""

    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm(), nn.BatchNorm()
        self.conv1 = nn.Conv2D(num_channels, 3, strides, 1, use_bias=False)
        self.conv2 = nn.Conv2D(num_channels, 3, 1, 1, use_bias=False)
        self.conv3 = nn.Conv2D(num_channels, 1, strides) if use_1x1conv else None

    def forward(self, X):
        return relu(body(self, X) + shortcut(self, X))


class OneBatchNorm(Unbiased):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        nn.Block.__init__(self)
        self.conv1 = nn.Conv2D(num_channels, 3, strides, 1)
        self.bn1 = nn.BatchNorm()
        self.conv2 = nn.Conv2D(num_channels, 3, 1, 1)
        self.conv3 = nn.Conv2D(num_channels, 1, strides) if use_1x1conv else None

    def forward(self, X):
        return relu(self.conv2(relu(self.bn1(self.conv1(X)))) + shortcut(self, X))


@pytest.mark.parametrize('cls', [d2l.Residual, Residual, Unbiased])
def test_residual_right_answers(cls):
    with numpy_mode():
        assert check_residual(cls, strict=True)


def test_residual_right_in_legacy_mode_too():
    assert check_residual(Residual, strict=True)


@pytest.mark.parametrize('cls,match', [
    (answer(d2l.Residual, lambda b, X: body(b, X) + shortcut(b, X)),
     'outputs differ after copying the weights: a ReLU missing after the addition[?]$'),
    (answer(d2l.Residual, lambda b, X: relu(body(b, X)) + shortcut(b, X)),
     'the shortcut added after the final ReLU[?]$'),
    (answer(d2l.Residual, lambda b, X: relu(b.bn2(b.conv2(relu(b.bn1(b.conv1(X)))) +
                                                shortcut(b, X)))),
     'is the shortcut added before the last BatchNorm[?]$'),
    (answer(d2l.Residual, lambda b, X: relu(body(b, X, act=lambda Y: Y) + shortcut(b, X))),
     'a ReLU missing after the first BatchNorm[?]$'),
    (answer(d2l.Residual, lambda b, X: relu(body(b, X))),
     'is the input added to the output of the body[?]$'),
    (answer(d2l.Residual, lambda b, X: relu(body(b, X) + X)),  # the 1x1 conv left out
     r'MyBlock\(6, use_1x1conv=True, strides=2\) on a batch of shape \(4, 3, 8, 8\) raised '
     r'MXNetError: .*do both sides of the addition have the same shape[?]$'),
    (answer(d2l.Residual, init=no_strides),
     r'^the output shape of MyBlock\(6, use_1x1conv=True, strides=2\) is \(4, 6, 8, 8\), '
     r'expected \(4, 6, 4, 4\): is the stride on the first conv and the 1x1 conv[?]$'),
    (answer(d2l.Residual, init=stride_on_conv2),
     r'`conv2` \(a 3x3 conv from 6 to 6 channels\) has stride 2, expected 1: the stride '
     'belongs on the first 3x3 conv and the 1x1 conv$'),
    (answer(d2l.Residual, init=lambda b, n, **k: setattr(b, 'conv2', nn.Conv2D(n, 1))),
     '`conv2` is a 1x1 conv from 6 to 6 channels, expected a 3x3 conv from 6 to 6 channels$'),
    (OneBatchNorm, 'it has 1 BatchNorm layer, expected 2: '),
])
def test_residual_wrong_answers(cls, match):
    with numpy_mode():
        expect(check_residual, cls, match)


def test_residual_wrong_array_mode_instance_and_signature():
    # d2l's block calls npx.relu: it cannot run on legacy mx.nd arrays
    expect(check_residual, d2l.Residual, r'Residual\(6\) runs only in the other array mode '
                                         r'of MXNet: call it after npx.set_np\(\)')
    with numpy_mode():
        expect(check_residual, d2l.Residual(6), 'pass the class itself, not a block built from it')
        expect(check_residual, answer(d2l.Residual, init=lambda b, n: None),
               r"MyBlock\(6, use_1x1conv=True, strides=2\) raised TypeError: .*unexpected "
               "keyword argument 'use_1x1conv'")


def test_mistakes_rebuild_the_reference():
    """Run without a mistake, the parts of each block compute the block; with
    each mistake, something else (random BatchNorm statistics and shifts)."""
    cases = [(Residual(6, use_1x1conv=True, strides=2), (2, 3, 8, 8)),
             (ResNeXtBlock(16, 4, 0.5, use_1x1conv=True), (2, 8, 8, 8)),
             (Bottleneck(32, 2, True, 16), (2, 16, 8, 8)),
             (Bottleneck(32, 2, True, 16, version=2), (2, 16, 8, 8)),
             (BasicBlock(32, 2, True, 16, version=2, shortcut='A'), (2, 16, 8, 8)),
             (BasicBlock(16, version=2), (2, 16, 8, 8)),
             (BasicBlock(16, shortcut=None), (2, 16, 8, 8))]
    rng = numpy.random.default_rng(0)
    for blk, shape in cases:
        blk.initialize()
        X = mx.nd.array(rng.normal(size=shape))
        blk(X)
        _randomize(blk, rng)
        expected = blk(X).asnumpy()
        assert abs(_run(residual_parts(blk), X).asnumpy() - expected).max() < 1e-6
        for message, wrong in _residual_mistakes(blk):
            try:
                assert abs(wrong(X).asnumpy() - expected).max() > 1e-2, message
            except mx.MXNetError:
                pass  # a mistake that does not fit these shapes


# check_resnext_block ------------------------------------------------------------

def resnext_forward(b, X, act2=relu, add_bn4=True, relu_then_add=False):
    Y = act2(b.bn2(b.conv2(relu(b.bn1(b.conv1(X))))))
    Y = b.bn3(b.conv3(Y))
    if b.conv4:
        X = b.conv4(X)
        X = b.bn4(X) if add_bn4 else X
    return relu(Y) + X if relu_then_add else relu(Y + X)


def stride_on_conv1(b, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
    bot_channels = int(round(num_channels * bot_mul))
    b.conv1 = nn.Conv2D(bot_channels, kernel_size=1, strides=strides)
    b.conv2 = nn.Conv2D(bot_channels, kernel_size=3, padding=1, groups=groups)


class NoShortcutBatchNorm(ResNeXtBlock):
    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
        super().__init__(num_channels, groups, bot_mul, use_1x1conv, strides)
        if use_1x1conv:
            self._children.pop('bn4')
            del self.bn4

    def forward(self, X):
        return resnext_forward(self, X, add_bn4=False)


def test_resnext_right_answers():
    with numpy_mode():
        assert check_resnext_block(ResNeXtBlock, strict=True)
        assert check_resnext_block(answer(ResNeXtBlock, resnext_forward), strict=True)
    assert check_resnext_block(ResNeXtBlock, strict=True)


@pytest.mark.parametrize('cls,match', [
    # d2l 1.0.3's own block: `groups` is the width of a group
    (d2l.ResNeXtBlock, r'^ResNeXtBlock\(32, 4, 1\): `conv2` is a 3x3 conv from 32 to 32 '
                       'channels in 8 groups, expected a 3x3 conv from 32 to 32 channels in 4 '
                       'groups: give the 3x3 conv `groups` groups, the cardinality of Xie et '
                       r'al. \(d2l 1.0.3 gives it bot_channels // groups, the width of each '
                       r'group\)$'),
    (answer(ResNeXtBlock, init=lambda b, n, g, m, **k: setattr(
        b, 'conv2', nn.Conv2D(b.conv2._channels, 3, padding=1))), 'in 4 groups: give the 3x3'),
    (answer(ResNeXtBlock, init=stride_on_conv1),
     '`conv1` .* has stride 2, expected 1: the stride belongs on the 3x3 conv and the '
     "shortcut's 1x1 conv$"),
    (answer(ResNeXtBlock, lambda b, X: resnext_forward(b, X, add_bn4=False)),
     '`bn4` is never used: its shape is still unknown after a forward pass$'),
    (answer(ResNeXtBlock, lambda b, X: resnext_forward(b, X, add_bn4=False),
            init=lambda b, n, *a, **k: b.conv4 and setattr(b, 'bn4', nn.BatchNorm(in_channels=n))),
     "is the BatchNorm applied after the shortcut's 1x1 conv[?]$"),
    (answer(ResNeXtBlock, lambda b, X: resnext_forward(b, X, act2=lambda Y: Y)),
     'a ReLU missing after the second BatchNorm[?]$'),
    (NoShortcutBatchNorm, 'it has 3 BatchNorm layers, expected 4: .* a 1x1 conv with a '
                          'BatchNorm for the input if use_1x1conv$'),
])
def test_resnext_wrong_answers(cls, match):
    with numpy_mode():
        expect(check_resnext_block, cls, match)


# check_bottleneck -----------------------------------------------------------------

def bottleneck(stride_on='3x3', bot_mul=0.25, forward=None):
    """A student's bottleneck: a ResNeXt block of one group is a bottleneck with
    the stride on the 3x3 conv; ``stride_on`` moves it."""
    base = answer(ResNeXtBlock, forward)
    def init(b, num_channels, use_1x1conv=False, strides=1):
        bot_channels = int(num_channels * bot_mul)
        if stride_on != '3x3':
            conv = 'conv1' if stride_on == '1x1' else 'conv3'
            setattr(b, conv, nn.Conv2D(getattr(b, conv)._channels, 1, strides=strides))
            b.conv2 = nn.Conv2D(bot_channels, 3, padding=1)

    def make(num_channels, use_1x1conv=False, strides=1):
        blk = base(num_channels, 1, bot_mul, use_1x1conv, strides)
        init(blk, num_channels, use_1x1conv, strides)
        return blk
    make.__name__ = 'MyBottleneck'
    return make


@pytest.mark.parametrize('cls,reference', [(bottleneck('1x1'), "He et al.'s bottleneck"),
                                           (bottleneck('3x3'), "torchvision's v1.5"),
                                           (lambda n, use_1x1conv=False, strides=1:
                                            d2l.ResNeXtBlock(n, n // 4, 0.25, use_1x1conv,
                                                             strides), "torchvision's v1.5")])
def test_bottleneck_right_answers(cls, reference, capsys):
    with numpy_mode():
        assert check_bottleneck(cls, strict=True)
    assert reference in capsys.readouterr().out


@pytest.mark.parametrize('cls,match', [
    (bottleneck('last 1x1'), r'`conv3` \(a 1x1 conv from 8 to 32 channels\) has stride 2, '
                             'expected 1: the stride belongs on the first 1x1 conv'),
    (bottleneck(bot_mul=0.5), '`conv1` is a 1x1 conv from 32 to 16 channels, expected a 1x1 '
                              'conv from 32 to 8 channels$'),
    (lambda n, use_1x1conv=False, strides=1: NoShortcutBatchNorm(n, 1, 0.25, use_1x1conv,
                                                                  strides),
     'it has 3 BatchNorm layers, expected 4: a bottleneck has three convs'),
    (d2l.Residual, 'it has 2 conv layers, expected 3: a bottleneck has three convs'),
    # pre-activation: the same layers, in another order
    (lambda n, use_1x1conv=False, strides=1: Bottleneck(n, strides, use_1x1conv, version=2),
     r'outputs differ after copying the weights, by up to .* in prediction mode: compare your '
     'forward with conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1-BN, plus the input, ReLU$'),
    (bottleneck(forward=lambda b, X: resnext_forward(b, X, relu_then_add=True)),
     'is the shortcut added after the final ReLU[?]$'),
])
def test_bottleneck_wrong_answers(cls, match):
    with numpy_mode():
        expect(check_bottleneck, cls, match)


# check_shortcut -----------------------------------------------------------------

class MyZeroPad(nn.Block):
    """Option A as a student writes it; ``mistake`` makes it wrong in one place."""
    mistake = None

    def __init__(self, channels, stride, in_channels):
        super().__init__()
        self.stride, self.extra = stride, channels - in_channels

    def forward(self, X):
        s, m = self.stride, self.mistake
        if m in ('mean', 'max'):
            n, c, h, w = X.shape
            X = getattr(X.reshape(n, c, h // s, s, w // s, s), m)(axis=(3, 5))
        else:
            start = int(m == 'start 1')
            X = X[:, :, start::s, start::s]
        zeros = np.zeros((X.shape[0], self.extra) + X.shape[2:])
        parts = {'zeros first': [zeros, X], 'copies': [X, X[:, :self.extra]]}.get(m, [X, zeros])
        return np.concatenate(parts, axis=1)


def zero_pad(mistake):
    return type('MyZeroPad', (MyZeroPad,), {'mistake': mistake})


def projection(*layers):
    def make(channels, stride, in_channels):
        blk = nn.Sequential()
        blk.add(*[layer(channels, stride) for layer in layers])
        return blk
    make.__name__ = 'MyProjection'
    return make


conv1x1 = lambda c, s: nn.Conv2D(c, 1, s)  # noqa: E731
batchnorm = lambda c, s: nn.BatchNorm()  # noqa: E731


def test_shortcut_right_answers():
    assert check_shortcut(ZeroPadShortcut, 'A', strict=True)
    with numpy_mode():
        assert check_shortcut(MyZeroPad, 'A', strict=True)
        assert check_shortcut(projection(conv1x1, batchnorm), 'B', strict=True)
    with pytest.raises(ValueError, match="option must be one of 'A', 'B', got 'C'"):
        check_shortcut(MyZeroPad, 'C')


@pytest.mark.parametrize('cls,option,match', [
    (zero_pad('zeros first'), 'A', "are the zero channels put before the input's[?] they come "
                                   'after them$'),
    (zero_pad('start 1'), 'A', 'does the subsampling start at pixel 1[?]'),
    (zero_pad('mean'), 'A', 'does it average 2x2 windows[?]'),
    (zero_pad('max'), 'A', 'does it take the largest of 2x2 pixels[?]'),
    (zero_pad('copies'), 'A', 'are the new channels copies of the input[?] option A appends zeros'),
    (projection(conv1x1, batchnorm), 'A', 'it has 1 conv layer, expected 0: option A has no '
                                          'parameters'),
    (projection(conv1x1), 'B', 'it has 0 BatchNorm layers, expected 1: option B is a 1x1 conv '
                               'followed by a BatchNorm$'),
    (projection(batchnorm, conv1x1), 'B', r'`batchnorm0` is a BatchNorm of 16 channels, '
                                          'expected a BatchNorm of 32 channels$'),
    (projection(conv1x1, batchnorm, lambda c, s: nn.Activation('relu')), 'B',
     'is there a ReLU on the shortcut[?]'),
    (projection(lambda c, s: nn.Conv2D(c, 3, s, 1), batchnorm), 'B',
     'is a 3x3 conv from 16 to 32 channels, expected a 1x1 conv from 16 to 32 channels$'),
    (projection(lambda c, s: nn.Conv2D(c, 1), batchnorm), 'B',
     r'is \(4, 32, 8, 8\), expected \(4, 32, 4, 4\): is the stride on the 1x1 conv'),
])
def test_shortcut_wrong_answers(cls, option, match):
    with numpy_mode():
        expect(check_shortcut, cls, match, option=option)


# check_zero_gamma -----------------------------------------------------------------

def ready(net, shape):
    net.initialize()
    net(mx.nd.zeros(shape))
    return net


def zero(batchnorms):
    for bn in batchnorms:
        bn.gamma.set_data(mx.nd.zeros(bn.gamma.shape))


def last_batchnorms(net):
    """The answer: the last BatchNorm of each residual branch."""
    return [[b for b in parts.body if isinstance(b, nn.BatchNorm)][-1]
            for _, blk in _named_blocks(net) for parts in [residual_parts(blk)] if parts]


@pytest.mark.parametrize('name,shape', [('resnet18', (1, 1, 32, 32)),
                                        ('cifar_resnet20_v1', (1, 3, 32, 32)),
                                        ('resnet50_v1', (1, 3, 32, 32)),
                                        ('cifar_resnet56_v2', (1, 3, 32, 32))])
def test_zero_gamma_right_answers(name, shape):
    net = ready(get_model(name), shape)
    zero(last_batchnorms(net))
    assert check_zero_gamma(net, strict=True)
    if name == 'resnet18':  # the d2l blocks: bn2 of each
        assert all(b.bn2.gamma.data().sum() == 0 for stage in list(net)[4:8] for b in stage)


def test_zero_gamma_in_d2l_net():
    with numpy_mode():
        net = nn.Sequential()
        net.add(nn.Conv2D(8, 3, padding=1), d2l.Residual(8), d2l.ResNeXtBlock(8, 2, 0.5))
        net.initialize()
        net(np.zeros((1, 3, 8, 8)))
        net[1].bn2.gamma.set_data(np.zeros(8))
        net[2].bn3.gamma.set_data(np.zeros(8))
        assert check_zero_gamma(net, strict=True)


@pytest.mark.parametrize('change,match', [
    (lambda net: zero(last_batchnorms(net)[:1]),
     r'^`stage0/residual1/bn2`, the last BatchNorm of the residual branch of '
     r'`stage0/residual1`, has a gamma that is not 0 \(so do 6 more of the 8 blocks\)$'),
    (lambda net: zero(last_batchnorms(net)[:2]), '`stage1/residual0/bn2`.* 5 more of the 8'),
    # the first BatchNorm of each block instead of the last
    (lambda net: zero([blk.bn1 for stage in list(net)[4:8] for blk in stage]),
     '^`stage0/residual0/bn2`, .* has a gamma that is not 0'),
    (lambda net: zero([b for _, b in _named_blocks(net) if isinstance(b, nn.BatchNorm)]),
     r'^`batchnorm0` has gamma 0 too \(9 BatchNorms in all\): only the last BatchNorm of '
     'each residual branch should'),
    (lambda net: zero(last_batchnorms(net) + [net[5][0].bn1]),
     '`stage1/residual0/bn1` has gamma 0'),
])
def test_zero_gamma_wrong_answers(change, match):
    net = ready(resnet18(), (1, 1, 32, 32))
    change(net)
    with pytest.raises(AssertionError, match=match):
        check_zero_gamma(net, strict=True)


def test_zero_gamma_not_started_is_no_mistake(capsys):
    net = ready(resnet18(), (1, 1, 32, 32))  # every gamma still 1: the exercise as stored
    assert check_zero_gamma(net) is False
    line = capsys.readouterr().out
    assert line == ('not done yet: no BatchNorm has gamma 0; set the gamma of the last BatchNorm '
                    'of each of the 8 residual branches to 0, then run this cell again\n')
    with pytest.raises(AssertionError, match='^not done yet: '):
        check_zero_gamma(net, strict=True)


def test_zero_gamma_needs_values_and_residual_blocks():
    with pytest.raises(AssertionError, match='initialize it and run one batch'):
        check_zero_gamma(resnet18(), strict=True)
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3), nn.BatchNorm())
    with pytest.raises(AssertionError, match='the net has no residual block'):
        check_zero_gamma(ready(net, (1, 3, 8, 8)), strict=True)


# check_depth ----------------------------------------------------------------------

@pytest.mark.parametrize('net,depth,shortcuts', [
    (resnet18(), 18, True), (get_model('resnet50_v1'), 50, True),
    (get_model('cifar_plain32'), 32, False), (cifar_resnet(32, shortcut='B'), 32, True),
    (get_model('cifar_resnet164_v2'), 164, None), (get_model('cifar_resnet110_v1'), 110, True)])
def test_depth_right_answers(net, depth, shortcuts):
    assert check_depth(net, depth, shortcuts, strict=True)


@pytest.mark.parametrize('net,depth,shortcuts,match', [
    # the 1x1 projections are not counted: resnet18 has 3 of them, not 21 layers
    (resnet18(), 21, True, r'^it has 18 weight layers on its main path \(17 convs, 1 dense\), '
                           'expected 21: the depth counts the convs and dense layers from input '
                           "to output, not the shortcuts' 1x1 convs$"),
    (cifar_resnet(20), 32, True, 'it has 20 weight layers'),  # 6n + 2 with n = 3, not 5
    (get_model('cifar_plain32'), 32, True, '^15 of its 15 blocks have no shortcut$'),
    (get_model('cifar_resnet32_v1'), 32, False, '^15 of its 15 blocks add their input: a plain '
                                                r'net has no shortcut \(shortcut=None\)$'),
    (nn.HybridSequential(), 0, True, 'it has no residual block, so no shortcut'),
])
def test_depth_wrong_answers(net, depth, shortcuts, match):
    with pytest.raises(AssertionError, match=match):
        check_depth(net, depth, shortcuts, strict=True)


# check_macs, check_parameters ----------------------------------------------------------

def test_macs_right_and_wrong():
    report = layer_report(resnet18(), (1, 1, 28, 28))
    exact = report.total_macs
    shortcuts = sum(r.macs for r in report.records if r.name.endswith('conv3'))
    assert shortcuts > 0.01 * exact
    assert check_macs(exact, 'resnet18', (1, 1, 28, 28), strict=True)
    assert check_macs(round(exact * 1.005), resnet18(), (1, 1, 28, 28), strict=True)
    at_224 = layer_report(resnet18(), (1, 1, 224, 224)).total_macs
    assert at_224 == 1734890496
    for wrong, match in [
            (2 * exact, 'is not the number of MACs of resnet18 on \\(1, 1, 28, 28\\): that is '
                        'twice the count'),
            (report.total_params, 'that is the number of parameters'),
            (exact - shortcuts, "the MACs of the shortcuts' 1x1 convs are missing"),
            (at_224 / 64, r'that scales the count at 224x224 by the number of pixels, but the '
                          r'sides round up at each halving \(28 -> 14 -> 7 -> 4 -> 2 -> 1\)'),
            (exact / 3, r'it is 0.333 times the count$')]:
        with pytest.raises(AssertionError, match=match):
            check_macs(wrong, 'resnet18', (1, 1, 28, 28), strict=True)
    with pytest.raises(AssertionError, match='that is for one image; the batch has 4'):
        check_macs(exact, 'resnet18', (4, 1, 28, 28), strict=True)


def test_parameters_right_and_wrong():
    # notebook 1's block: 168 + 330 + 24 conv parameters, 2 x 12 of BatchNorm
    blk = Residual(6, use_1x1conv=True, strides=2)
    assert check_parameters(546, blk, (1, 3, 6, 6), strict=True)
    assert not is_initialized(blk)  # checked on a copy: `fit` would not give it He's init
    for wrong, match in [(546 + 24, 'counts the BatchNorm running means and variances'),
                         (546 - 18, 'the biases are missing'),
                         (546 - 24, "the BatchNorms' scales and shifts"),
                         (layer_report(blk, (1, 3, 6, 6)).total_macs,
                          'that is the number of MACs')]:
        with pytest.raises(AssertionError, match=match):
            check_parameters(wrong, blk, (1, 3, 6, 6), strict=True)
    assert check_parameters(11178378, 'resnet18', (1, 1, 96, 96), strict=True)


def test_mistakes_only_for_blocks_with_a_shortcut():
    plain = BasicBlock(16, shortcut=None)
    assert [message for message, _ in _residual_mistakes(plain)] == [
        'a ReLU missing after the first BatchNorm?']
