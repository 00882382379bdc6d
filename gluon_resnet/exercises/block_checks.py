"""Checkers of a student's block class: ``check_residual``,
``check_resnext_block``, ``check_bottleneck``, ``check_shortcut``."""
from ..blocks import BasicBlock, Bottleneck, ResNeXtBlock, Residual
from .compare import _check_class
from .mistakes import _option_a_mistakes, _option_b_mistakes, _residual_mistakes

__all__ = ['check_residual', 'check_bottleneck', 'check_resnext_block', 'check_shortcut']

BATCH = 4


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
