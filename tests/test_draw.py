"""Tests of ``gluon_resnet.draw``: the diagrams say what the blocks compute."""
import itertools

import matplotlib.pyplot as plt
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from mxnet.gluon import nn

from conftest import numpy_mode
from d2l import mxnet as d2l

from gluon_resnet import BasicBlock, Bottleneck, Residual, get_model, resnet18
from gluon_resnet.blocks import ResNeXtBlock, resnet_block
from gluon_resnet.draw import draw, layer_label


def labels(ax):
    return [text.get_text() for text in ax.texts]


def y_of(ax, label, nth=0):
    return [text.get_position()[1] for text in ax.texts if text.get_text() == label][nth]


def shortcut_start(ax):
    """The y where the shortcut leaves the main path (its line's first point)."""
    (line,) = ax.lines
    return line.get_ydata()[0]


def test_residual_with_and_without_1x1_conv():
    fig = draw(Residual(8), Residual(8, use_1x1conv=True, strides=2))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    body = ['BatchNorm', 'ReLU', 'Conv 3x3, 8', 'BatchNorm']
    assert labels(fig.axes[0]) == ['Residual', 'x', 'Conv 3x3, 8'] + body + \
        ['identity', '+', 'ReLU']
    assert labels(fig.axes[1]) == ['Residual', 'x', 'Conv 3x3, 8, /2'] + body + \
        ['Conv 1x1, 8, /2', '+', 'ReLU']
    for ax in fig.axes:  # the shortcut leaves above the first conv and joins at the (+)
        assert y_of(ax, 'x') > shortcut_start(ax) > y_of(ax, labels(ax)[2])
        assert ax.lines[0].get_ydata()[-1] == pytest.approx(y_of(ax, '+'), abs=0.02)


def test_d2l_blocks_draw_as_ours():
    with numpy_mode():
        theirs = draw(d2l.Residual(8, use_1x1conv=True, strides=2), d2l.ResNeXtBlock(32, 4, 1))
    ours = draw(Residual(8, use_1x1conv=True, strides=2), ResNeXtBlock(32, 8, 1))
    assert [labels(ax) for ax in theirs.axes] == [labels(ax) for ax in ours.axes]
    assert 'Conv 3x3, 32, 8 groups' in labels(ours.axes[1])  # d2l's "groups=4": 8 groups of 4


def test_basic_vs_bottleneck_and_resnext():
    fig = draw(BasicBlock(64), Bottleneck(256), Bottleneck(256, 2, True, 128, cardinality=32,
                                                            base_width=4, stride_on='3x3'),
               titles=['basic', 'bottleneck', 'ResNeXt'])
    basic, bottleneck, resnext = fig.axes
    assert labels(basic) == ['basic', 'x', 'Conv 3x3, 64', 'BatchNorm', 'ReLU', 'Conv 3x3, 64',
                             'BatchNorm', 'identity', '+', 'ReLU']
    assert labels(bottleneck) == ['bottleneck', 'x', 'Conv 1x1, 64', 'BatchNorm', 'ReLU',
                                  'Conv 3x3, 64', 'BatchNorm', 'ReLU', 'Conv 1x1, 256',
                                  'BatchNorm', 'identity', '+', 'ReLU']
    assert labels(resnext)[2:10] == ['Conv 1x1, 128', 'BatchNorm', 'ReLU',
                                     'Conv 3x3, 128, /2, 32 groups', 'BatchNorm', 'ReLU',
                                     'Conv 1x1, 256', 'BatchNorm']
    assert labels(resnext)[10:] == ['Conv 1x1, 256, /2', 'BatchNorm', '+', 'ReLU']


def test_v1_vs_v2_order():
    fig = draw(BasicBlock(128, 2, True, 64, version=1), BasicBlock(128, 2, True, 64, version=2),
               BasicBlock(64, version=2))
    v1, v2, v2_identity = fig.axes
    assert labels(v1) == ['BasicBlock v1', 'x', 'Conv 3x3, 128, /2', 'BatchNorm', 'ReLU',
                          'Conv 3x3, 128', 'BatchNorm', 'Conv 1x1, 128, /2', 'BatchNorm', '+',
                          'ReLU']
    # v2: BN and ReLU first, nothing after the addition
    assert labels(v2) == ['BasicBlock v2', 'x', 'BatchNorm', 'ReLU', 'Conv 3x3, 128, /2',
                          'BatchNorm', 'ReLU', 'Conv 3x3, 128', 'Conv 1x1, 128, /2', '+']
    # A projection sees the pre-activated input, the identity the input itself.
    assert y_of(v2, 'ReLU') > shortcut_start(v2) > y_of(v2, 'Conv 3x3, 128, /2')
    assert y_of(v2_identity, 'x') > shortcut_start(v2_identity) > y_of(v2_identity, 'BatchNorm')


def test_option_a_and_plain_blocks():
    fig = draw(BasicBlock(32, 2, True, 16, shortcut='A'),
               BasicBlock(32, 2, True, 16, shortcut=None))
    option_a, plain = fig.axes
    assert labels(option_a)[-3:] == ['Subsample /2, 16 zero channels', '+', 'ReLU']
    assert labels(plain) == ['BasicBlock v1, no shortcut', 'x', 'Conv 3x3, 32, /2', 'BatchNorm',
                             'ReLU', 'Conv 3x3, 32', 'BatchNorm', 'ReLU']
    assert len(plain.lines) == 0


def test_stage_draws_its_blocks():
    fig = draw(resnet_block(128, 2))
    (ax,) = fig.axes
    assert labels(ax).count('+') == 2
    assert labels(ax)[2] == 'Conv 3x3, 128, /2' and labels(ax).count('Conv 1x1, 128, /2') == 1
    assert len(ax.lines) == 2 and 'identity' in labels(ax)


def test_resnet18_stages_with_shapes():
    fig = draw(resnet18(), input_shape=(1, 1, 224, 224), titles=['resnet18'])
    (ax,) = fig.axes
    assert labels(ax) == [
        'resnet18', 'input (1, 1, 224, 224)',
        'Conv 7x7, 64, /2', '(1, 64, 112, 112)', 'BatchNorm', '(1, 64, 112, 112)',
        'ReLU', '(1, 64, 112, 112)', 'MaxPool 3x3, /2', '(1, 64, 56, 56)',
        'stage0: 2 × Residual, 64', '(1, 64, 56, 56)',
        'stage1: 2 × Residual, 128, /2', '(1, 128, 28, 28)',
        'stage2: 2 × Residual, 256, /2', '(1, 256, 14, 14)',
        'stage3: 2 × Residual, 512, /2', '(1, 512, 7, 7)',
        'GlobalAvgPool', '(1, 512, 1, 1)', 'Dense, 10', '(1, 10)']
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == 10  # one per layer of the net, one per stage
    # each shape is written beside its box
    for box, text in zip(boxes, [t for t in ax.texts if t.get_text().startswith('(')]):
        assert box.get_y() < text.get_position()[1] < box.get_y() + box.get_height()


def test_draw_leaves_the_net_uninitialized():
    """``fit`` initializes a net with He et al.'s init only if it is not yet."""
    net = get_model('cifar_resnet20_v1')
    draw(net, input_shape=(1, 3, 32, 32))
    with pytest.raises(RuntimeError, match='has not been initialized'):
        next(iter(net.collect_params().values())).list_ctx()
    with numpy_mode():  # d2l's blocks too
        net = nn.Sequential()
        net.add(nn.Conv2D(8, 3, padding=1), d2l.Residual(8), nn.GlobalAvgPool2D())
        fig = draw(net, input_shape=(1, 3, 8, 8))
        with pytest.raises(RuntimeError, match='has not been initialized'):
            net[0].weight.list_ctx()
    assert labels(fig.axes[0])[-4:] == ['residual0: Residual, 8', '(1, 8, 8, 8)', 'GlobalAvgPool',
                                        '(1, 8, 1, 1)']


def test_registry_nets_without_and_with_shapes():
    fig = draw(get_model('resnext50_32x4d'), get_model('cifar_resnet20_v1'))
    resnext, cifar = fig.axes
    assert [label for label in labels(resnext) if label.startswith('stage')] == [
        'stage0: 3 × Bottleneck, 256, 32 groups', 'stage1: 4 × Bottleneck, 512, /2, 32 groups',
        'stage2: 6 × Bottleneck, 1024, /2, 32 groups',
        'stage3: 3 × Bottleneck, 2048, /2, 32 groups']
    assert labels(cifar)[1:4] == ['input', 'Conv 3x3, 16', 'BatchNorm']
    assert not any(label.startswith('(') for label in labels(cifar))  # no shapes without input
    fig = draw(get_model('cifar_resnet20_v1'), input_shape=(1, 3, 32, 32))
    stages = labels(fig.axes[0])[8:14]
    assert stages == ['stage0: 3 × BasicBlock, 16', '(1, 16, 32, 32)',
                      'stage1: 3 × BasicBlock, 32, /2', '(1, 32, 16, 16)',
                      'stage2: 3 × BasicBlock, 64, /2', '(1, 64, 8, 8)']


def overlaps(a, b):
    return not (a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0)


@pytest.mark.parametrize('blocks,input_shape', [
    ((Residual(8), Residual(8, use_1x1conv=True, strides=2)), None),
    ((BasicBlock(64), Bottleneck(256), ResNeXtBlock(256, 32, 0.5, True, 2)), None),
    ((BasicBlock(128, 2, True, 64, version=2), BasicBlock(32, 2, True, 16, shortcut='A')), None),
    ((resnet18(), get_model('resnext50_32x4d')), (1, 3, 224, 224))])
def test_readable(blocks, input_shape, tmp_path):
    """Every label fits in its box, within the figure; no two boxes or labels overlap."""
    fig = draw(*blocks, input_shape=input_shape)
    renderer = FigureCanvasAgg(fig).get_renderer()
    figure_box = fig.bbox
    texts = [t.get_window_extent(renderer) for ax in fig.axes for t in ax.texts]
    boxes = [p.get_window_extent(renderer) for ax in fig.axes for p in ax.patches
             if isinstance(p, FancyBboxPatch)]
    for extent in texts + boxes:
        assert figure_box.x0 <= extent.x0 and extent.x1 <= figure_box.x1
        assert figure_box.y0 <= extent.y0 and extent.y1 <= figure_box.y1
    for ax in fig.axes:
        for patch in [p for p in ax.patches if isinstance(p, FancyBboxPatch)]:
            box = patch.get_window_extent(renderer)
            inside = [t.get_window_extent(renderer) for t in ax.texts
                      if overlaps(t.get_window_extent(renderer), box)]
            assert len(inside) == 1 and box.x0 < inside[0].x0 and inside[0].x1 < box.x1
    assert not any(overlaps(a, b) for a, b in itertools.combinations(boxes, 2))
    assert not any(overlaps(a, b) for a, b in itertools.combinations(texts, 2))
    fig.savefig(tmp_path / 'diagram.png')
    assert (tmp_path / 'diagram.png').read_bytes()[:4] == b'\x89PNG'


def test_no_pyplot_state():
    before = plt.get_fignums()
    draw(Residual(8), resnet18())
    assert plt.get_fignums() == before


@pytest.mark.parametrize('layer,expected', [
    (nn.MaxPool2D(3, 2, 1), ('MaxPool 3x3, /2', 'pool')),
    (nn.AvgPool2D(2), ('AvgPool 2x2, /2', 'pool')),
    (nn.GlobalAvgPool2D(), ('GlobalAvgPool', 'pool')), (nn.Dense(10), ('Dense, 10', 'dense')),
    (nn.Activation('sigmoid'), ('Sigmoid', 'act')),
    (nn.Conv2D(8, 5, 1, 2), ('Conv 5x5, 8', 'conv')),
    (nn.Flatten(), ('Flatten', 'other')), (Residual(8, True, 2), ('Residual, 8, /2', 'block'))])
def test_layer_labels(layer, expected):
    assert layer_label(layer) == expected


@pytest.mark.parametrize('call,match', [
    (lambda: draw(), 'at least one block'),
    (lambda: draw(Residual(8), titles=['a', 'b']), 'got 1 blocks and 2 titles'),
    (lambda: draw('resnet18'), 'draws Gluon blocks and nets, got str')])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
