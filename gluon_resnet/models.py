"""ResNets by name: d2l's ResNet-18, the ImageNet and CIFAR nets of He et al.,
plain nets and wide ResNets.

==========================  ====================================================
name                        net
==========================  ====================================================
``resnet18``                d2l's ResNet-18 (``Residual`` blocks, conv biases)
``resnet{18..152}_v1``      He et al. 2015, Table 1 (https://arxiv.org/abs/1512.03385)
``resnet{18..152}_v2``      pre-activation, He et al. 2016 (https://arxiv.org/abs/1603.05027)
``cifar_resnet{20..110}_v1``  the 2015 paper's CIFAR nets: 6n+2 layers, 16/32/64
                            channels, option A shortcuts
``cifar_resnet{56,110}_v2``   pre-activation CIFAR nets, projection shortcuts
``cifar_resnet164_v2``      9n+2 layers of pre-activation bottlenecks (2016 paper)
``cifar_plain{20..56}``     the CIFAR v1 nets without shortcuts (degradation)
``cifar_wideresnet16_8``,   wide ResNets, depth 6n+4 and width factor k
``cifar_wideresnet28_10``   (Zagoruyko and Komodakis, https://arxiv.org/abs/1605.07146)
==========================  ====================================================

``get_model(name, **kwargs)`` builds one, ``list_models()`` lists the names.
"""
import difflib
import warnings

import mxnet as mx
from mxnet import nd
from mxnet.gluon import nn

from .blocks import BasicBlock, Bottleneck, Stage, check_positive, resnet_block

__all__ = ['initialize', 'INIT', 'ResNet', 'SequentialResNet', 'make_stage', 'resnet', 'cifar_resnet',
           'wide_resnet', 'check_input', 'check_model_name', 'get_model', 'list_models', 'register_model',
           'resnet_spec']


# Helpers

# He et al. 2015 (https://arxiv.org/abs/1502.01852): N(0, 2/fan_in) keeps the
# variance of activations constant through ReLU layers; with Xavier's 1/fan_avg
# it halves at every layer.
INIT = mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)


def initialize(net, seed=0, ctx=None):
    """Initialize ``net`` with He et al.'s normal init drawn from ``mx.random.seed(seed)``,
    on ``ctx`` (a context or a list; default the CPU); returns ``net``.  The same
    seed gives the same weights, as ``fit`` does for a net it initializes."""
    mx.random.seed(seed)
    net.initialize(INIT, ctx=ctx)
    return net


def _min_size(num_halvings):
    """Smallest image side for which every halving layer still sees 2 pixels."""
    return 2 ** (num_halvings - 1) + 1


def _first_conv(block):
    """The conv that sees the input (depth first; cheaper than ``collect_params``)."""
    for child in block._children.values():
        if isinstance(child, nn.Conv2D):
            return child
        conv = _first_conv(child)
        if conv is not None:
            return conv
    return None


def check_input(net, shape):
    """Raise ``ValueError`` unless ``shape`` is a batch ``(N, C, H, W)`` ``net`` can take."""
    name = type(net).__name__
    if len(shape) != 4:
        raise ValueError(f'{name} expects a batch of images of shape (N, C, H, W), '
                         f'got shape {tuple(shape)} of rank {len(shape)}')
    if min(shape) < 1:
        raise ValueError(f'{name} expects a non-empty batch, got shape {tuple(shape)}')
    _, channels, height, width = shape
    expected = _first_conv(net).weight.shape[1]
    if expected > 0 and channels != expected:  # unknown: 0, or -1 in numpy mode
        raise ValueError(f'{name} was initialized for {expected} input channels, '
                         f'got {channels} (input shape {tuple(shape)})')
    if min(height, width) < net.min_size:
        raise ValueError(f'{name} needs images of at least {net.min_size}x{net.min_size} '
                         f'pixels (it halves them {net.num_halvings} times), '
                         f'got {height}x{width}: resize the images')


class _CheckedInput:
    """Mixin: a clear ``ValueError`` for an input the net cannot take."""

    def forward(self, x, *args):
        if isinstance(x, nd.NDArray):  # also mx.np.ndarray; not a Symbol
            check_input(self, x.shape)
        return super().forward(x, *args)


def make_stage(block, width, num_blocks, stride, in_channels, **block_args):
    """``num_blocks`` blocks of ``width * block.expansion`` output channels.

    The first block has the stride, and a shortcut that changes the shape
    when the stride or the channel count does.
    """
    check_positive(width=width, num_blocks=num_blocks)
    channels = width * block.expansion
    stage = Stage()
    with stage.name_scope():
        for i in range(num_blocks):
            downsample = i == 0 and (stride != 1 or in_channels != channels)
            stage.add(block(channels, stride if i == 0 else 1, downsample,
                            in_channels if i == 0 else channels, **block_args))
    return stage


# Nets

class SequentialResNet(_CheckedInput, nn.HybridSequential):
    """A ``HybridSequential`` net that checks its input (d2l's ResNet-18)."""

    def __init__(self, num_halvings, **kwargs):
        super().__init__(**kwargs)
        self.num_halvings = num_halvings
        self.min_size = _min_size(num_halvings)


class ResNet(_CheckedInput, nn.HybridBlock):
    """Stem, stages of residual blocks, global average pool, dense layer.

    ``x : (N, C, H, W) -> (N, num_classes)``; ``C`` is inferred at the first call.

    Parameters
    ----------
    block : BasicBlock or Bottleneck
    layers : list of int
        Blocks per stage.
    widths : list of int
        Width of each stage; it outputs ``width * block.expansion`` channels.
        Every stage after the first halves height and width.
    num_classes : int, default 1000
    version : {1, 2}, default 1
        Post- or pre-activation blocks.  v2 also normalises the input with a
        parameter-free BatchNorm and ends with BN-ReLU, as MXNet's ``ResNetV2``.
    shortcut : {'B', 'A', None}, default 'B'
        Projection, zero padding, or none (plain nets).
    stem : {'imagenet', 'cifar'}, default 'imagenet'
        7x7 conv with stride 2 and 3x3 max pool (``H/4``), or one 3x3 conv.
    stem_channels : int, default 64
    """

    def __init__(self, block, layers, widths, num_classes=1000, version=1, shortcut='B',
                 stem='imagenet', stem_channels=64, **kwargs):
        super().__init__(**kwargs)
        check_positive(num_classes=num_classes, stem_channels=stem_channels)
        if stem not in ('imagenet', 'cifar'):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if len(layers) != len(widths) or not layers:
            raise ValueError(f'need one width per stage, got layers={layers}, widths={widths}')
        self.num_halvings = (2 if stem == 'imagenet' else 0) + len(layers) - 1
        self.min_size = _min_size(self.num_halvings)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            if version == 2:  # normalises the input; no learnt parameters
                self.features.add(nn.BatchNorm(scale=False, center=False))
            if stem == 'imagenet':
                self.features.add(nn.Conv2D(stem_channels, 7, 2, 3, use_bias=False),
                                  nn.BatchNorm(), nn.Activation('relu'), nn.MaxPool2D(3, 2, 1))
            else:
                self.features.add(nn.Conv2D(stem_channels, 3, 1, 1, use_bias=False))
                if version == 1:
                    self.features.add(nn.BatchNorm(), nn.Activation('relu'))
            in_channels = stem_channels
            for i, (num_blocks, width) in enumerate(zip(layers, widths)):
                self.features.add(make_stage(block, width, num_blocks, 1 if i == 0 else 2,
                                             in_channels, version=version, shortcut=shortcut))
                in_channels = width * block.expansion
            if version == 2:
                self.features.add(nn.BatchNorm(), nn.Activation('relu'))
            self.features.add(nn.GlobalAvgPool2D())
            self.output = nn.Dense(num_classes, in_units=in_channels)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


# Specification

# depth -> (block, blocks per stage), He et al. 2015, Table 1
resnet_spec = {18: (BasicBlock, [2, 2, 2, 2]),
               34: (BasicBlock, [3, 4, 6, 3]),
               50: (Bottleneck, [3, 4, 6, 3]),
               101: (Bottleneck, [3, 4, 23, 3]),
               152: (Bottleneck, [3, 8, 36, 3])}
imagenet_widths = [64, 128, 256, 512]
cifar_widths = [16, 32, 64]


# Constructor

def resnet(depth, version=1, num_classes=1000):
    """An ImageNet ResNet of ``depth`` in ``resnet_spec`` (18, 34, 50, 101, 152)."""
    if depth not in resnet_spec:
        raise ValueError(f'depth must be one of {sorted(resnet_spec)}, got {depth!r}')
    block, layers = resnet_spec[depth]
    return ResNet(block, layers, imagenet_widths, num_classes, version)


def cifar_resnet(depth, version=1, num_classes=10, block=BasicBlock, shortcut='A'):
    """A CIFAR ResNet: 3 stages of n blocks, 16/32/64 wide, 32x32 images.

    Depth is ``6n + 2`` with basic blocks (2 convs each) and ``9n + 2`` with
    bottlenecks (3 convs each), counting the stem conv and the dense layer.
    """
    convs_per_block = 2 if block is BasicBlock else 3
    if not isinstance(depth, int) or depth < 3 * convs_per_block + 2 \
            or (depth - 2) % (3 * convs_per_block):
        raise ValueError(f'a CIFAR ResNet of {block.__name__}s has depth '
                         f'{3 * convs_per_block}n+2 (n >= 1), got {depth!r}')
    n = (depth - 2) // (3 * convs_per_block)
    return ResNet(block, [n] * 3, cifar_widths, num_classes, version, shortcut,
                  stem='cifar', stem_channels=16)


def wide_resnet(depth, width_factor, num_classes=10):
    """WRN-depth-k: pre-activation basic blocks, 16k/32k/64k wide, depth 6n+4."""
    check_positive(width_factor=width_factor)
    if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f'a wide ResNet has depth 6n+4 (n >= 1), got {depth!r}')
    n = (depth - 4) // 6
    return ResNet(BasicBlock, [n] * 3, [w * width_factor for w in cifar_widths],
                  num_classes, version=2, stem='cifar', stem_channels=16)


_models = {}


def register_model(fn):
    """Decorator: add a factory to the registry under its function name."""
    if fn.__name__ in _models:
        warnings.warn(f'model {fn.__name__!r} registered twice; the later one wins')
    _models[fn.__name__] = fn
    return fn


def list_models():
    """The names ``get_model`` accepts, in registration order."""
    return list(_models)


def check_model_name(name):
    """Raise ``ValueError`` with the closest names unless ``name`` is registered."""
    if name not in _models:
        close = difflib.get_close_matches(str(name), _models, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ''
        raise ValueError(f'unknown model {name!r}{hint} '
                         f'(list_models() gives all {len(_models)} names)')
    return name


def get_model(name, **kwargs):
    """Build the net called ``name`` (see ``list_models()``); ``kwargs`` go to its factory."""
    return _models[check_model_name(name)](**kwargs)


@register_model
def resnet18(num_classes=10):
    """d2l's ResNet-18: 7x7 stem and max pool, four ``resnet_block`` stages."""
    check_positive(num_classes=num_classes)
    net = SequentialResNet(num_halvings=5)
    with net.name_scope():
        net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3),
                nn.BatchNorm(), nn.Activation('relu'),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        net.add(resnet_block(64, 2, first_block=True), resnet_block(128, 2),
                resnet_block(256, 2), resnet_block(512, 2))
        net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    return net


@register_model
def resnet18_v1(**kwargs): return resnet(18, 1, **kwargs)
@register_model
def resnet34_v1(**kwargs): return resnet(34, 1, **kwargs)
@register_model
def resnet50_v1(**kwargs): return resnet(50, 1, **kwargs)
@register_model
def resnet101_v1(**kwargs): return resnet(101, 1, **kwargs)
@register_model
def resnet152_v1(**kwargs): return resnet(152, 1, **kwargs)
@register_model
def resnet18_v2(**kwargs): return resnet(18, 2, **kwargs)
@register_model
def resnet34_v2(**kwargs): return resnet(34, 2, **kwargs)
@register_model
def resnet50_v2(**kwargs): return resnet(50, 2, **kwargs)
@register_model
def resnet101_v2(**kwargs): return resnet(101, 2, **kwargs)
@register_model
def resnet152_v2(**kwargs): return resnet(152, 2, **kwargs)
@register_model
def cifar_resnet20_v1(**kwargs): return cifar_resnet(20, 1, **kwargs)
@register_model
def cifar_resnet32_v1(**kwargs): return cifar_resnet(32, 1, **kwargs)
@register_model
def cifar_resnet44_v1(**kwargs): return cifar_resnet(44, 1, **kwargs)
@register_model
def cifar_resnet56_v1(**kwargs): return cifar_resnet(56, 1, **kwargs)
@register_model
def cifar_resnet110_v1(**kwargs): return cifar_resnet(110, 1, **kwargs)
@register_model
def cifar_resnet56_v2(**kwargs): return cifar_resnet(56, 2, shortcut='B', **kwargs)
@register_model
def cifar_resnet110_v2(**kwargs): return cifar_resnet(110, 2, shortcut='B', **kwargs)
@register_model
def cifar_resnet164_v2(**kwargs): return cifar_resnet(164, 2, block=Bottleneck, shortcut='B', **kwargs)
@register_model
def cifar_plain20(**kwargs): return cifar_resnet(20, 1, shortcut=None, **kwargs)
@register_model
def cifar_plain32(**kwargs): return cifar_resnet(32, 1, shortcut=None, **kwargs)
@register_model
def cifar_plain44(**kwargs): return cifar_resnet(44, 1, shortcut=None, **kwargs)
@register_model
def cifar_plain56(**kwargs): return cifar_resnet(56, 1, shortcut=None, **kwargs)
@register_model
def cifar_wideresnet16_8(**kwargs): return wide_resnet(16, 8, **kwargs)
@register_model
def cifar_wideresnet28_10(**kwargs): return wide_resnet(28, 10, **kwargs)
