"""Blocks and nets: equal to d2l's and MXNet's model zoo, exact parameter counts,
the same outputs in every MXNet mode, and clear errors."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn
from mxnet.gluon.model_zoo import vision

from benchmarks.d2l_nets import d2l_resnet18
from conftest import (all_blocks, copy_params, count_trainable, initialized, max_difference,
                      numpy_mode, randomize)
from d2l import mxnet as d2l

import gluon_resnet
from gluon_resnet import BasicBlock, Bottleneck, Residual, get_model, list_models, resnet_block
from gluon_resnet.models import initialize, model_info, model_infos


# The teaching block and ResNet-18 ---------------------------------------------

@pytest.mark.parametrize('use_1x1conv,strides,channels', [(False, 1, 6), (True, 2, 6), (True, 1, 4)])
def test_residual_equals_d2l(use_1x1conv, strides, channels):
    with numpy_mode(True):
        X = mx.np.random.normal(size=(2, channels if not use_1x1conv else 3, 8, 8))
        theirs = d2l.Residual(channels, use_1x1conv=use_1x1conv, strides=strides)
        theirs.initialize(mx.init.Xavier())
        theirs(X)
        randomize(theirs)
        ours = Residual(channels, use_1x1conv=use_1x1conv, strides=strides)
        ours.initialize()
        ours(X)
        copy_params(theirs, ours)
        for train in (False, True):
            with autograd.record(train_mode=train):
                expected, got = theirs(X), ours(X)
            assert got.shape == expected.shape == (2, channels, 8 // strides, 8 // strides)
            assert max_difference(got, expected) < 1e-5


def test_residual_shapes_as_in_d2l():
    blk = Residual(3)
    blk.initialize()
    assert blk(mx.nd.zeros((4, 3, 6, 6))).shape == (4, 3, 6, 6)
    blk = Residual(6, use_1x1conv=True, strides=2)
    blk.initialize()
    assert blk(mx.nd.zeros((4, 3, 6, 6))).shape == (4, 6, 3, 3)


def test_resnet_block_first_and_later_stages():
    first, later = resnet_block(64, 2, first_block=True), resnet_block(128, 2)
    assert [b.conv3 is None for b in first] == [True, True]
    assert [b.conv3 is None for b in later] == [False, True]
    assert later[0].conv1._kwargs['stride'] == (2, 2)
    for blk in (first, later):
        blk.initialize()
    X = mx.nd.zeros((1, 64, 56, 56))
    assert first(X).shape == (1, 64, 56, 56)
    assert later(first(X)).shape == (1, 128, 28, 28)


def test_resnet18_layers_and_shapes():
    net = gluon_resnet.resnet18()
    net.initialize()
    X = mx.nd.zeros((1, 1, 224, 224))
    shapes = []
    for layer in net:
        X = layer(X)
        shapes.append(X.shape)
    assert shapes == [(1, 64, 112, 112), (1, 64, 112, 112), (1, 64, 112, 112), (1, 64, 56, 56),
                      (1, 64, 56, 56), (1, 128, 28, 28), (1, 256, 14, 14), (1, 512, 7, 7),
                      (1, 512, 1, 1), (1, 10)]
    stem = net[0]
    assert (stem._kwargs['kernel'], stem._kwargs['stride'], stem._kwargs['pad']) == \
        ((7, 7), (2, 2), (3, 3))
    pool = net[3]
    assert (pool._kwargs['kernel'], pool._kwargs['stride'], pool._kwargs['pad']) == \
        ((3, 3), (2, 2), (1, 1))
    assert net[0].weight.shape == (64, 1, 7, 7)  # input channels inferred


@pytest.mark.parametrize('hybridize', [False, True])
def test_resnet18_equals_d2l_book(hybridize):
    with numpy_mode(True):
        X = mx.np.random.normal(size=(2, 1, 64, 64))
        theirs = d2l_resnet18()
        theirs.initialize(mx.init.Xavier())
        theirs(X)
        randomize(theirs)
        ours = gluon_resnet.resnet18()
        ours.initialize()
        ours(X)
        copy_params(theirs, ours)
        if hybridize:
            ours.hybridize()
        assert count_trainable(ours) == count_trainable(theirs) == 11178378
        for train in (False, True):
            with autograd.record(train_mode=train):
                expected, got = theirs(X), ours(X)
            assert got.shape == (2, 10)
            assert max_difference(got, expected) < 1e-4


def test_resnet18_infers_colour_input():
    net = initialized(gluon_resnet.resnet18(num_classes=5), (2, 3, 96, 96))
    assert net[0].weight.shape == (64, 3, 7, 7)
    assert net(mx.nd.zeros((2, 3, 96, 96))).shape == (2, 5)
    assert count_trainable(net) == 11178378 + 64 * 7 * 7 * 2 - 5 * 512 - 5


# The family against MXNet's model zoo ------------------------------------------

def zoo_bias(p):
    """The zoo's only conv biases: the 1x1 convs of ``BottleneckV1``."""
    return 'conv' in p.name and p.name.endswith('_bias')


@pytest.mark.parametrize('name', ['resnet18_v1', 'resnet50_v1', 'resnet18_v2', 'resnet50_v2'])
def test_equals_model_zoo(name):
    shape = (2, 3, 64, 64)
    zoo = initialized(vision.get_model(name), shape)
    randomize(zoo)
    bias = [p for p in zoo.collect_params().values() if zoo_bias(p)]
    assert len(bias) == (32 if name == 'resnet50_v1' else 0)  # 16 bottlenecks x 2
    for p in bias:
        p.set_data(mx.nd.zeros(p.shape))
    ours = initialized(get_model(name), shape)
    copy_params(zoo, ours, skip=zoo_bias)
    X = mx.nd.random.normal(shape=shape)
    for train in (False, True):
        with autograd.record(train_mode=train):
            expected, got = zoo(X), ours(X)
        assert got.shape == (2, 1000)
        assert max_difference(got, expected) < 1e-4


@pytest.mark.parametrize('depth', [18, 34, 50, 101, 152])
def test_imagenet_parameter_counts(depth):
    # torchvision's counts for v1 (ResNet-50: 25,557,032); the zoo's for v2.
    torchvision = {18: 11689512, 34: 21797672, 50: 25557032, 101: 44549160, 152: 60192808}
    shape = (1, 3, 32, 32)
    assert count_trainable(initialized(get_model(f'resnet{depth}_v1'), shape)) == torchvision[depth]
    zoo_v2 = count_trainable(initialized(vision.get_model(f'resnet{depth}_v2'), shape))
    assert count_trainable(initialized(get_model(f'resnet{depth}_v2'), shape)) == zoo_v2
    if depth == 50:  # the zoo's v1 bottleneck keeps conv biases: 18,880 more
        assert count_trainable(initialized(vision.resnet50_v1(), shape)) == 25575912


def test_cifar_parameter_counts():
    # He et al. 2015 Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M; 2016 paper:
    # ResNet-164 1.7M; Zagoruyko and Komodakis Table 1/2: WRN-16-8 11.0M, WRN-28-10 36.5M.
    expected = {'cifar_resnet20_v1': (269722, 0.27), 'cifar_resnet32_v1': (464154, 0.46),
                'cifar_resnet44_v1': (658586, 0.66), 'cifar_resnet56_v1': (853018, 0.85),
                'cifar_resnet110_v1': (1727962, 1.7), 'cifar_resnet164_v2': (1703258, 1.7),
                'cifar_wideresnet16_8': (10961370, 11.0),
                'cifar_wideresnet28_10': (36479194, 36.5)}
    for name, (exact, paper) in expected.items():
        count = count_trainable(initialized(get_model(name), (1, 3, 32, 32)))
        assert count == exact, name
        digits = len(str(paper).split('.')[1])
        assert round(count / 1e6, digits) == paper, name
    # Plain nets are the v1 nets without shortcuts; option A adds no parameters.
    for depth in (20, 32, 44, 56):
        assert count_trainable(initialized(get_model(f'cifar_plain{depth}'), (1, 3, 32, 32))) == \
            expected[f'cifar_resnet{depth}_v1'][0]


def test_cifar_v2_count_by_hand():
    # cifar_resnet56_v2 = cifar_resnet56_v1 + two 1x1 projections (16->32, 32->64)
    # + the final BN (64 channels: gamma and beta) - the stem BN (16 channels)
    # - 16 and 32 channels of BN: the two transition blocks normalise their
    # narrower input (pre-activation) where v1 normalises their wider output.
    v1 = count_trainable(initialized(get_model('cifar_resnet56_v1'), (1, 3, 32, 32)))
    v2 = count_trainable(initialized(get_model('cifar_resnet56_v2'), (1, 3, 32, 32)))
    assert v2 == v1 + 16 * 32 + 32 * 64 + 2 * 64 - 2 * 16 - 2 * 16 - 2 * 32


def test_cifar_shapes_per_stage():
    net = initialized(get_model('cifar_resnet20_v1'), (2, 3, 32, 32))
    X = mx.nd.zeros((2, 3, 32, 32))
    widths = []
    for layer in net.features:
        X = layer(X)
        widths.append(X.shape[1:])
    assert widths[3:6] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert [len(stage) for stage in net.features[3:6]] == [3, 3, 3]


def test_registry_names_and_close_matches():
    names = list_models()
    for depth in (18, 34, 50, 101, 152):
        assert f'resnet{depth}_v1' in names and f'resnet{depth}_v2' in names
    for name in ['resnet18', 'cifar_resnet20_v1', 'cifar_resnet110_v1', 'cifar_resnet56_v2',
                 'cifar_resnet110_v2', 'cifar_resnet164_v2', 'cifar_plain20', 'cifar_plain56',
                 'cifar_wideresnet16_8', 'cifar_wideresnet28_10', 'resnext50_32x4d']:
        assert name in names
    assert len(names) == len(set(names)) == 26
    with pytest.raises(ValueError, match="unknown model 'resnet50_v3'.*resnet50_v1"):
        get_model('resnet50_v3')
    with pytest.raises(ValueError, match='cifar_resnet20_v1'):
        get_model('cifar_resnet_20')


def test_registry_metadata():
    infos = model_infos()
    assert [info.name for info in infos] == list_models()
    assert all(isinstance(name, str) for name in list_models())
    # d2l's net takes 1-channel Fashion-MNIST and 10 classes; the He et al. nets
    # are made for ImageNet (1000 classes) or CIFAR-10 (10 classes).
    assert (model_info('resnet18').input_shape, model_info('resnet18').num_classes) == \
        ((1, 224, 224), 10)
    for info in infos[1:]:
        expected = ((3, 32, 32), 10) if info.name.startswith('cifar') else ((3, 224, 224), 1000)
        assert (info.input_shape, info.num_classes) == expected, info.name
    assert len({info.description for info in infos}) == len(infos)  # one of a kind each
    assert model_info('resnet50_v1').description == 'ResNet-50, ImageNet (He et al. 2015)'
    assert model_info('cifar_wideresnet28_10').description.startswith('WRN-28-10: ')
    with pytest.raises(ValueError, match="unknown model 'resnet50'.*resnet50_v1"):
        model_info('resnet50')


def test_factories_have_docstrings_from_the_registry():
    doc = gluon_resnet.models.resnet50_v1.__doc__
    assert doc.startswith('ResNet-50, ImageNet (He et al. 2015).\n')
    assert '(N, 3, 224, 224)' in doc and 'num_classes : int, default 1000' in doc
    doc = gluon_resnet.resnet18.__doc__  # its own docstring is kept, after the description
    assert doc.startswith("d2l's ResNet-18") and 'resnet_block' in doc
    assert '(N, 1, 224, 224)' in doc and 'num_classes : int, default 10' in doc


def test_register_model_checks_and_warns(monkeypatch):
    models = gluon_resnet.models
    monkeypatch.setattr(models, '_models', dict(models._models))
    monkeypatch.setattr(models, '_infos', dict(models._infos))
    with pytest.raises(ValueError, match='input_shape must be'):
        models.register_model(description='x', input_shape=(1, 3, 32, 32), num_classes=10)
    with pytest.raises(ValueError, match='num_classes must be a positive integer'):
        models.register_model(description='x', input_shape=(3, 32, 32), num_classes=0)
    with pytest.warns(UserWarning, match="'resnet18' registered twice"):
        @models.register_model(description='tiny', input_shape=(3, np.int64(8), 8),
                               num_classes=2)
        def resnet18(**kwargs): return 'the later one'
    assert get_model('resnet18') == 'the later one'
    assert model_info('resnet18') == models.ModelInfo('resnet18', 'tiny', (3, 8, 8), 2)
    assert type(model_info('resnet18').input_shape[1]) is int
    assert resnet18.__doc__.startswith('tiny.')


def biases_before_batchnorm(net):
    """Names of the conv biases that a BatchNorm follows: d2l's convs but its 1x1
    projection (``conv3``).  In training mode the BatchNorm subtracts each
    channel's batch mean, and with it the bias: their gradient is 0."""
    biases = {b.bias.name for b in all_blocks(net)
              if isinstance(b, nn.Conv2D) and b.bias is not None}
    return biases - {b.conv3.bias.name for b in all_blocks(net)
                     if isinstance(b, Residual) and b.conv3}


# Every net at its own input shape, batch 2, except the ImageNet bottleneck
# nets (ResNet-50 and deeper) at 64x64: at 224x224 they would add about 20 s
# on one core, and at 64x64 their last stage still sees 2x2 pixels.
@pytest.mark.parametrize('name', list_models())
def test_every_model_trains_a_step(name):
    """Build, initialize, forward and backward (timm's ``test_model_backward``)."""
    info = model_info(name)
    net = initialize(get_model(name), seed=0)
    channels, height, width = info.input_shape
    if height > 64 and any(isinstance(b, Bottleneck) for b in all_blocks(net)):
        height = width = 64
    rng = np.random.default_rng(0)
    X = mx.nd.array(rng.normal(size=(2, channels, height, width)))
    y = mx.nd.array(rng.integers(0, info.num_classes, size=2))
    with autograd.record():
        output = net(X)
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(output, y)
    loss.backward()
    assert output.shape == (2, info.num_classes)
    assert np.isfinite(output.asnumpy()).all() and np.isfinite(loss.asnumpy()).all()
    grads = {p.name: np.abs(p.grad().asnumpy()).max()
             for p in net.collect_params().values() if p.grad_req != 'null'}
    assert all(np.isfinite(g) for g in grads.values())
    dead = biases_before_batchnorm(net)
    assert not dead or name == 'resnet18'
    for param, grad in grads.items():
        if param in dead:  # zero but for rounding
            assert grad < 1e-5 * max(grads.values()), f'Gradient for {param}: {grad}'
        else:
            assert grad > 0, f'No gradient for {param}'


# Blocks: variants, shortcuts and modes ------------------------------------------

def test_bottleneck_and_basic_weights_from_the_paper():
    # He et al. 2015 Fig. 5 at 256 channels: two 3x3x256 convs vs 1x1-3x3-1x1.
    def conv_weights(block):
        return sum(p.data().size for n, p in block.collect_params().items()
                   if n.endswith('weight') and len(p.shape) == 4)
    basic = initialized(BasicBlock(256, in_channels=256), (1, 256, 8, 8))
    bottleneck = initialized(Bottleneck(256, in_channels=256), (1, 256, 8, 8))
    assert conv_weights(basic) == 2 * 3 * 3 * 256 * 256 == 1179648
    assert conv_weights(bottleneck) == 256 * 64 + 3 * 3 * 64 * 64 + 64 * 256 == 69632


def test_option_a_shortcut_subsamples_and_pads_zeros():
    blk = gluon_resnet.ZeroPadShortcut(8, 2, in_channels=4)
    blk.initialize()
    X = mx.nd.arange(2 * 4 * 6 * 6).reshape((2, 4, 6, 6))
    Y = blk(X).asnumpy()
    assert Y.shape == (2, 8, 3, 3)
    np.testing.assert_array_equal(Y[:, :4], X.asnumpy()[:, :, ::2, ::2])
    assert not Y[:, 4:].any()
    assert list(blk.collect_params().keys()) == []


def test_plain_block_has_no_shortcut():
    # With zero conv weights in the body, a residual block passes x through
    # (relu(0 + x)); a plain block outputs relu(BN(0)) = relu(beta) = 0.
    X = mx.nd.random.uniform(shape=(1, 4, 5, 5))
    for shortcut, expected in (('B', X), (None, mx.nd.zeros_like(X))):
        blk = BasicBlock(4, in_channels=4, shortcut=shortcut)
        blk.initialize(mx.init.Zero())
        blk(X)
        for p in blk.collect_params('.*gamma|.*running_var').values():
            p.set_data(mx.nd.ones(p.shape))
        assert max_difference(blk(X), expected) < 1e-6


# Option A pads at most as many channels as there are: it suits basic blocks,
# whose stages double the channels (test_bad_arguments checks the refusal).
@pytest.mark.parametrize('block,shortcut', [(BasicBlock, 'A'), (BasicBlock, 'B'), (BasicBlock, None),
                                            (Bottleneck, 'B'), (Bottleneck, None)])
@pytest.mark.parametrize('version', [1, 2])
def test_block_variants_shapes_and_gradients(block, version, shortcut):
    blk = block(32, stride=2, downsample=True, in_channels=16, version=version,
                shortcut=shortcut)
    blk.initialize(mx.init.Xavier())
    X = mx.nd.random.normal(shape=(2, 16, 8, 8))
    with autograd.record():
        Y = blk(X)
        loss = (Y ** 2).sum()
    loss.backward()
    assert Y.shape == (2, 32, 4, 4)
    assert not np.isnan(Y.asnumpy()).any()
    for name, p in blk.collect_params().items():
        if p.grad_req != 'null':
            assert p.grad().abs().sum().asscalar() > 0, f'No gradient for {name}'
    has_projection = shortcut == 'B'
    assert any('downsample' in k for k in blk._children) == (shortcut is not None)
    assert (len([p for p in blk.collect_params().values() if p.shape[2:] == (1, 1)]) > 0) == \
        (has_projection or block is Bottleneck)


@pytest.mark.parametrize('name,shape', [('resnet18', (2, 1, 32, 32)),
                                        ('resnet18_v1', (4, 3, 64, 64)),
                                        ('resnet50_v2', (4, 3, 64, 64)),
                                        ('cifar_resnet20_v1', (2, 3, 16, 16)),
                                        ('cifar_resnet164_v2', (2, 3, 16, 16)),
                                        ('cifar_plain20', (2, 3, 16, 16))])
def test_imperative_hybridized_legacy_numpy_agree(name, shape):
    """The four combinations give the same outputs, in predict and train mode.

    Batches of 4 at 64x64 for the ImageNet nets: in train mode the last
    stage's BatchNorm normalises over N*H*W values, and over the 2 values of
    a batch of 2 at 32x32 it amplifies the rounding differences between the
    oneDNN graph kernels and the imperative ones far beyond any tolerance.
    """
    X = np.random.default_rng(0).normal(size=shape).astype('float32')
    reference, weights = None, None
    for np_mode in (False, True):
        for hybridize in (False, True):
            with numpy_mode(np_mode):
                array = mx.np.array if np_mode else mx.nd.array
                net = get_model(name)
                net.initialize(mx.init.Xavier())
                net(array(X))
                if weights is None:
                    randomize(net)
                    weights = [p.data().asnumpy() for p in net.collect_params().values()]
                for p, w in zip(net.collect_params().values(), weights):
                    p.set_data(array(w))
                if hybridize:
                    net.hybridize()
                outputs = []
                for train in (False, True):
                    with autograd.record(train_mode=train):
                        outputs.append(net(array(X)).asnumpy())
            if reference is None:
                reference = outputs
            for got, expected in zip(outputs, reference):
                assert got.shape == (shape[0], model_info(name).num_classes)
                np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


# Bad input -------------------------------------------------------------------------

def test_wrong_rank_channels_and_size():
    net = gluon_resnet.resnet18()
    net.initialize()
    with pytest.raises(ValueError, match=r'\(N, C, H, W\).*rank 3'):
        net(mx.nd.zeros((1, 32, 32)))
    net(mx.nd.zeros((1, 1, 32, 32)))
    with pytest.raises(ValueError, match='initialized for 1 input channels, got 3'):
        net(mx.nd.zeros((1, 3, 32, 32)))
    with pytest.raises(ValueError, match='at least 17x17 pixels.*got 8x8'):
        net(mx.nd.zeros((1, 1, 8, 8)))
    cifar = get_model('cifar_resnet20_v1')
    cifar.initialize()
    cifar.hybridize()
    assert cifar(mx.nd.zeros((1, 3, 8, 8))).shape == (1, 10)
    with pytest.raises(ValueError, match='initialized for 3 input channels, got 1'):
        cifar(mx.nd.zeros((1, 1, 8, 8)))


@pytest.mark.parametrize('make,match', [
    (lambda: Residual(0), 'num_channels must be a positive integer, got 0'),
    (lambda: resnet_block(64, 0), 'num_residuals must be a positive integer, got 0'),
    (lambda: resnet_block(-1, 2), 'num_channels must be a positive integer, got -1'),
    (lambda: BasicBlock(16, version=3), 'version must be one of 1, 2, got 3'),
    (lambda: BasicBlock(16, shortcut='C'), "shortcut must be one of .*got 'C'"),
    (lambda: Bottleneck(18), 'divisible by 4, got 18'),
    (lambda: BasicBlock(64, 2, True, in_channels=16, shortcut='A'), 'option A'),
    (lambda: gluon_resnet.models.resnet(20), 'depth must be one of 18, 34, 50, 101, 152, got 20'),
    (lambda: gluon_resnet.models.cifar_resnet(21), '6n\\+2'),
    (lambda: gluon_resnet.models.cifar_resnet(30, block=Bottleneck, shortcut='B'), '9n\\+2'),
    (lambda: gluon_resnet.models.wide_resnet(20, 2), '6n\\+4'),
    (lambda: get_model('resnet18', num_classes=0), 'num_classes must be a positive integer'),
    (lambda: BasicBlock(16, in_channels=-1), 'in_channels must be a non-negative integer'),
    (lambda: gluon_resnet.models.ResNet(BasicBlock, [1], [16], stem='mnist'),
     "stem must be one of 'imagenet', 'cifar', got 'mnist'"),
    # bool is an int to Python, never a size here
    (lambda: Residual(True), 'num_channels must be a positive integer, got True'),
    (lambda: resnet_block(64, True), 'num_residuals must be a positive integer, got True'),
    (lambda: Bottleneck(64, stride=True), 'stride must be a positive integer, got True'),
    (lambda: get_model('resnet18_v1', num_classes=True), 'num_classes must be a positive'),
    (lambda: gluon_resnet.models.cifar_resnet(True), '6n\\+2'),
    (lambda: gluon_resnet.models.wide_resnet(16, True), 'width_factor must be a positive'),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# Sizes may be numpy integers (say, read from an array); the layers get Python ints.
@pytest.mark.parametrize('make,shape,expected', [
    (lambda n: Residual(n(6), use_1x1conv=True, strides=n(2)), (1, 3, 8, 8), (1, 6, 4, 4)),
    (lambda n: resnet_block(n(6), n(2)), (1, 3, 8, 8), (1, 6, 4, 4)),
    (lambda n: BasicBlock(n(32), n(2), True, n(16), shortcut='A'), (1, 16, 8, 8), (1, 32, 4, 4)),
    (lambda n: Bottleneck(n(32), n(2), True, n(16), version=2), (1, 16, 8, 8), (1, 32, 4, 4)),
    (lambda n: get_model('resnet18', num_classes=n(10)), (1, 1, 32, 32), (1, 10)),
    (lambda n: get_model('resnet18_v1', num_classes=n(10)), (1, 3, 32, 32), (1, 10)),
    (lambda n: gluon_resnet.models.cifar_resnet(n(20)), (1, 3, 32, 32), (1, 10)),
    (lambda n: gluon_resnet.models.wide_resnet(n(10), n(2)), (1, 3, 32, 32), (1, 10)),
])
@pytest.mark.parametrize('integer', [np.int64, np.int32])
def test_numpy_integers_accepted(make, shape, expected, integer):
    net = make(integer)
    layers = [b for b in all_blocks(net) if isinstance(b, (nn.Conv2D, nn.Dense))]
    assert all(type(b._channels if isinstance(b, nn.Conv2D) else b._units) is int
               for b in layers)
    net.initialize()
    net.hybridize()
    assert net(mx.nd.zeros(shape)).shape == expected
