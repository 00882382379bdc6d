"""Checkers of a student's net or number: ``check_zero_gamma``,
``check_depth``, ``check_macs``, ``check_parameters``."""
import copy

from mxnet.gluon import nn

from ..blocks import RELU, residual_parts
from ..models import get_model, is_initialized
from ..report import layer_report
from .compare import _named_blocks, _not_yet, _numpy, _plural, _verdict

__all__ = ['check_zero_gamma', 'check_depth', 'check_macs', 'check_parameters']


# Nets

def _residual_blocks(net):
    """``(path, block, parts)`` of every residual block in ``net`` (itself included)."""
    named = [(type(net).__name__, net)] + list(_named_blocks(net))
    return [(path, block, parts) for path, block in named
            for parts in [residual_parts(block)] if parts is not None]


def _main_path(block):
    """The conv and dense layers on the path from input to output, shortcuts left out."""
    if isinstance(block, (nn.Conv2D, nn.Dense)):
        return [block]
    parts = residual_parts(block)
    children = (parts.pre + parts.body + parts.post if parts else
                tuple(block._children.values()))
    return [layer for child in children if child is not RELU for layer in _main_path(child)]


def check_zero_gamma(net, strict=False):
    """Check that the last BatchNorm of every residual branch of ``net`` has
    gamma 0, and no other BatchNorm does.

    Goyal et al. (2017, section 5.1, https://arxiv.org/abs/1706.02677) start
    each residual block as the identity this way: the branch outputs 0, the
    block passes its input on.  That BatchNorm is ``bn2`` of d2l's
    ``Residual``, ``bn3`` of ``ResNeXtBlock``, the last of ``body`` of a
    ``BasicBlock`` or ``Bottleneck`` (in v2, the one before the last conv).
    The net must be initialized (run one batch if its shapes are deferred).
    Prints one line; returns True if right.  A net with no gamma at 0 at all
    is an exercise not started: the line says ``not done yet``, without ✗.

    Example: ``net = resnet18(); net.initialize(); net(X)``, then set the
    gammas (the exercise), then ``check_zero_gamma(net)``.
    """
    def is_zero(bn):
        return not _numpy(bn.gamma.data()).any()

    blocks = _residual_blocks(net)
    paths = {id(b): path for path, b in _named_blocks(net)}
    try:
        last = [(path, [b for b in parts.body if isinstance(b, nn.BatchNorm)][-1])
                for path, _, parts in blocks]
        nonzero = [(path, bn) for path, bn in last if not is_zero(bn)]
        others = [(path, b) for path, b in _named_blocks(net) if isinstance(b, nn.BatchNorm)
                  and b.gamma.grad_req != 'null' and all(b is not bn for _, bn in last)
                  and is_zero(b)]
    except RuntimeError:  # not initialized, or its shapes still deferred
        return _verdict("the net's parameters have no values yet: initialize it and run one "
                        'batch through it first', None, strict)
    if not blocks:
        diagnosis = 'the net has no residual block (BasicBlock, Bottleneck, Residual, ResNeXtBlock)'
    elif len(nonzero) == len(blocks) and not others:  # every gamma as initialized
        return _not_yet(f'no BatchNorm has gamma 0; set the gamma of the last BatchNorm of each '
                        f'of the {len(blocks)} residual branches to 0, then run this cell again',
                        strict)
    elif nonzero:
        path, bn = nonzero[0]
        diagnosis = (f'`{paths.get(id(bn), "")}`, the last BatchNorm of the residual branch of '
                     f'`{path}`, has a gamma that is not 0 (so do {len(nonzero) - 1} more of '
                     f'the {len(blocks)} blocks)')
    elif others:
        diagnosis = (f'`{others[0][0]}` has gamma 0 too ({_plural(len(others), "BatchNorm")} '
                     'in all): only the last BatchNorm of each residual branch should, or '
                     'what passes through it is lost')
    else:
        diagnosis = None
    return _verdict(diagnosis, f'the last BatchNorm of each of the {len(blocks)} residual '
                               'branches has gamma 0, and no other BatchNorm', strict)


def check_depth(net, depth, shortcuts=None, strict=False):
    """Check that ``net`` has ``depth`` weight layers, and shortcuts or none.

    The depth of a ResNet counts the conv and dense layers on the way from the
    input to the output, not the 1x1 convs of the shortcuts: ResNet-18 has a
    stem conv, 16 convs in 8 blocks and a dense layer.  ``shortcuts=True``
    wants a shortcut in every residual block, ``False`` a plain net (no block
    adds its input, as ``cifar_plain20``), ``None`` either.  Prints one line;
    returns True if right.

    Example: ``check_depth(my_plain_net, 32, shortcuts=False)``.
    """
    layers = _main_path(net)
    convs = sum(isinstance(b, nn.Conv2D) for b in layers)
    blocks = _residual_blocks(net)
    added = sum(parts.shortcut is not None for _, _, parts in blocks)
    if len(layers) != depth:
        diagnosis = (f'it has {len(layers)} weight layers on its main path ({convs} convs, '
                     f'{len(layers) - convs} dense), expected {depth}: the depth counts the '
                     "convs and dense layers from input to output, not the shortcuts' 1x1 convs")
    elif shortcuts and not blocks:
        diagnosis = 'it has no residual block, so no shortcut'
    elif shortcuts and added < len(blocks):
        diagnosis = f'{len(blocks) - added} of its {len(blocks)} blocks have no shortcut'
    elif shortcuts is False and added:
        diagnosis = (f'{added} of its {len(blocks)} blocks add their input: a plain net has '
                     'no shortcut (shortcut=None)')
    else:
        diagnosis = None
    kind = {True: f', a shortcut in each of its {len(blocks)} blocks', False: ', no shortcut',
            None: ''}[shortcuts]
    return _verdict(diagnosis, f'{depth} weight layers on the main path{kind}', strict)


def _check_count(answer, exact, what, where, hints, strict):
    """Right within 1%; else the hint of the first wrong count it matches."""
    def near(value):
        return value and abs(answer - value) <= 0.01 * abs(value)
    if near(exact):
        return _verdict(None, f'{where} has {exact:,} {what}', strict)
    wrong = f'{answer:,} is not the number of {what} of {where}'
    for value, hint in hints:
        if near(value):
            return _verdict(f'{wrong}: {hint}', None, strict)
    return _verdict(f'{wrong}: it is {answer / exact:.3g} times the count', None, strict)


def _net(net):
    """``(net, name)`` of a name of ``list_models()`` or a block; a block not
    initialized yet is copied, as ``layer_report`` would initialize it."""
    if isinstance(net, str):
        return get_model(net), net
    return net if is_initialized(net) else copy.deepcopy(net), type(net).__name__


def check_macs(macs, net, input_shape, strict=False):
    """Check a number of multiply-accumulates of ``net`` (a block, or a name of
    ``list_models()``) on a batch of ``input_shape`` ``(N, C, H, W)``.

    Right within 1% of ``layer_report(net, input_shape).total_macs``: convs
    and dense layers, ``prod(output shape) * in_channels/groups * kh * kw``
    for a conv.  Prints one line; returns True if right.

    Example: ``check_macs(30_000_000, 'resnet18', (1, 1, 28, 28))``.
    """
    net, name = _net(net)
    report = layer_report(net, input_shape)
    exact, batch = report.total_macs, input_shape[0]
    paths = {id(block): path for path, block in _named_blocks(net)}
    shortcuts = {paths[id(layer)] for _, _, parts in _residual_blocks(net)
                 for layer in parts.shortcut or ()}
    hints = [(2 * exact, 'that is twice the count: a multiply-accumulate is one '
                         'multiplication and one addition, counted once (the FLOPs of He et al.)'),
             (report.total_params, 'that is the number of parameters'),
             (exact - sum(r.macs for r in report.records if r.name in shortcuts),
              "the MACs of the shortcuts' 1x1 convs are missing")]
    if batch > 1:
        hints.append((exact // batch, f'that is for one image; the batch has {batch}'))
    height, width = input_shape[2:]
    if (height, width) != (224, 224):
        at_224 = layer_report(net, tuple(input_shape[:2]) + (224, 224)).total_macs
        sides = sorted({height} | {r.output_shape[2] for r in report.records
                                   if len(r.output_shape) == 4}, reverse=True)
        hints.append((at_224 * height * width / 224 ** 2,
                      f'that scales the count at 224x224 by the number of pixels, but the '
                      f'sides round up at each halving ({" -> ".join(map(str, sides))}): '
                      'count each layer at its own output size'))
    return _check_count(macs, exact, 'MACs', f'{name} on {tuple(input_shape)}', hints, strict)


def check_parameters(count, net, input_shape, strict=False):
    """Check a number of trainable parameters of ``net`` (a block, or a name of
    ``list_models()``) that takes batches of ``input_shape`` ``(N, C, H, W)``.

    Right within 1% of ``count_parameters``: weights, biases and BatchNorm
    scales and shifts, not the BatchNorm running statistics.  The input shape
    fixes the input channels of the first layer.  Prints one line; returns
    True if right.

    Example: ``check_parameters(546, Residual(6, use_1x1conv=True, strides=2), (1, 3, 6, 6))``.
    """
    net, name = _net(net)
    report = layer_report(net, input_shape)
    exact = report.total_params
    params = net.collect_params().values()

    def total(roles, trainable=True):
        return sum(p.data().size for p in params if p.name.endswith(roles)
                   and (p.grad_req != 'null' or not trainable))

    hints = [(total(('',), trainable=False), 'that counts the BatchNorm running means and '
                                             'variances, which are not learnt'),
             (exact - total(('bias',)), 'the biases are missing'),
             (exact - total(('gamma', 'beta')), "the BatchNorms' scales and shifts (gamma and "
                                               'beta, 2 per channel) are missing'),
             (report.total_macs, 'that is the number of MACs')]
    return _check_count(count, exact, 'parameters', f'{name} on {tuple(input_shape)}', hints,
                        strict)
