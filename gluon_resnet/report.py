"""A per-layer report of a net: output shapes, parameters and multiply-adds.

``layer_report(net, input_shape, depth=None)`` is d2l's shape loop
(``for layer in net: X = layer(X); print(layer.name, 'output shape:\\t', X.shape)``)
made to work on any Gluon net, hybridized or not, with parameter and MAC
counts added.  It runs one forward pass with forward hooks and returns a
``LayerReport`` that prints as a table::

    >>> from gluon_resnet import layer_report, resnet18
    >>> print(layer_report(resnet18(), (1, 1, 224, 224), depth=1))
    Layer       Kind                       Output shape      Params           MACs
    ------------------------------------------------------------------------------
    conv0       Conv2D                (1, 64, 112, 112)       3,200     39,337,984
    batchnorm0  BatchNorm             (1, 64, 112, 112)         128              0
    ...
    stage3      Stage                    (1, 512, 7, 7)   8,395,264    411,041,792
    pool1       GlobalAvgPool2D          (1, 512, 1, 1)           0              0
    dense0      Dense                           (1, 10)       5,130          5,120
    ------------------------------------------------------------------------------
    Total                        input (1, 1, 224, 224)  11,178,378  1,734,890,496

``model_table()`` lists the registered models with their description, input
shape, default classes and parameter count (``shapes --list-models`` prints it).

Rows and names
--------------
Each row is a block, named by its path from the net, joined with ``/``
(``stage1/residual0/conv1``).  The names do not use Gluon's global name
counters, so they are the same for every net built the same way:

* a child stored in an attribute keeps the attribute's name (``features``,
  ``body``, ``downsample``, ``conv1``, ``output``);
* an element of a ``Sequential`` is named by its kind and its rank among
  siblings of that kind (``conv0``, ``batchnorm0``, ``relu0``, ``pool0``,
  ``stage0``, ``basicblock0``), as Gluon's ``_alias()`` names blocks.

``depth`` counts levels below the net: 1 gives the layers of the net's own
sequence (stem layers, stages, output layer), 2 the blocks inside each stage,
3 the layers inside each block; ``None`` gives every leaf layer.  A block with
no children is a row at any depth below its own.  A plain ``Sequential`` or
``HybridSequential`` stored in an attribute (``features``, ``body``,
``downsample``, ``preact``) only holds a sequence: it adds its name to the
path but no level, so the layers of ``ResNet.features`` are at depth 1 like
those of d2l's ``resnet18``, and those of ``body`` at depth 3 like the convs
of d2l's ``Residual``.  (A torchvision-style ``self.layer1 = HybridSequential()``
therefore shows its blocks at depth 1; our ``Stage`` is a subclass, a level.)
Rows are listed in the order they finish in the forward pass; a block called
twice gives two rows, a block never called gives none.
"""
import collections
import math
import numbers
from dataclasses import asdict, dataclass, fields

import mxnet as mx
from mxnet import autograd
from mxnet.gluon import nn

from ._arrays import arrays
from .checks import check_positive
from .models import check_input, get_model, model_infos

__all__ = ['LayerRecord', 'LayerReport', 'layer_report', 'count_parameters',
           'count_macs', 'model_table', 'training_bytes', 'named_children']


# Helpers

def count_parameters(net):
    """Trainable parameters of ``net``: those with ``grad_req != 'null'``.

    BatchNorm running statistics are not trainable and not counted (Gluon's
    ``collect_params()`` lists them: MXNet's ``resnet18_v1`` has 11,689,512
    trainable parameters, 11,699,112 with running statistics).  Raises
    ``ValueError`` while a shape is unknown (deferred initialization): run a
    batch, or ``layer_report``, first.
    """
    params = [p for p in net.collect_params().values() if p.grad_req != 'null']
    for param in params:
        if min(param.shape, default=1) < 1:  # 0 (or -1 in numpy mode) = unknown yet
            raise ValueError(f'parameter {param.name} has shape {param.shape}, not known '
                             'until the first forward pass: run one batch first')
    return sum(math.prod(p.shape) for p in params)


def training_bytes(net, input_shape):
    """A lower bound of the bytes training ``net`` on batches of ``input_shape``
    needs: every layer's float32 output, kept for the backward pass, and the
    parameters with their gradients and momentum.  From shapes inferred on a
    symbolic graph: nothing is allocated.  (d2l's resnet18 on batches of
    128x1x96x96: 0.94 GB; the process peaked at 1.46 GB.)"""
    internals = net(mx.sym.var('data')).get_internals()
    arg_shapes, out_shapes, _ = internals.infer_shape(data=tuple(input_shape))
    outputs = sum(math.prod(shape) for shape in out_shapes)
    params = sum(math.prod(shape) for name, shape in zip(internals.list_arguments(), arg_shapes)
                 if name != 'data')
    return 4 * (outputs + 3 * params)


def count_macs(block, output):
    """Multiply-accumulates of one call of ``block`` that returned ``output``.

    ``Conv2D``: ``prod(output.shape) * in_channels / groups * kh * kw``;
    ``Dense``: ``prod(output.shape) * in_units`` (``batch * in_units * units``);
    every other block: 0 (its children are counted on their own).
    """
    if isinstance(block, nn.Conv2D):
        # weight : (out_channels, in_channels / groups, kh, kw)
        return math.prod(output.shape) * math.prod(block.weight.shape[1:])
    if isinstance(block, nn.Dense):
        # weight : (units, in_units)
        return math.prod(output.shape) * block.weight.shape[1]
    return 0


def _check_input_shape(input_shape):
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 4 or any(
            isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1
            for n in input_shape):
        raise ValueError('input_shape must be a tuple of 4 positive integers '
                         f'(N, C, H, W), got {input_shape!r}')
    return tuple(int(n) for n in input_shape)


def _zeros(shape, ctx=None):
    """Zeros in the current array mode: ``mx.np`` after ``npx.set_np()``, else ``mx.nd``."""
    return arrays().zeros(shape, ctx=ctx)


def _format_table(header, rows, num_left, footer=None):
    """Rows of strings in aligned columns, the first ``num_left`` to the left,
    with a rule under ``header`` and, if there is a ``footer`` row, above it."""
    table = [header] + rows + ([footer] if footer else [])
    widths = [max(map(len, column)) for column in zip(*table)]

    def line(row):
        return '  '.join(f'{cell:<{width}}' if i < num_left else f'{cell:>{width}}'
                         for i, (cell, width) in enumerate(zip(row, widths)))

    rule = '-' * len(line(header))
    lines = [line(header), rule] + [line(row) for row in rows]
    if footer:
        lines += [rule, line(footer)]
    return '\n'.join(lines)


def named_children(block):
    """``(name, child)`` for each child of ``block``, in order, named as the
    report names its rows: a child stored in an attribute keeps the attribute's
    name; an element of a ``Sequential`` is named by its kind and its rank among
    siblings of that kind (``conv0``, ``batchnorm0``, ``stage0``), as Gluon's
    ``_alias()`` names blocks, so not by Gluon's global name counters."""
    counts = collections.Counter()
    for key, child in block._children.items():
        if key.isdigit():  # an element of a Sequential
            alias = child._alias()
            key, counts[alias] = f'{alias}{counts[alias]}', counts[alias] + 1
        yield key, child


def _descendants(block):
    """``block`` and every block below it."""
    yield block
    for child in block._children.values():
        yield from _descendants(child)


def _row_blocks(block, path='', level=0, depth=None):
    """Yield ``(name, block)`` for the rows below ``block``, which is at ``level``."""
    for key, child in named_children(block):
        holder = (block._children.get(key) is child  # stored in an attribute, not an element
                  and type(child) in (nn.Sequential, nn.HybridSequential))
        name = f'{path}/{key}' if path else key
        if holder:
            yield from _row_blocks(child, name, level, depth)
        elif not child._children or level + 1 == depth:
            yield name, child
        else:
            yield from _row_blocks(child, name, level + 1, depth)


def _shape(output):
    if isinstance(output, (list, tuple)):
        return tuple(_shape(x) for x in output)
    return tuple(output.shape)


def _initialize_missing(net):
    """Initialize parameters that are not yet, as ``net.initialize()`` does."""
    for param in net.collect_params().values():
        try:
            param.list_ctx()
        except RuntimeError:  # neither initialized nor waiting for a shape
            param.initialize()


def _context(net):
    params = list(net.collect_params().values())
    return params[0].list_ctx()[0] if params else mx.context.current_context()


# Report

@dataclass(frozen=True)
class LayerRecord:
    """One row: a block's path, class name, output shape and counts."""
    name: str
    kind: str
    output_shape: tuple
    params: int  # trainable parameters inside the block
    macs: int    # multiply-accumulates of its convs and dense layers


@dataclass(frozen=True)
class LayerReport:
    """The rows of ``layer_report`` and their totals; ``str()`` is a table."""
    records: list
    input_shape: tuple
    total_params: int  # of the whole net, ``count_parameters(net)``
    total_macs: int

    def to_dataframe(self):
        """A pandas ``DataFrame``, one row per record (no totals row)."""
        import pandas as pd  # only this method needs pandas
        return pd.DataFrame([asdict(r) for r in self.records],
                            columns=[f.name for f in fields(LayerRecord)])

    def __str__(self):
        header = ('Layer', 'Kind', 'Output shape', 'Params', 'MACs')
        total = ('Total', '', f'input {self.input_shape}',
                 f'{self.total_params:,}', f'{self.total_macs:,}')
        rows = [(r.name, r.kind, str(r.output_shape), f'{r.params:,}', f'{r.macs:,}')
                for r in self.records]
        return _format_table(header, rows, num_left=2, footer=total)


def layer_report(net, input_shape, depth=None):
    """Run one forward pass of ``net`` and report every layer down to ``depth``.

    MACs are multiply-accumulates of the ``Conv2D`` and ``Dense`` layers
    (``prod(output shape) * in_channels/groups * kh * kw`` and
    ``batch * in_units * units``); BatchNorm, activations, pooling and
    additions count 0.  These are the "FLOPs" of He et al. 2015, Table 1,
    which counts multiply-adds of the convs and the FC layer (1.8 G for
    ResNet-18).  All counts are for ``input_shape``, batch included: use
    batch 1 for per-image numbers.

    The pass runs in predict mode without autograd, on a zero input in the
    current array mode (``mx.np`` after ``npx.set_np()``, else ``mx.nd``), so
    BatchNorm running statistics stay as they were.  Hybridized blocks run
    imperatively for the pass, as hooks do not fire inside a cached graph,
    and are hybridized again afterwards.  Parameters not initialized yet are
    initialized with Gluon's default (as ``net.initialize()``, which d2l
    calls before its shape loop); deferred shapes are inferred by the pass.

    Parameters
    ----------
    net : Block
    input_shape : tuple of 4 positive int
        ``(N, C, H, W)``.  A net with a ``min_size`` (ours) checks it with
        ``models.check_input`` first: ``ValueError`` if too small, or if the
        channels differ from those the net was initialized for.
    depth : int or None, default None
        Levels below the net to show (see the module docstring); ``None``
        shows every leaf layer.

    Returns
    -------
    LayerReport
    """
    input_shape = _check_input_shape(input_shape)
    if depth is not None:
        check_positive(depth=depth)
        depth = int(depth)
    if hasattr(net, 'min_size'):
        check_input(net, input_shape)
    _initialize_missing(net)
    rows = list(_row_blocks(net, depth=depth)) or [(net._alias(), net)]

    records = []
    pending_macs = [0] * len(rows)  # of each row's convs and dense layers since it last ran

    def add_macs(index):
        def hook(block, inputs, output):
            pending_macs[index] += count_macs(block, output)
        return hook

    def record(index, name):
        def hook(block, inputs, output):
            records.append(LayerRecord(name, type(block).__name__, _shape(output),
                                       count_parameters(block), pending_macs[index]))
            pending_macs[index] = 0
        return hook

    hybridized = [b for b in _descendants(net) if getattr(b, '_active', False)]
    handles = []
    try:
        for block in hybridized:
            block._active = False  # not hybridize(False): that resets `_flags`
        for index, (name, row) in enumerate(rows):
            # registered before `record`, so a conv row's own MACs are added first
            handles += [b.register_forward_hook(add_macs(index))
                        for b in _descendants(row) if isinstance(b, (nn.Conv2D, nn.Dense))]
            handles.append(row.register_forward_hook(record(index, name)))
        X = _zeros(input_shape, ctx=_context(net))
        with autograd.pause(train_mode=False):
            net(X)
        mx.nd.waitall()  # MXNet runs ops asynchronously: raise their errors here
    finally:
        for handle in handles:
            handle.detach()
        for block in hybridized:
            block._active = True
            block._clear_cached_op()  # the next call traces the graph afresh
    return LayerReport(records, input_shape, count_parameters(net),
                       sum(r.macs for r in records))


def model_table():
    """A table of the registered models: name, description, input shape
    ``(C, H, W)``, default number of classes and trainable parameters.

    The parameters are counted from shapes inferred on a symbolic graph
    (``HybridBlock.infer_shape``): no weights are allocated, so all the nets
    take about a second.  ``models.model_infos()`` gives the other columns as data.
    """
    rows = []
    for info in model_infos():
        net = get_model(info.name)
        net.infer_shape(_zeros((1,) + info.input_shape))
        rows.append((info.name, info.description, str(info.input_shape),
                     f'{info.num_classes:,}', f'{count_parameters(net):,}'))
    header = ('Model', 'Description', 'Input (C, H, W)', 'Classes', 'Params')
    return _format_table(header, rows, num_left=3)
