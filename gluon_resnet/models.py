"""ResNets by name: d2l's ResNet-18, the ImageNet and CIFAR nets of He et al.,
plain nets, wide ResNets and ResNeXt-50.

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
``resnext50_32x4d``         ResNeXt-50, 32 groups of 4 channels (Xie et al. 2017,
                            Table 1, https://arxiv.org/abs/1611.05431)
==========================  ====================================================

``get_model(name, **kwargs)`` builds one, ``list_models()`` lists the names,
``model_info(name)`` says what a name is: its description, the input shape
``(C, H, W)`` it was designed for and its default number of classes
(timm's ``default_cfgs``); ``model_infos()`` gives them all.
"""
import difflib
import inspect
import warnings
from dataclasses import dataclass

import mxnet as mx
from mxnet import nd
from mxnet.gluon import nn

from .blocks import BasicBlock, Bottleneck, GlobalAvgPool2D, Stage, resnet_block
from .checks import check_choice, check_int, check_positive, is_integer

__all__ = ['initialize', 'is_initialized', 'INIT', 'ResNet', 'SequentialResNet', 'make_stage', 'resnet',
           'cifar_resnet', 'wide_resnet', 'resnext', 'check_input', 'check_model_name', 'get_model',
           'list_models', 'register_model', 'ModelInfo', 'model_info', 'model_infos',
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


def is_initialized(net):
    """Whether every parameter of ``net`` was initialized (some may still wait
    for the shapes of the first batch).  ``layer_report`` initializes the
    others with Gluon's default; ``draw`` and the exercise checkers report a
    copy of a net that is not, so that ``fit`` still gives it He et al.'s."""
    try:
        for param in net.collect_params().values():
            param.list_ctx()  # raises for a parameter never initialized
    except RuntimeError:
        return False
    return True


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


# MXNet 1.9.1's wheels index tensors with 32-bit integers (no USE_INT64_TENSOR_SIZE)
MAX_TENSOR_ELEMENTS = 2 ** 31 - 1


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
    conv = _first_conv(net)
    stride_h, stride_w = conv._kwargs['stride']
    first_output = shape[0] * conv._channels * -(-height // stride_h) * -(-width // stride_w)
    if max(first_output, shape[0] * channels * height * width) > MAX_TENSOR_ELEMENTS:
        raise ValueError(f'{name} on a batch of shape {tuple(shape)} makes its first conv output '
                         f'{first_output:,} numbers: MXNet 1.9.1 holds at most '
                         f'{MAX_TENSOR_ELEMENTS:,} (2^31 - 1) in one tensor; use fewer or '
                         'smaller images')


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
    channels = int(width) * block.expansion
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
    block_args : dict, optional
        More arguments of every block (timm's ``block_args``): ResNeXt-50 is
        ``Bottleneck`` with ``dict(cardinality=32, base_width=4, stride_on='3x3')``.
    """

    def __init__(self, block, layers, widths, num_classes=1000, version=1, shortcut='B',
                 stem='imagenet', stem_channels=64, block_args=None, **kwargs):
        super().__init__(**kwargs)
        check_positive(num_classes=num_classes, stem_channels=stem_channels)
        num_classes, stem_channels = int(num_classes), int(stem_channels)  # numpy ints
        check_choice(stem, 'stem', ('imagenet', 'cifar'))
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
                                             in_channels, version=version, shortcut=shortcut,
                                             **(block_args or {})))
                in_channels = int(width) * block.expansion
            if version == 2:
                self.features.add(nn.BatchNorm(), nn.Activation('relu'))
            self.features.add(GlobalAvgPool2D())  # as nn's, faster (blocks.GlobalAvgPool2D)
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
    block, layers = resnet_spec[check_choice(depth, 'depth', sorted(resnet_spec))]
    return ResNet(block, layers, imagenet_widths, num_classes, version)


def cifar_resnet(depth, version=1, num_classes=10, block=BasicBlock, shortcut='A'):
    """A CIFAR ResNet: 3 stages of n blocks, 16/32/64 wide, 32x32 images.

    Depth is ``6n + 2`` with basic blocks (2 convs each) and ``9n + 2`` with
    bottlenecks (3 convs each), counting the stem conv and the dense layer.
    """
    convs_per_block = 2 if block is BasicBlock else 3
    if not is_integer(depth) or depth < 3 * convs_per_block + 2 \
            or (depth - 2) % (3 * convs_per_block):
        raise ValueError(f'a CIFAR ResNet of {block.__name__}s has depth '
                         f'{3 * convs_per_block}n+2 (n >= 1), got {depth!r}')
    n = int(depth - 2) // (3 * convs_per_block)
    return ResNet(block, [n] * 3, cifar_widths, num_classes, version, shortcut,
                  stem='cifar', stem_channels=16)


def wide_resnet(depth, width_factor, num_classes=10):
    """WRN-depth-k: pre-activation basic blocks, 16k/32k/64k wide, depth 6n+4."""
    check_positive(width_factor=width_factor)
    if not is_integer(depth) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f'a wide ResNet has depth 6n+4 (n >= 1), got {depth!r}')
    n = int(depth - 4) // 6
    return ResNet(BasicBlock, [n] * 3, [w * width_factor for w in cifar_widths],
                  num_classes, version=2, stem='cifar', stem_channels=16)


def resnext(depth, cardinality, base_width, num_classes=1000):
    """ResNeXt-``depth`` (``{cardinality}x{base_width}d``): the bottlenecks of
    ResNet-``depth`` with a 3x3 conv of ``cardinality`` groups of ``base_width``
    channels in the first stage, which has the stride (Xie et al. 2017, Table 1)."""
    block, layers = resnet_spec[check_choice(depth, 'depth', [50, 101, 152])]
    return ResNet(block, layers, imagenet_widths, num_classes,
                  block_args=dict(cardinality=cardinality, base_width=base_width,
                                  stride_on='3x3'))


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows of a model besides its factory (timm's ``default_cfgs``).

    ``input_shape`` is the ``(C, H, W)`` of the images the net was designed
    for; it takes other sizes too (``min_size`` pixels and up) and infers ``C``
    at its first call.  ``num_classes`` is the factory's default.
    """
    name: str
    description: str
    input_shape: tuple
    num_classes: int


_models = {}  # name -> factory
_infos = {}   # name -> ModelInfo


def _docstring(info, own_doc):
    """The ``__doc__`` of a registered factory, made from its ``ModelInfo``."""
    channels, height, width = info.input_shape
    parts = [f'{info.description}.']
    if own_doc:
        parts.append(inspect.cleandoc(own_doc))
    parts.append(f'``x : (N, {channels}, {height}, {width}) -> (N, num_classes)``, the input it '
                 f'was designed for\n(others work too); ``model_info({info.name!r})`` holds '
                 f'these facts.\n\nParameters\n----------\nnum_classes : int, default '
                 f'{info.num_classes}')
    return '\n\n'.join(parts)


def register_model(*, description, input_shape, num_classes):
    """Decorator: register a factory under its function name, with a ``ModelInfo``.

    ``input_shape`` is ``(C, H, W)``, ``num_classes`` the factory's default.
    The factory's ``__doc__`` is made from them (after its own docstring, if
    any), so that ``help()`` says what it builds.
    """
    if not isinstance(input_shape, tuple) or len(input_shape) != 3:
        raise ValueError(f'input_shape must be (C, H, W), got {input_shape!r}')
    input_shape = tuple(check_int(n, 'input_shape', minimum=1) for n in input_shape)
    num_classes = check_int(num_classes, 'num_classes', minimum=1)

    def register(fn):
        if fn.__name__ in _models:
            warnings.warn(f'model {fn.__name__!r} registered twice; the later one wins')
        info = ModelInfo(fn.__name__, description, input_shape, num_classes)
        fn.__doc__ = _docstring(info, fn.__doc__)
        _models[info.name], _infos[info.name] = fn, info
        return fn
    return register


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


def model_info(name):
    """The ``ModelInfo`` of ``name``: description, input shape ``(C, H, W)``, default classes."""
    return _infos[check_model_name(name)]


def model_infos():
    """The ``ModelInfo`` of every name of ``list_models()``, in the same order."""
    return list(_infos.values())


def get_model(name, **kwargs):
    """Build the net called ``name`` (see ``list_models()``); ``kwargs`` go to its factory.

    The net's ``model_args``, ``{'name': name, 'kwargs': kwargs}``, say how to build it
    again (nanoGPT's ``model_args``): a run directory records them, so that
    ``predict`` and ``export`` rebuild the net of any run.
    """
    net = _models[check_model_name(name)](**kwargs)
    if isinstance(net, nn.Block):  # a registered factory may build anything
        net.model_args = {'name': name, 'kwargs': dict(kwargs)}
    return net


# family -> description (the fields of each member filled in), input shape
# (C, H, W) its nets were designed for, default number of classes
_IMAGENET, _CIFAR = (3, 224, 224), (3, 32, 32)
_FAMILIES = {
    'imagenet_v1': ('ResNet-{depth}, ImageNet (He et al. 2015)', _IMAGENET, 1000),
    'imagenet_v2': ('ResNet-{depth} v2, pre-activation, ImageNet (He et al. 2016)',
                    _IMAGENET, 1000),
    'cifar_v1': ('ResNet-{depth}, CIFAR-10, option A shortcuts (He et al. 2015)', _CIFAR, 10),
    'cifar_v2': ('ResNet-{depth} v2, CIFAR-10, {block}s, option B (He et al. 2016)', _CIFAR, 10),
    'plain': ('ResNet-{depth} without shortcuts, CIFAR-10 (He et al. 2015)', _CIFAR, 10),
    'wide': ('WRN-{depth}-{k}: ResNet-{depth} v2 {k}x wider, CIFAR-10 (Zagoruyko & Komodakis 2016)',
             _CIFAR, 10),
    'resnext': ('ResNeXt-{depth} ({cardinality}x{width}d), ImageNet (Xie et al. 2017)',
                _IMAGENET, 1000),
}


def _register(family, **fields):
    """``register_model`` with the description, input shape and classes of ``family``."""
    description, input_shape, num_classes = _FAMILIES[family]
    return register_model(description=description.format(**fields), input_shape=input_shape,
                          num_classes=num_classes)


# d2l's chapter traces ResNet-18 on a 1x1x224x224 batch, the size its
# ImageNet stem was made for (a 7x7 map before the pool), and so do notebook 2
# and `shapes`.  d2l trains it on Fashion-MNIST resized to 96x96 only to save
# time (`load_data('fashion-mnist', image_size=96)` does the same).
@register_model(description="d2l's ResNet-18 for Fashion-MNIST (Residual blocks, conv biases)",
                input_shape=(1, 224, 224), num_classes=10)
def resnet18(num_classes=10):
    """7x7 stem and max pool, four ``resnet_block`` stages (d2l, section 8.6)."""
    check_positive(num_classes=num_classes)
    net = SequentialResNet(num_halvings=5)
    with net.name_scope():
        net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3),
                nn.BatchNorm(), nn.Activation('relu'),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        net.add(resnet_block(64, 2, first_block=True), resnet_block(128, 2),
                resnet_block(256, 2), resnet_block(512, 2))
        net.add(nn.GlobalAvgPool2D(), nn.Dense(int(num_classes)))
    return net


@_register('imagenet_v1', depth=18)
def resnet18_v1(**kwargs): return resnet(18, 1, **kwargs)
@_register('imagenet_v1', depth=34)
def resnet34_v1(**kwargs): return resnet(34, 1, **kwargs)
@_register('imagenet_v1', depth=50)
def resnet50_v1(**kwargs): return resnet(50, 1, **kwargs)
@_register('imagenet_v1', depth=101)
def resnet101_v1(**kwargs): return resnet(101, 1, **kwargs)
@_register('imagenet_v1', depth=152)
def resnet152_v1(**kwargs): return resnet(152, 1, **kwargs)
@_register('imagenet_v2', depth=18)
def resnet18_v2(**kwargs): return resnet(18, 2, **kwargs)
@_register('imagenet_v2', depth=34)
def resnet34_v2(**kwargs): return resnet(34, 2, **kwargs)
@_register('imagenet_v2', depth=50)
def resnet50_v2(**kwargs): return resnet(50, 2, **kwargs)
@_register('imagenet_v2', depth=101)
def resnet101_v2(**kwargs): return resnet(101, 2, **kwargs)
@_register('imagenet_v2', depth=152)
def resnet152_v2(**kwargs): return resnet(152, 2, **kwargs)
@_register('cifar_v1', depth=20)
def cifar_resnet20_v1(**kwargs): return cifar_resnet(20, 1, **kwargs)
@_register('cifar_v1', depth=32)
def cifar_resnet32_v1(**kwargs): return cifar_resnet(32, 1, **kwargs)
@_register('cifar_v1', depth=44)
def cifar_resnet44_v1(**kwargs): return cifar_resnet(44, 1, **kwargs)
@_register('cifar_v1', depth=56)
def cifar_resnet56_v1(**kwargs): return cifar_resnet(56, 1, **kwargs)
@_register('cifar_v1', depth=110)
def cifar_resnet110_v1(**kwargs): return cifar_resnet(110, 1, **kwargs)
@_register('cifar_v2', depth=56, block='basic block')
def cifar_resnet56_v2(**kwargs): return cifar_resnet(56, 2, shortcut='B', **kwargs)
@_register('cifar_v2', depth=110, block='basic block')
def cifar_resnet110_v2(**kwargs): return cifar_resnet(110, 2, shortcut='B', **kwargs)
@_register('cifar_v2', depth=164, block='bottleneck')
def cifar_resnet164_v2(**kwargs): return cifar_resnet(164, 2, block=Bottleneck, shortcut='B', **kwargs)
@_register('plain', depth=20)
def cifar_plain20(**kwargs): return cifar_resnet(20, 1, shortcut=None, **kwargs)
@_register('plain', depth=32)
def cifar_plain32(**kwargs): return cifar_resnet(32, 1, shortcut=None, **kwargs)
@_register('plain', depth=44)
def cifar_plain44(**kwargs): return cifar_resnet(44, 1, shortcut=None, **kwargs)
@_register('plain', depth=56)
def cifar_plain56(**kwargs): return cifar_resnet(56, 1, shortcut=None, **kwargs)
@_register('wide', depth=16, k=8)
def cifar_wideresnet16_8(**kwargs): return wide_resnet(16, 8, **kwargs)
@_register('wide', depth=28, k=10)
def cifar_wideresnet28_10(**kwargs): return wide_resnet(28, 10, **kwargs)
@_register('resnext', depth=50, cardinality=32, width=4)
def resnext50_32x4d(**kwargs): return resnext(50, 32, 4, **kwargs)
