"""Residual blocks: d2l's teaching blocks, the family from He et al., ResNeXt's.

Every block is a ``HybridBlock``: it runs imperatively or hybridized, with the
legacy ``mx.nd`` API or in MXNet's numpy mode (``npx.set_np()``, as d2l 1.0).

================  ============================================================
block             what it computes, ``x : (N, C, H, W)``
================  ============================================================
``Residual``      d2l: conv3x3-BN-ReLU-conv3x3-BN, plus ``x`` (or a 1x1 conv of
                  ``x``), then ReLU.  Convs keep their bias, as in the book.
``ResNeXtBlock``  d2l: conv1x1-BN-ReLU-conv3x3 in groups-BN-ReLU-conv1x1-BN,
                  plus ``x`` (or a 1x1 conv and BN of ``x``), then ReLU.
``BasicBlock``    two 3x3 convs (He et al. 2015, Fig. 2), no conv bias.
``Bottleneck``    1x1 conv to ``channels/4``, 3x3 conv, 1x1 conv back to
                  ``channels`` (He et al. 2015, Fig. 5); with ``cardinality``
                  and ``base_width``, ResNeXt's block (Xie et al. 2017).
================  ============================================================

``BasicBlock`` and ``Bottleneck`` take two variant arguments:

* ``version=1``: post-activation (conv-BN-ReLU ..., ReLU after the addition),
  https://arxiv.org/abs/1512.03385.  ``version=2``: pre-activation
  (BN-ReLU-conv ..., nothing after the addition), https://arxiv.org/abs/1603.05027.
* ``shortcut='B'``: identity, or a 1x1 projection when the shape changes;
  ``'A'``: identity, or strided subsampling plus zero channels (no parameters);
  ``None``: no shortcut at all, the "plain" nets of the degradation experiment.

``Bottleneck`` takes three more, timm's way of making ResNeXt a variant of the
bottleneck rather than a copy of it:

=================================================  ============================
arguments                                          block
=================================================  ============================
(defaults)                                         ResNet's, stride as MXNet's
                                                   model zoo
``stride_on='3x3'``                                torchvision's ResNet-50
                                                   "v1.5"
``cardinality=32, base_width=4, stride_on='3x3'``  ResNeXt-50 (32x4d): its 3x3
                                                   conv has 32 groups of 4
                                                   channels in the first stage
=================================================  ============================
"""
from dataclasses import dataclass
from typing import Optional

from mxnet.gluon import nn
from mxnet.util import is_np_array

from .checks import check_choice, check_int, check_number, check_positive

__all__ = ['Residual', 'resnet_block', 'ResNeXtBlock', 'Stage', 'BasicBlock', 'Bottleneck',
           'ZeroPadShortcut', 'GlobalAvgPool2D', 'SHORTCUTS', 'VERSIONS', 'STRIDE_ON', 'RELU', 'ResidualParts',
           'residual_parts']

SHORTCUTS = ('A', 'B', None)
VERSIONS = (1, 2)
STRIDE_ON = (None, '1x1', '3x3')  # which conv of a bottleneck has the stride


# Helpers

def _relu(F, x):
    return F.npx.relu(x) if is_np_array() else F.relu(x)


def _conv3x3(channels, stride=1, in_channels=0, groups=1):
    return nn.Conv2D(channels, kernel_size=3, strides=stride, padding=1, groups=groups,
                     use_bias=False, in_channels=in_channels)


def _conv1x1(channels, stride=1, in_channels=0):
    return nn.Conv2D(channels, kernel_size=1, strides=stride,
                     use_bias=False, in_channels=in_channels)


def _check_sizes(channels, stride, in_channels):
    """``(channels, stride, in_channels)`` as Python ints (numpy ints are checked and
    converted: MXNet's layers want ``int``); ``in_channels`` may be 0, "infer"."""
    check_positive(channels=channels, stride=stride)
    return int(channels), int(stride), check_int(in_channels, 'in_channels', minimum=0)


class Stage(nn.HybridSequential):
    """A sequence of residual blocks at one resolution (named ``stage0``, ...)."""

    def _alias(self):
        return 'stage'


# Blocks

class Residual(nn.HybridBlock):
    """The residual block of d2l (Dive into Deep Learning, section 8.6).

    ``x : (N, C, H, W) -> (N, num_channels, ceil(H/strides), ceil(W/strides))``.
    Without ``use_1x1conv`` the input must already have ``num_channels``
    channels and ``strides`` must be 1, or the addition fails.

    Parameters
    ----------
    num_channels : int
        Output channels of both 3x3 convs (and of the 1x1 conv).
    use_1x1conv : bool, default False
        Pass the input through a 1x1 conv (with ``strides``) before adding it.
    strides : int, default 1
        Stride of the first 3x3 conv and of the 1x1 conv.
    """

    def __init__(self, num_channels, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(**kwargs)
        check_positive(num_channels=num_channels, strides=strides)
        num_channels, strides = int(num_channels), int(strides)  # numpy ints: MXNet wants int
        with self.name_scope():
            self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)
            self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
            if use_1x1conv:
                self.conv3 = nn.Conv2D(num_channels, kernel_size=1, strides=strides)
            else:
                self.conv3 = None
            self.bn1 = nn.BatchNorm()
            self.bn2 = nn.BatchNorm()

    def hybrid_forward(self, F, X):
        Y = _relu(F, self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return _relu(F, Y + X)


def resnet_block(num_channels, num_residuals, first_block=False):
    """A d2l stage: ``num_residuals`` ``Residual`` blocks.

    The first block halves height and width and projects with a 1x1 conv,
    unless ``first_block`` (the stage right after the stem's max pool).
    ``(N, C, H, W) -> (N, num_channels, H/2, W/2)``, or ``(..., H, W)`` if first.
    """
    check_positive(num_channels=num_channels, num_residuals=num_residuals)
    blk = Stage()
    with blk.name_scope():
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.add(Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.add(Residual(num_channels))
    return blk


class ResNeXtBlock(nn.HybridBlock):
    """The ResNeXt block of d2l (section 8.6), with ``groups`` as the paper's cardinality.

    conv1x1-BN-ReLU, a 3x3 conv of ``groups`` groups (with ``strides``)-BN-ReLU,
    conv1x1-BN; plus ``x`` (or a 1x1 conv with ``strides`` and BN of ``x``),
    then ReLU.  The layers, their order and their conv biases are d2l's.
    ``x : (N, C, H, W) -> (N, num_channels, ceil(H/strides), ceil(W/strides))``.

    d2l 1.0.3's block gives its 3x3 conv ``bot_channels // groups`` groups, so
    that there ``groups`` is the *width* of each group; here it is the number
    of groups, the cardinality of Xie et al. (https://arxiv.org/abs/1611.05431,
    section 3.3), as d2l's text describes.  The two blocks coincide when
    ``groups ** 2 == bot_channels``.

    Parameters
    ----------
    num_channels : int
        Output channels of the block (and of its last 1x1 conv).
    groups : int
        Number of groups of the 3x3 conv; must divide ``bot_channels``.
    bot_mul : float
        ``bot_channels = round(num_channels * bot_mul)``, the channels of the
        first 1x1 and the 3x3 conv.
    use_1x1conv : bool, default False
        Pass the input through a 1x1 conv (with ``strides``) and BN before adding it.
    strides : int, default 1
        Stride of the 3x3 conv and of the 1x1 shortcut conv.

    Example: ``blk = ResNeXtBlock(32, 4, 1); blk.initialize();
    blk(mx.nd.zeros((4, 32, 96, 96))).shape`` is ``(4, 32, 96, 96)``.
    """

    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(**kwargs)
        check_positive(num_channels=num_channels, groups=groups, strides=strides)
        num_channels, groups, strides = int(num_channels), int(groups), int(strides)
        bot_channels = int(round(num_channels * check_number(bot_mul, 'bot_mul', low=0,
                                                             low_open=True)))
        if bot_channels < 1 or bot_channels % groups:
            raise ValueError(f'groups must divide bot_channels = round(num_channels * bot_mul) '
                             f'= {bot_channels}, got groups={groups}')
        with self.name_scope():
            self.conv1 = nn.Conv2D(bot_channels, kernel_size=1)
            self.conv2 = nn.Conv2D(bot_channels, kernel_size=3, padding=1, strides=strides,
                                   groups=groups)
            self.conv3 = nn.Conv2D(num_channels, kernel_size=1)
            self.bn1 = nn.BatchNorm()
            self.bn2 = nn.BatchNorm()
            self.bn3 = nn.BatchNorm()
            if use_1x1conv:
                self.conv4 = nn.Conv2D(num_channels, kernel_size=1, strides=strides)
                self.bn4 = nn.BatchNorm()
            else:
                self.conv4 = None

    def hybrid_forward(self, F, X):
        Y = _relu(F, self.bn1(self.conv1(X)))
        Y = _relu(F, self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4:
            X = self.bn4(self.conv4(X))
        return _relu(F, Y + X)


class ZeroPadShortcut(nn.HybridBlock):
    """Option A shortcut: subsample by ``stride``, append zero channels.

    ``(N, in_channels, H, W) -> (N, channels, ceil(H/stride), ceil(W/stride))``,
    with no parameters (He et al. 2015, section 3.3 and the CIFAR nets).
    """

    def __init__(self, channels, stride, in_channels, **kwargs):
        super().__init__(**kwargs)
        channels, stride, in_channels = _check_sizes(channels, stride, in_channels)
        if not 0 < in_channels <= channels <= 2 * in_channels:
            raise ValueError('option A pads at most as many channels as it has: '
                             f'need in_channels <= channels <= 2 * in_channels, '
                             f'got in_channels={in_channels}, channels={channels}')
        self.extra = channels - in_channels
        with self.name_scope():
            # A 1x1 pooling window with a stride keeps every stride-th pixel.
            self.subsample = nn.AvgPool2D(pool_size=1, strides=stride)

    def hybrid_forward(self, F, x):
        x = self.subsample(x)
        if not self.extra:
            return x
        if is_np_array():
            zeros = F.np.zeros_like(F.npx.slice(x, begin=(None, 0), end=(None, self.extra)))
            return F.np.concatenate([x, zeros], axis=1)
        zeros = F.zeros_like(F.slice_axis(x, axis=1, begin=0, end=self.extra))
        return F.concat(x, zeros, dim=1)


class GlobalAvgPool2D(nn.GlobalAvgPool2D):
    """``nn.GlobalAvgPool2D`` by another op: ``(N, C, H, W) -> (N, C, 1, 1)``,
    the mean over height and width, the same numbers to float rounding.

    Why: on AVX-512 CPUs the oneDNN 2.4 of MXNet 1.9.1 returns the global
    pooling's gradient in a layout (``acdB16b``) for which it has only
    reference code for the BatchNorm backward that follows, in every block of
    the last stage.  ``cifar_resnet20_v1`` at 28x28, batch 128, on a 2-core
    Intel Xeon (Ice Lake): 210 -> 309 training images/s.  MXNet's adaptive
    pooling (ONNX: GlobalAveragePool, as the pooling op), or in numpy mode
    the mean, has plain gradients.
    """

    def hybrid_forward(self, F, x):
        if is_np_array():
            return F.np.mean(x, axis=(2, 3), keepdims=True)
        return F.contrib.AdaptiveAvgPooling2D(x, output_size=1)


class _ResidualUnit(nn.HybridBlock):
    """Wires convs into a v1 or v2 residual block; subclasses choose the convs.

    v1: ``relu(body(x) + shortcut(x))``, body = conv, BN, ReLU, ..., conv, BN.
    v2: ``body(p) + shortcut(p or x)`` with ``p = relu(BN(x))``,
    body = conv, BN, ReLU, ..., conv.  The shortcut sees ``p`` when it changes
    the shape and ``x`` itself when it is the identity, as in MXNet's model zoo.
    """

    expansion = 1

    def __init__(self, channels, stride, downsample, in_channels, version, shortcut,
                 **kwargs):
        super().__init__(**kwargs)
        channels, stride, in_channels = _check_sizes(channels, stride, in_channels)
        if channels % self.expansion:
            raise ValueError(f'{type(self).__name__} needs channels divisible by '
                             f'{self.expansion}, got {channels}')
        check_choice(version, 'version', VERSIONS)
        check_choice(shortcut, 'shortcut', SHORTCUTS)
        self.version = int(version)
        self.has_shortcut = shortcut is not None
        with self.name_scope():
            if version == 2:
                self.preact = nn.HybridSequential(prefix='')
                self.preact.add(nn.BatchNorm(), nn.Activation('relu'))
            self.body = nn.HybridSequential(prefix='')
            for i, conv in enumerate(self._convs(channels, stride, in_channels, version)):
                if i and version == 1:
                    self.body.add(nn.Activation('relu'))
                if i and version == 2:
                    self.body.add(nn.BatchNorm(), nn.Activation('relu'))
                self.body.add(conv)
                if version == 1:
                    self.body.add(nn.BatchNorm())
            self.downsample = None
            if downsample and shortcut == 'B':
                self.downsample = nn.HybridSequential(prefix='')
                self.downsample.add(_conv1x1(channels, stride, in_channels))
                if version == 1:
                    self.downsample.add(nn.BatchNorm())
            elif downsample and shortcut == 'A':
                self.downsample = ZeroPadShortcut(channels, stride, in_channels)

    def _convs(self, channels, stride, in_channels, version):
        raise NotImplementedError

    def hybrid_forward(self, F, x):
        if self.version == 1:
            out = self.body(x)
            if self.has_shortcut:
                out = out + (self.downsample(x) if self.downsample else x)
            return _relu(F, out)
        preact = self.preact(x)
        out = self.body(preact)
        if self.has_shortcut:
            out = out + (self.downsample(preact) if self.downsample else x)
        return out


class BasicBlock(_ResidualUnit):
    """Two 3x3 convs with ``channels`` outputs; the first has the stride.

    ``x : (N, in_channels, H, W) -> (N, channels, H/stride, W/stride)``.

    Parameters
    ----------
    channels : int
        Output channels.
    stride : int, default 1
        Stride of the first conv (and of the shortcut).
    downsample : bool, default False
        Whether the shortcut must change the shape (stride or channels).
    in_channels : int, default 0
        Input channels; 0 infers them at the first call (option A needs them).
    version : {1, 2}, default 1
        Post- (1) or pre-activation (2) order.
    shortcut : {'B', 'A', None}, default 'B'
        Projection, zero padding, or no shortcut (a plain block).
    """

    expansion = 1

    def __init__(self, channels, stride=1, downsample=False, in_channels=0, version=1,
                 shortcut='B', **kwargs):
        super().__init__(channels, stride, downsample, in_channels, version, shortcut,
                         **kwargs)

    def _convs(self, channels, stride, in_channels, version):
        return [_conv3x3(channels, stride, in_channels), _conv3x3(channels, 1, channels)]


class Bottleneck(_ResidualUnit):
    """1x1 conv to ``width``, 3x3 conv, 1x1 conv back to ``channels``.

    ``x : (N, in_channels, H, W) -> (N, channels, H/stride, W/stride)``.
    ``width = channels // 4 * base_width // 64 * cardinality``, torchvision's
    ``int(planes * (base_width / 64.0)) * groups``: ``channels // 4`` by
    default; ResNeXt-50 (32x4d) has ``cardinality=32, base_width=4``, 128
    channels in 32 groups of 4 where ResNet-50 has 64 (Xie et al. 2017,
    Table 1, https://arxiv.org/abs/1611.05431).

    Where the stride sits follows MXNet's model zoo by default, so that our
    nets equal its nets: on the first 1x1 conv in v1 (as in the 2015 paper and
    ``BottleneckV1``), on the 3x3 conv in v2 (as ``BottleneckV2``).  The 2016
    paper's own code (``resnet-pre-act.lua`` in KaimingHe/resnet-1k-layers,
    built on fb.resnet.torch) keeps it on the first 1x1 conv in v2 too; the
    3x3 placement runs that 1x1 conv at the full input size, which costs
    ``cifar_resnet164_v2`` 247,646,720 instead of 244,500,992 MACs per
    32x32 image (+1.3%, measured with ``layer_report``).  torchvision's
    ResNet-50 is "v1.5": v1 with the stride on the 3x3 conv
    (``stride_on='3x3'``), which costs 4.1 instead of 3.8 GMACs at 224x224
    and is slightly more accurate; the ResNeXt paper counts ResNet-50 that
    way (4.1 GFLOPs), and torchvision's and GluonCV's ResNeXts put the stride
    on the grouped 3x3 conv too.  Unlike MXNet's ``BottleneckV1`` the 1x1
    convs have no bias (a BatchNorm follows each).

    Parameters
    ----------
    channels, stride, downsample, in_channels, version, shortcut
        As ``BasicBlock``.
    cardinality : int, default 1
        Groups of the 3x3 conv.
    base_width : int, default 64
        Channels of each group at ``channels = 256``; they scale with ``channels``.
    stride_on : {None, '1x1', '3x3'}, default None
        The conv with the stride: the first 1x1 or the 3x3; ``None`` follows
        the model zoo (``'1x1'`` in v1, ``'3x3'`` in v2).

    Example: ``Bottleneck(256, cardinality=32, base_width=4, stride_on='3x3')``
    is the first block of ResNeXt-50's first stage.
    """

    expansion = 4

    def __init__(self, channels, stride=1, downsample=False, in_channels=0, version=1,
                 shortcut='B', cardinality=1, base_width=64, stride_on=None, **kwargs):
        check_positive(channels=channels, cardinality=cardinality, base_width=base_width)
        self.cardinality, self.base_width = int(cardinality), int(base_width)
        self.stride_on = check_choice(stride_on, 'stride_on', STRIDE_ON)
        if int(channels) // self.expansion * self.base_width // 64 < 1:
            raise ValueError(f'a Bottleneck of {channels} channels and base_width '
                             f'{base_width} has groups of 0 channels: need channels // 4 '
                             '* base_width >= 64')
        super().__init__(channels, stride, downsample, in_channels, version, shortcut,
                         **kwargs)

    def _convs(self, channels, stride, in_channels, version):
        width = channels // self.expansion * self.base_width // 64 * self.cardinality
        stride_on = self.stride_on or ('1x1' if version == 1 else '3x3')
        stride_1x1, stride_3x3 = (stride, 1) if stride_on == '1x1' else (1, stride)
        return [_conv1x1(width, stride_1x1, in_channels),
                _conv3x3(width, stride_3x3, width, groups=self.cardinality),
                _conv1x1(channels, 1, width)]


# Wiring

RELU = 'relu'  # in `ResidualParts`, a ReLU that a block applies as a function, not a layer


@dataclass(frozen=True)
class ResidualParts:
    """The wiring of a residual block, its layers in the order they run.

    The block computes ``post(body(p) + shortcut(p if tap_preact else x))``
    with ``p = pre(x)``, each part applying its layers in turn; ``RELU``
    stands for a ReLU applied as a function (d2l's ``npx.relu``).
    ``shortcut`` is ``()`` for the identity and ``None`` for a plain block,
    which adds nothing.  ``exercises`` and ``draw`` read blocks through it.
    """
    pre: tuple
    body: tuple
    shortcut: Optional[tuple]
    post: tuple
    tap_preact: bool = False


def _is_d2l(block, name):
    return type(block).__name__ == name and type(block).__module__.startswith('d2l')


def residual_parts(block):
    """The ``ResidualParts`` of a ``BasicBlock``, ``Bottleneck``, ``Residual`` or
    ``ResNeXtBlock`` (ours or d2l's), or ``None`` for any other block.

    Example: ``residual_parts(Residual(8, use_1x1conv=True)).shortcut`` is
    ``(conv3,)``, the block's 1x1 conv.
    """
    if isinstance(block, _ResidualUnit):
        v2 = block.version == 2
        if not block.has_shortcut:
            shortcut = None
        elif isinstance(block.downsample, nn.HybridSequential):
            shortcut = tuple(block.downsample)
        else:  # identity, or option A's ZeroPadShortcut
            shortcut = (block.downsample,) if block.downsample else ()
        return ResidualParts(tuple(block.preact) if v2 else (), tuple(block.body), shortcut,
                             () if v2 else (RELU,), tap_preact=v2 and bool(shortcut))
    if isinstance(block, Residual) or _is_d2l(block, 'Residual'):
        return ResidualParts((), (block.conv1, block.bn1, RELU, block.conv2, block.bn2),
                             (block.conv3,) if block.conv3 else (), (RELU,))
    if isinstance(block, ResNeXtBlock) or _is_d2l(block, 'ResNeXtBlock'):
        return ResidualParts((), (block.conv1, block.bn1, RELU, block.conv2, block.bn2, RELU,
                                  block.conv3, block.bn3),
                             (block.conv4, block.bn4) if block.conv4 else (), (RELU,))
    return None
