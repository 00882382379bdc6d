"""ResNeXt: d2l's block with ``groups`` as the cardinality, and ResNeXt-50 (32x4d)
as a variant of the bottleneck, equal to d2l's block and torchvision's net."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd
from mxnet.gluon import nn

from conftest import (all_blocks, copy_params, count_trainable, initialized, max_difference,
                      numpy_mode, randomize)
from d2l import mxnet as d2l

from gluon_resnet import Bottleneck, get_model, layer_report
from gluon_resnet.blocks import ResNeXtBlock
from gluon_resnet.models import model_info, resnext


def grouped_conv(blk):
    return blk.conv2._kwargs['num_group'], blk.conv2.weight.shape


# d2l's block -------------------------------------------------------------------

# (num_channels, groups, bot_mul, use_1x1conv, strides, in_channels), all with
# groups ** 2 == bot_channels, where d2l 1.0.3's `bot_channels // groups`
# groups are `groups` groups too
COINCIDE = [(16, 4, 1, False, 1, 16), (32, 4, 0.5, True, 2, 8), (36, 6, 1, True, 1, 12),
            (8, 2, 0.5, True, 2, 8)]


@pytest.mark.parametrize('num_channels,groups,bot_mul,use_1x1conv,strides,in_channels',
                         COINCIDE)
@pytest.mark.parametrize('hybridize', [False, True])
def test_equals_d2l_where_groups_squared_is_bot_channels(
        num_channels, groups, bot_mul, use_1x1conv, strides, in_channels, hybridize):
    with numpy_mode(True):
        X = mx.np.random.normal(size=(4, in_channels, 8, 8))
        theirs = d2l.ResNeXtBlock(num_channels, groups, bot_mul, use_1x1conv, strides)
        theirs.initialize(mx.init.Xavier())
        theirs(X)
        randomize(theirs)
        ours = ResNeXtBlock(num_channels, groups, bot_mul, use_1x1conv, strides)
        ours.initialize()
        ours(X)
        copy_params(theirs, ours)  # same layers, registered in the same order
        assert grouped_conv(ours) == grouped_conv(theirs)
        assert count_trainable(ours) == count_trainable(theirs)
        if hybridize:
            ours.hybridize()
        for train in (False, True):
            with autograd.record(train_mode=train):
                expected, got = theirs(X), ours(X)
            assert got.shape == (4, num_channels, 8 // strides, 8 // strides)
            assert max_difference(got, expected) < 1e-5


def test_groups_is_the_cardinality_where_d2l_has_the_group_width():
    # d2l's own example: ResNeXtBlock(32, 16, 1) on (4, 32, 96, 96).
    with numpy_mode(True):
        X = mx.np.zeros((4, 32, 96, 96))
        ours, theirs = ResNeXtBlock(32, 16, 1), d2l.ResNeXtBlock(32, 16, 1)
        for blk in (ours, theirs):
            blk.initialize()
            assert blk(X).shape == (4, 32, 96, 96)
    # 16 groups of 2 channels here; d2l 1.0.3 makes 32 // 16 = 2 groups of 16
    assert grouped_conv(ours) == (16, (32, 2, 3, 3))
    assert grouped_conv(theirs) == (2, (32, 16, 3, 3))


def test_resnext_block_layers_and_legacy_mode():
    blk = ResNeXtBlock(64, 8, 0.5, use_1x1conv=True, strides=2)
    blk.initialize()
    assert blk(mx.nd.zeros((2, 32, 8, 8))).shape == (2, 64, 4, 4)
    assert [(c._kwargs['kernel'], c._kwargs['stride'], c._kwargs['num_group'], c.weight.shape)
            for c in (blk.conv1, blk.conv2, blk.conv3, blk.conv4)] == [
        ((1, 1), (1, 1), 1, (32, 32, 1, 1)), ((3, 3), (2, 2), 8, (32, 4, 3, 3)),
        ((1, 1), (1, 1), 1, (64, 32, 1, 1)), ((1, 1), (2, 2), 1, (64, 32, 1, 1))]
    assert ResNeXtBlock(16, 4, 1).conv4 is None


@pytest.mark.parametrize('make,match', [
    (lambda: ResNeXtBlock(16, 3, 1), 'groups must divide bot_channels .* = 16, got groups=3'),
    (lambda: ResNeXtBlock(16, 0, 1), 'groups must be a positive integer, got 0'),
    (lambda: ResNeXtBlock(16, 4, 0), r'bot_mul must be a positive number, got 0'),
    (lambda: ResNeXtBlock(16, 4, 1, strides=True), 'strides must be a positive integer'),
    (lambda: Bottleneck(256, cardinality=0), 'cardinality must be a positive integer, got 0'),
    (lambda: Bottleneck(256, stride_on='7x7'), "stride_on must be one of None, '1x1', '3x3'"),
    (lambda: Bottleneck(16, base_width=4), 'groups of 0 channels'),
    (lambda: resnext(34, 32, 4), 'depth must be one of 50, 101, 152, got 34'),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ResNeXt as a variant of the bottleneck ------------------------------------------

@pytest.mark.parametrize('channels,cardinality,base_width', [
    (256, 1, 64), (256, 32, 4), (512, 32, 4), (2048, 32, 4), (1024, 64, 4), (256, 8, 14),
    (256, 1, 128), (512, 1, 40)])
def test_bottleneck_width_is_torchvisions(channels, cardinality, base_width):
    blk = Bottleneck(channels, cardinality=cardinality, base_width=base_width)
    # torchvision's Bottleneck: width = int(planes * (base_width / 64.0)) * groups
    width = int(channels // 4 * (base_width / 64.0)) * cardinality
    conv1, conv2, conv3 = [b for b in blk.body if isinstance(b, nn.Conv2D)]
    assert (conv1._channels, conv2._channels, conv2._kwargs['num_group'], conv3._channels) == \
        (width, width, cardinality, channels)


@pytest.mark.parametrize('version,stride_on,strides', [
    (1, None, [2, 1, 1]), (2, None, [1, 2, 1]), (1, '3x3', [1, 2, 1]), (2, '1x1', [2, 1, 1]),
    (1, '1x1', [2, 1, 1])])
def test_bottleneck_stride_placement(version, stride_on, strides):
    blk = Bottleneck(64, 2, True, 32, version=version, stride_on=stride_on)
    assert [b._kwargs['stride'][0] for b in blk.body if isinstance(b, nn.Conv2D)] == strides
    blk.initialize()
    assert blk(mx.nd.zeros((1, 32, 8, 8))).shape == (1, 64, 4, 4)


def test_default_bottleneck_and_resnet50_unchanged():
    net = initialized(get_model('resnet50_v1'), (1, 3, 32, 32))
    blocks = [b for b in all_blocks(net) if isinstance(b, Bottleneck)]
    assert len(blocks) == 16
    assert all((b.cardinality, b.base_width, b.stride_on) == (1, 64, None) for b in blocks)
    assert count_trainable(net) == 25557032


# ResNeXt-50 (32x4d) ------------------------------------------------------------

def test_resnext50_counts_as_in_the_paper():
    """Xie et al. 2017, Table 1: 25.0 M parameters and 4.2 G FLOPs (multiply-adds)
    at 224x224; torchvision's resnext50_32x4d has 25,028,904 parameters."""
    info = model_info('resnext50_32x4d')
    assert (info.input_shape, info.num_classes) == ((3, 224, 224), 1000)
    assert info.description == 'ResNeXt-50 (32x4d), ImageNet (Xie et al. 2017)'
    net = get_model('resnext50_32x4d')
    report = layer_report(net, (1, 3, 224, 224), depth=1)
    assert report.total_params == count_trainable(net) == 25028904
    assert report.total_macs == 4230479872
    assert round(report.total_macs / 1e9, 1) == 4.2
    assert [r.output_shape for r in report.records if r.kind == 'Stage'] == [
        (1, 256, 56, 56), (1, 512, 28, 28), (1, 1024, 14, 14), (1, 2048, 7, 7)]
    # The stride on the first 1x1 conv (ResNet-50 v1's place) would make it 3.8 G.
    widths = [b.body[3]._channels for b in all_blocks(net) if isinstance(b, Bottleneck)]
    assert sorted(set(widths)) == [128, 256, 512, 1024]


def torch_to_mxnet(model, net):
    """Copy a torchvision ResNet's weights and BatchNorm statistics into ``net``
    (our ``ResNet``): both list them in the same order, NCHW conv weights alike."""
    tensors = [t.detach().numpy() for name, t in model.state_dict().items()
               if not name.endswith('num_batches_tracked')]
    params = list(net.collect_params().values())
    assert len(tensors) == len(params)
    for tensor, param in zip(tensors, params):
        assert tensor.shape == param.shape, (param.name, tensor.shape, param.shape)
        param.set_data(mx.nd.array(tensor))


def test_resnext50_equals_torchvision():
    torch = pytest.importorskip('torch', reason='torch is not installed')
    torchvision = pytest.importorskip(
        'torchvision', reason='torchvision is not installed: '
        'pip install torchvision==0.29.1 --no-deps pillow')
    torch.manual_seed(0)
    model = torchvision.models.resnext50_32x4d()
    rng = np.random.default_rng(1)
    with torch.no_grad():  # BatchNorm must matter: random statistics, scales and shifts
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                for tensor, low in ((module.weight, 0.5), (module.running_var, 0.5)):
                    tensor.copy_(torch.from_numpy(rng.uniform(low, 1.5, tensor.shape)))
                for tensor in (module.bias, module.running_mean):
                    tensor.copy_(torch.from_numpy(rng.normal(0, 0.1, tensor.shape)))
    model.eval()
    shape = (2, 3, 64, 64)
    net = initialized(get_model('resnext50_32x4d'), shape)
    torch_to_mxnet(model, net)
    X = rng.normal(size=shape).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(X)).numpy()
    got = net(mx.nd.array(X)).asnumpy()
    assert got.shape == expected.shape == (2, 1000)
    assert np.abs(expected).max() > 0.1  # not a vanishing output that any net matches
    assert max_difference(got, expected) < 1e-4 * max(1, np.abs(expected).max())
