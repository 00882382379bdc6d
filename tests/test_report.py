"""Tests of ``gluon_resnet.report`` and its command line, ``gluon_resnet.shapes``."""
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from conftest import all_blocks, count_trainable, numpy_mode
from gluon_resnet import BasicBlock, Residual, get_model, list_models, resnet18
from gluon_resnet.models import model_info
from gluon_resnet.report import count_parameters, layer_report, model_table, training_bytes

COLUMNS = ['name', 'kind', 'output_shape', 'params', 'macs']


def conv_out(size, kernel, stride, padding):
    """Output side of a conv or pooling window: floor((n + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def trained_net(name='cifar_resnet20_v1'):
    """A net after one SGD step, so its BatchNorm running stats are not the defaults."""
    mx.random.seed(0)
    net = get_model(name)
    net.initialize()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    X, y = nd.random.uniform(shape=(2, 3, 32, 32)), nd.array([0, 1])
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(X), y)
    loss.backward()
    trainer.step(2)
    return net


# Rows and shapes

def test_resnet18_depth1_rows_match_hand_arithmetic_and_d2l_loop():
    net = resnet18()  # not initialized: layer_report initializes it
    report = layer_report(net, (1, 1, 224, 224), depth=1)

    stem = conv_out(224, 7, 2, 3)       # 112: 7x7 conv, stride 2
    pooled = conv_out(stem, 3, 2, 1)    # 56: 3x3 max pool, stride 2
    sides = [pooled]                    # stage0 keeps the size, the others halve it
    for _ in range(3):
        sides.append(conv_out(sides[-1], 3, 2, 1))
    assert sides == [56, 28, 14, 7]
    expected = [('conv0', 'Conv2D', (1, 64, stem, stem)),
                ('batchnorm0', 'BatchNorm', (1, 64, stem, stem)),
                ('relu0', 'Activation', (1, 64, stem, stem)),
                ('pool0', 'MaxPool2D', (1, 64, pooled, pooled))]
    expected += [(f'stage{i}', 'Stage', (1, c, s, s))
                 for i, (c, s) in enumerate(zip([64, 128, 256, 512], sides))]
    expected += [('pool1', 'GlobalAvgPool2D', (1, 512, 1, 1)), ('dense0', 'Dense', (1, 10))]
    assert [(r.name, r.kind, r.output_shape) for r in report.records] == expected

    X, loop_shapes = nd.zeros((1, 1, 224, 224)), []
    for layer in net:  # d2l's loop
        X = layer(X)
        loop_shapes.append(X.shape)
    assert [r.output_shape for r in report.records] == loop_shapes


def test_depth2_lists_blocks_and_leaf_rows_add_up_to_them():
    net = get_model('resnet18_v1')
    blocks = layer_report(net, (1, 3, 32, 32), depth=2).records
    leaves = layer_report(net, (1, 3, 32, 32)).records
    assert [r.name for r in blocks if r.kind == 'BasicBlock'] == [
        f'features/stage{s}/basicblock{b}' for s in range(4) for b in range(2)]
    for block in blocks:
        inside = [r for r in leaves if r.name == block.name or r.name.startswith(block.name + '/')]
        assert inside[-1].output_shape == block.output_shape, block.name
        assert sum(r.params for r in inside) == block.params, block.name
        assert sum(r.macs for r in inside) == block.macs, block.name


def test_leaf_rows_of_a_block_list_convs_bns_and_shortcut():
    block = BasicBlock(128, stride=2, downsample=True, in_channels=64)
    report = layer_report(block, (1, 64, 16, 16))
    assert [(r.name, r.kind) for r in report.records] == [
        ('body/conv0', 'Conv2D'), ('body/batchnorm0', 'BatchNorm'),
        ('body/relu0', 'Activation'), ('body/conv1', 'Conv2D'),
        ('body/batchnorm1', 'BatchNorm'),
        ('downsample/conv0', 'Conv2D'), ('downsample/batchnorm0', 'BatchNorm')]
    # 3x3 64->128, 3x3 128->128, 1x1 64->128 convs, three BNs (gamma, beta)
    by_hand = 9 * 64 * 128 + 9 * 128 * 128 + 64 * 128 + 3 * 2 * 128
    assert sum(r.params for r in report.records) == count_parameters(block) == by_hand

    # d2l's block: rows in the order they run, not the order they were created
    report = layer_report(Residual(128, use_1x1conv=True, strides=2), (1, 64, 16, 16))
    assert [r.name for r in report.records] == ['conv1', 'bn1', 'conv2', 'bn2', 'conv3']
    assert report.records[-1].output_shape == (1, 128, 8, 8)


# Counts

@pytest.mark.parametrize('name', ['resnet18', 'resnet18_v1', 'resnet50_v2'])
def test_totals_equal_parameter_sum_and_mxnet_summary(name, capsys):
    net = get_model(name)
    report = layer_report(net, (1, 3, 32, 32), depth=1)
    assert report.total_params == count_parameters(net) == count_trainable(net)
    assert sum(r.params for r in report.records) == report.total_params
    assert sum(r.macs for r in report.records) == report.total_macs
    capsys.readouterr()
    net.summary(nd.zeros((1, 3, 32, 32)))
    summary = capsys.readouterr().out
    assert f'Trainable params: {report.total_params}\n' in summary
    if name == 'resnet18_v1':  # as torchvision; 11,699,112 with BN running stats
        assert report.total_params == 11_689_512


def test_mxnet_model_zoo_net_has_the_same_counts_as_ours():
    from mxnet.gluon.model_zoo import vision
    zoo = layer_report(vision.resnet18_v1(), (1, 3, 64, 64), depth=1)
    ours = layer_report(get_model('resnet18_v1'), (1, 3, 64, 64), depth=1)
    # the zoo's stages are plain HybridSequentials, ours are `Stage`s
    assert [r.name for r in zoo.records][4:8] == [
        f'features/hybridsequential{i}' for i in range(4)]
    assert [(r.output_shape, r.params, r.macs) for r in zoo.records] == \
        [(r.output_shape, r.params, r.macs) for r in ours.records]


# He et al. 2015, Table 1, "FLOPs" = multiply-adds, in units of 10^9.
# Ours at 1x3x224x224, with the 1000-way FC layer: 1.814, 3.664, 3.858, 7.570,
# 11.282.  The table truncates some values (3.66 -> 3.6, 3.86 -> 3.8) and rounds
# others (7.57 -> 7.6), so we ask for 2%; the largest gap is 1.8% (resnet34).
@pytest.mark.parametrize('name, paper_gmacs', [
    ('resnet18_v1', 1.8), ('resnet34_v1', 3.6), ('resnet50_v1', 3.8),
    ('resnet101_v1', 7.6), ('resnet152_v1', 11.3)])
def test_macs_match_the_paper(name, paper_gmacs):
    gmacs = layer_report(get_model(name), (1, 3, 224, 224), depth=1).total_macs / 1e9
    print(f'{name}: {gmacs:.3f} GMACs, paper {paper_gmacs}')
    assert abs(gmacs - paper_gmacs) / paper_gmacs < 0.02


def test_macs_by_hand_for_a_grouped_conv_and_a_dense_layer():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, kernel_size=3, strides=2, padding=1, groups=2, in_channels=4),
            nn.Dense(7))
    report = layer_report(net, (2, 4, 10, 10))
    conv, dense = report.records
    assert conv.output_shape == (2, 8, 5, 5)
    # every output value: (4 / 2 groups) input channels x 3 x 3 window
    assert conv.macs == (2 * 8 * 5 * 5) * (4 // 2) * 3 * 3 == 7200
    # batch x in_units x units, in_units = 8 * 5 * 5 after flattening
    assert dense.macs == 2 * 200 * 7 == 2800
    assert report.total_macs == 10000
    assert conv.params == 8 * 2 * 3 * 3 + 8 and dense.params == 200 * 7 + 7


# Hybridized nets, numpy mode, no change of state

def test_hybridized_net_gives_same_rows_and_stays_hybridized():
    net = get_model('cifar_resnet20_v1')
    imperative = layer_report(net, (1, 3, 32, 32))
    net.hybridize(static_alloc=True)
    mx.random.seed(0)
    X = nd.random.uniform(shape=(2, 3, 32, 32))
    before = net(X).asnumpy()
    flags = {id(b): (b._active, list(b._flags)) for b in all_blocks(net)}

    assert layer_report(net, (1, 3, 32, 32)).records == imperative.records
    assert {id(b): (b._active, b._flags) for b in all_blocks(net)} == flags
    assert all(not b._forward_hooks for b in all_blocks(net))
    np.testing.assert_array_equal(net(X).asnumpy(), before)
    assert net._cached_op is not None  # the call ran a rebuilt graph


def test_numpy_mode_gives_same_rows():
    legacy = layer_report(get_model('cifar_resnet20_v1'), (1, 3, 32, 32))
    with numpy_mode():
        net = get_model('cifar_resnet20_v1')
        assert layer_report(net, (1, 3, 32, 32)).records == legacy.records
        net.hybridize()
        net(mx.np.zeros((1, 3, 32, 32)))
        assert layer_report(net, (1, 3, 32, 32)).records == legacy.records
        assert net._active


def test_batchnorm_running_stats_unchanged():
    net = trained_net()
    state = {name: p.data().asnumpy() for name, p in net.collect_params().items()}
    running_means = [v for name, v in state.items() if name.endswith('running_mean')]
    assert running_means and all(v.any() for v in running_means)  # no longer zeros

    layer_report(net, (4, 3, 32, 32))
    with autograd.record():  # even inside a training step
        layer_report(net, (4, 3, 32, 32))
    for name, p in net.collect_params().items():
        np.testing.assert_array_equal(p.data().asnumpy(), state[name], err_msg=name)


# Errors

@pytest.mark.parametrize('input_shape', [(1, 3, 32), (1, 3, 32, 32, 1), (1, 3, 0, 32),
                                         (1, 3, 32.0, 32), '1,3,32,32', (1, True, 32, 32)])
def test_bad_input_shape(input_shape):
    with pytest.raises(ValueError, match=r'4 positive integers \(N, C, H, W\)'):
        layer_report(get_model('cifar_resnet20_v1'), input_shape)


@pytest.mark.parametrize('depth', [0, -1, 1.5, True])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match='depth must be a positive integer'):
        layer_report(get_model('cifar_resnet20_v1'), (1, 3, 32, 32), depth)


def test_numpy_integer_depth_and_shape():
    expected = layer_report(get_model('cifar_resnet20_v1'), (1, 3, 32, 32), depth=1)
    got = layer_report(get_model('cifar_resnet20_v1'), tuple(np.array([1, 3, 32, 32])),
                       depth=np.int64(1))
    assert got.records == expected.records and got.input_shape == (1, 3, 32, 32)


def test_net_errors_come_before_hooks():
    net = get_model('cifar_resnet20_v1')
    with pytest.raises(ValueError, match='at least 3x3 pixels'):
        layer_report(net, (1, 3, 2, 2))
    layer_report(net, (1, 3, 32, 32))  # now initialized for 3 channels
    with pytest.raises(ValueError, match='initialized for 3 input channels, got 1'):
        layer_report(net, (1, 1, 32, 32))
    assert all(not b._forward_hooks for b in all_blocks(net))


def test_failed_forward_detaches_hooks_and_restores_hybridization():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, kernel_size=5))
    net.hybridize()
    with pytest.raises((ValueError, mx.base.MXNetError)):
        layer_report(net, (1, 1, 3, 3))  # smaller than the kernel
    assert net._active and net[0]._active
    assert not net._forward_hooks and not net[0]._forward_hooks


def test_count_parameters_needs_known_shapes():
    net = get_model('cifar_resnet20_v1')
    net.initialize()
    with pytest.raises(ValueError, match='first forward pass'):
        count_parameters(net)


# Printing

def test_dataframe_and_table():
    report = layer_report(resnet18(), (1, 1, 32, 32), depth=1)
    frame = report.to_dataframe()
    assert list(frame.columns) == COLUMNS
    assert len(frame) == len(report.records) == 10
    assert frame['params'].sum() == report.total_params

    lines = str(report).splitlines()
    assert len(set(map(len, lines))) == 1  # aligned
    assert lines[0].split() == ['Layer', 'Kind', 'Output', 'shape', 'Params', 'MACs']
    assert re.fullmatch(r'conv0 +Conv2D +\(1, 64, 16, 16\) +3,200 +802,816', lines[2])
    assert lines[-1].split()[0] == 'Total'
    assert lines[-1].endswith(f'{report.total_params:,}  {report.total_macs:,}')
    assert len(lines) == 2 + 10 + 2


# Command line

def shapes(*args):
    return subprocess.run([sys.executable, '-m', 'gluon_resnet.shapes', *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_prints_the_table():
    result = shapes('--depth', '1')  # defaults: resnet18 on 1,1,224,224
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert '(1, 64, 112, 112)' in rows['conv0']
    assert '(1, 512, 7, 7)' in rows['stage3']
    assert '(1, 10)' in rows['dense0']
    assert rows['Total'].split()[-2:] == ['11,178,378', '1,734,890,496']


@pytest.mark.parametrize('name', ['cifar_resnet20_v1', 'resnet18_v2'])
def test_cli_defaults_to_the_models_input_shape(name):
    result = shapes('--model', name, '--depth', '1')
    assert result.returncode == 0, result.stderr
    total = result.stdout.splitlines()[-1]
    assert f'input {(1,) + model_info(name).input_shape}' in total
    report = layer_report(get_model(name), (1,) + model_info(name).input_shape, depth=1)
    assert total == str(report).splitlines()[-1]


@pytest.mark.parametrize('args, message', [
    (['--model', 'resnet19'], "unknown model 'resnet19'; did you mean resnet18"),
    (['--input-shape', '1,3,x,32'], 'expected 4 comma-separated positive integers N,C,H,W, got'),
    (['--input-shape', '1,3,32'], 'expected 4 comma-separated positive integers N,C,H,W, got'),
    (['--input-shape', '1,1,8,8'], 'needs images of at least 17x17 pixels'),
    (['--input-shape', '1,3,32\n32'], r"got '1,3,32\n32'"),
    (['--depth', '0'], 'expected a positive integer'),
    (['--depth', 'True'], 'expected a positive integer'),
    (['--dep', '1'], 'unrecognized arguments: --dep 1'),  # no abbreviations
])
def test_cli_errors_are_one_line(args, message):
    result = shapes(*args)
    assert result.returncode == 2
    assert result.stdout == ''
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert 'Traceback' not in result.stderr


def test_model_table_rows_and_counts():
    lines = model_table().splitlines()
    assert lines[0].split() == ['Model', 'Description', 'Input', '(C,', 'H,', 'W)', 'Classes',
                                'Params']
    assert set(lines[1]) == {'-'} and len(set(map(len, lines))) == 1
    rows = {line.split()[0]: line for line in lines[2:]}
    assert list(rows) == list_models()
    # counted from inferred shapes, as `layer_report` counts an initialized net
    for name, classes, params in [('resnet18', '10', '11,178,378'),
                                  ('resnet18_v1', '1,000', '11,689,512'),
                                  ('cifar_resnet164_v2', '10', '1,703,258')]:
        info = model_info(name)
        assert re.fullmatch(f'{name} +{re.escape(info.description)} +'
                            f'{re.escape(str(info.input_shape))} +{classes} +{params}', rows[name])
        report = layer_report(get_model(name), (1,) + info.input_shape, depth=1)
        assert f'{report.total_params:,}' == params


def test_cli_lists_models_and_helps():
    result = shapes('--list-models')
    assert result.returncode == 0, result.stderr
    assert result.stdout == model_table() + '\n'
    result = shapes('--help')
    assert result.returncode == 0 and '--input-shape 1,1,96,96' in result.stdout


def test_training_bytes_by_hand():
    """Outputs of the symbolic graph (input 2x4, weight 3x4, bias 3, output 2x3:
    29 numbers) plus 3 copies of the 15 parameters, 4 bytes each."""
    net = nn.HybridSequential()
    net.add(nn.Dense(3, in_units=4))
    assert training_bytes(net, (2, 4)) == 4 * (29 + 3 * 15)


def test_huge_input_is_refused_before_any_allocation():
    result = subprocess.run([sys.executable, '-m', 'gluon_resnet.shapes', '--input-shape',
                             '1,1,20000,20000'], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.strip() == (
        'python -m gluon_resnet.shapes: error: SequentialResNet on a batch of shape (1, 1, 20000, '
        '20000) makes its first conv output 6,400,000,000 numbers: MXNet 1.9.1 holds at most '
        '2,147,483,647 (2^31 - 1) in one tensor; use fewer or smaller images')
