"""Diagrams of blocks and nets, drawn from the blocks themselves.

``draw(net_or_block, ...)`` reads the layers of what it is given (their kernel,
stride, channels and groups) and the block's wiring (``blocks.residual_parts``),
so a diagram cannot drift from the code::

    >>> from gluon_resnet import Residual, BasicBlock, Bottleneck, resnet18
    >>> from gluon_resnet.draw import draw
    >>> draw(Residual(8), Residual(8, use_1x1conv=True, strides=2))   # with/without 1x1 conv
    >>> draw(BasicBlock(64), Bottleneck(256), titles=['basic', 'bottleneck'])
    >>> draw(BasicBlock(64, version=1), BasicBlock(64, version=2))
    >>> draw(resnet18(), input_shape=(1, 1, 224, 224))     # the stages, with their shapes

=====================================  =========================================
given                                  diagram
=====================================  =========================================
a residual block (``Residual``,        its layers top down, the addition (+),
``ResNeXtBlock``, ``BasicBlock``,      and the shortcut on the right: a line
``Bottleneck``, d2l's blocks)          marked "identity", or its layers
a stage (a sequence of residual        its blocks one after another
blocks: ``resnet_block``, ...)
any other block: a net                 its own layers top down (stages as one
                                       box each, as ``layer_report(depth=1)``),
                                       with the output shape after each when
                                       ``input_shape`` is given
=====================================  =========================================

Layers are labelled ``Conv 3x3, 8, /2`` (kernel, output channels, stride if
not 1, groups if more than 1), ``BatchNorm``, ``ReLU``, ``MaxPool 3x3, /2``,
``GlobalAvgPool``, ``Dense, 10``.  The figure is a bare
``matplotlib.figure.Figure`` drawn by Agg, as ``plotting`` makes them: no
pyplot state; Jupyter shows it when a cell ends with it, and
``fig.savefig('block.png')`` saves it.
"""
import copy

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from mxnet.gluon import nn

from .blocks import RELU, Stage, ZeroPadShortcut, residual_parts
from .models import is_initialized
from .report import _row_blocks, layer_report

__all__ = ['draw', 'layer_label']

# Sizes in inches: the axes of each panel span its part of the figure, one data
# unit to the inch, so text (in points) and boxes keep their proportions.
BOX = 0.34       # height of a box
GAP = 0.2        # length of an arrow between two boxes
RADIUS = 0.12    # of the (+)
CHAR = 0.074     # width of a character at FONT points, roughly
FONT = 9
MARGIN = 0.25
LINE = '#4d4d4d'
COLORS = {'conv': '#cfe2f3', 'norm': '#fff2cc', 'act': '#d9ead3', 'pool': '#ead1dc',
          'dense': '#f4cccc', 'block': '#d9d2e9', 'other': '#eeeeee'}


# Labels

def _stride(layer):
    return layer._kwargs['stride'][0]


def _block_summary(block):
    """``'256, /2, 32 groups'`` for a residual block: its last conv's outputs, its
    largest stride and number of groups (each if not 1)."""
    convs = [b for b in residual_parts(block).body if isinstance(b, nn.Conv2D)]
    stride = max(_stride(conv) for conv in convs)
    groups = max(conv._kwargs['num_group'] for conv in convs)
    return f'{convs[-1]._channels}' + (f', /{stride}' if stride > 1 else '') + (
        f', {groups} groups' if groups > 1 else '')


def _blocks_of(block):
    """The residual blocks of a stage (a non-empty sequence of them only), else None."""
    children = list(block._children.values())
    if children and all(residual_parts(child) for child in children):
        return children
    return None


def layer_label(layer):
    """``(label, kind)`` of a layer or block: ``('Conv 3x3, 8, /2', 'conv')``.

    Example: ``layer_label(nn.MaxPool2D(3, 2, 1))`` is ``('MaxPool 3x3, /2', 'pool')``.
    """
    if layer is RELU:
        return 'ReLU', 'act'
    if isinstance(layer, nn.Conv2D):
        (kh, kw), groups = layer._kwargs['kernel'], layer._kwargs['num_group']
        stride = _stride(layer)
        return (f'Conv {kh}x{kw}, {layer._channels}' + (f', /{stride}' if stride > 1 else '')
                + (f', {groups} groups' if groups > 1 else '')), 'conv'
    if isinstance(layer, nn.BatchNorm):
        return 'BatchNorm', 'norm'
    if isinstance(layer, nn.Activation):
        act = layer._act_type
        return ('ReLU' if act == 'relu' else act.capitalize()), 'act'
    if isinstance(layer, ZeroPadShortcut):
        stride = _stride(layer.subsample)
        return (f'Subsample /{stride}' if stride > 1 else 'Identity') + (
            f', {layer.extra} zero channels' if layer.extra else ''), 'other'
    if isinstance(layer, nn.Dense):
        return f'Dense, {layer._units}', 'dense'
    if isinstance(layer, nn.conv_layers._Pooling):
        kwargs = layer._kwargs
        kind = 'Avg' if kwargs['pool_type'] == 'avg' else 'Max'
        if kwargs['global_pool']:
            return f'Global{kind}Pool', 'pool'
        (kh, kw), stride = kwargs['kernel'], kwargs['stride'][0]
        return f'{kind}Pool {kh}x{kw}' + (f', /{stride}' if stride > 1 else ''), 'pool'
    if residual_parts(layer):
        return f'{type(layer).__name__}, {_block_summary(layer)}', 'block'
    blocks = _blocks_of(layer)
    if blocks:  # a stage: its first block sets the stride
        kinds = '/'.join(sorted({type(b).__name__ for b in blocks}))
        return f'{len(blocks)} × {kinds}, {_block_summary(blocks[0])}', 'block'
    return type(layer).__name__, 'other'


def _title(block):
    title = type(block).__name__
    if hasattr(block, 'version') and residual_parts(block):
        title += f' v{block.version}' + ('' if block.has_shortcut else ', no shortcut')
    return title


# Panels

def _width(text):
    return CHAR * len(text)


class _Panel:
    """One diagram: its drawing steps in inches, from y = 0 at the top down."""

    def __init__(self, title):
        self.steps = []
        self.title = title
        self.width = _width(title) + 2 * MARGIN
        self.bottom = -MARGIN - 0.3  # the title's line

    def extend(self, right, bottom):
        self.width, self.bottom = max(self.width, right + MARGIN), min(self.bottom, bottom)

    def text(self, x, y, text, **kwargs):
        kwargs = dict(dict(ha='center', va='center', fontsize=FONT), **kwargs)
        self.steps.append(lambda ax: ax.text(x, y, text, **kwargs))

    def box(self, x, y, width, label, kind):
        self.steps.append(lambda ax: ax.add_patch(FancyBboxPatch(
            (x - width / 2, y - BOX / 2), width, BOX, boxstyle='round,pad=0,rounding_size=0.06',
            facecolor=COLORS[kind], edgecolor=LINE, linewidth=0.8, zorder=3)))
        self.text(x, y, label, zorder=4)
        self.extend(x + width / 2, y - BOX / 2)

    def arrow(self, start, end):
        self.steps.append(lambda ax: ax.add_patch(FancyArrowPatch(
            start, end, arrowstyle='-|>', mutation_scale=9, color=LINE, linewidth=1,
            shrinkA=0, shrinkB=0, zorder=2)))

    def line(self, points):
        xs, ys = zip(*points)
        self.steps.append(lambda ax: ax.add_line(Line2D(xs, ys, color=LINE, linewidth=1,
                                                        zorder=1)))

    def plus(self, x, y):
        self.steps.append(lambda ax: ax.add_patch(Circle(
            (x, y), RADIUS, facecolor='white', edgecolor=LINE, linewidth=1, zorder=3)))
        self.text(x, y - 0.01, '+', fontsize=FONT + 2, zorder=4)

    def render(self, ax, height):
        ax.set_xlim(0, self.width)
        ax.set_ylim(-height, 0)
        ax.axis('off')
        ax.text(self.width / 2, -MARGIN, self.title, ha='center', va='center',
                fontsize=FONT + 1, fontweight='bold')
        for step in self.steps:
            step(ax)


def _column_width(labels, minimum=1.3):
    return max([minimum] + [_width(label) + 0.3 for label in labels])


def _labels(layers):
    return [layer_label(layer) for layer in layers]


def _draw_block(panel, parts, x, width, shortcut_x, shortcut_width, y):
    """Draw one residual block whose input arrives at ``(x, y)``; returns the y
    where its output leaves."""
    def box_after(y, label, kind):
        center = y - GAP - BOX / 2
        panel.arrow((x, y), (x, center + BOX / 2))
        panel.box(x, center, width, label, kind)
        return center - BOX / 2

    def split(y):  # the dot where the shortcut leaves the main path
        if parts.shortcut is not None:
            panel.steps.append(lambda ax: ax.add_patch(Circle((x, y), 0.03, color=LINE,
                                                              zorder=3)))
        return y

    split_y = None if parts.tap_preact else split(y - GAP / 2)
    for label, kind in _labels(parts.pre):
        y = box_after(y, label, kind)
    if split_y is None:
        split_y = split(y - GAP / 2)
    top_of_body = y
    for label, kind in _labels(parts.body):
        y = box_after(y, label, kind)
    if parts.shortcut is not None:
        plus_y = y - GAP - RADIUS
        panel.arrow((x, y), (x, plus_y + RADIUS))
        panel.line([(x, split_y), (shortcut_x, split_y), (shortcut_x, plus_y)])
        panel.arrow((shortcut_x, plus_y), (x + RADIUS, plus_y))
        shortcut = _labels(parts.shortcut)
        middle = (top_of_body + plus_y) / 2
        if not shortcut:
            panel.text(shortcut_x + 0.06, middle, 'identity', ha='left', fontsize=FONT - 1,
                       style='italic', color=LINE)
            panel.extend(shortcut_x + 0.06 + _width('identity'), plus_y)
        for i, (label, kind) in enumerate(shortcut):
            row = middle + (len(shortcut) - 1) / 2 * (BOX + GAP) - i * (BOX + GAP)
            panel.box(shortcut_x, row, shortcut_width, label, kind)
        panel.plus(x, plus_y)
        y = plus_y - RADIUS
    for label, kind in _labels(parts.post):
        y = box_after(y, label, kind)
    return y


def _block_panel(blocks, title):
    """A panel of residual blocks, one after another (a block, or a stage)."""
    panel = _Panel(title)
    parts = [residual_parts(block) for block in blocks]
    width = _column_width([label for p in parts for label, _ in _labels(p.pre + p.body + p.post)])
    shortcuts = [label for p in parts for label, _ in _labels(p.shortcut or ())]
    shortcut_width = _column_width(shortcuts, minimum=1.0) if shortcuts else 0
    x = MARGIN + width / 2
    shortcut_x = MARGIN + width + 0.35 + shortcut_width / 2
    panel.extend(x + width / 2, 0)
    y = -MARGIN - 0.55
    panel.text(x, y, 'x', style='italic')
    y -= 0.12
    for p in parts:
        y = _draw_block(panel, p, x, width, shortcut_x, shortcut_width, y)
    panel.arrow((x, y), (x, y - GAP))
    panel.extend(x, y - GAP)
    return panel


def _output_shapes(net, input_shape):
    """``{row name: output shape}`` of ``layer_report(net, input_shape, depth=1)``,
    run on a copy of a net not initialized yet, which stays so."""
    net = net if is_initialized(net) else copy.deepcopy(net)  # never run: no cached graph
    return {r.name: r.output_shape for r in layer_report(net, input_shape, depth=1).records}


def _net_panel(net, input_shape, title):
    """A panel of a net's own layers (``layer_report``'s rows at depth 1), with
    the output shape after each when ``input_shape`` is given."""
    panel = _Panel(title)
    rows = list(_row_blocks(net, depth=1)) or [(net._alias(), net)]
    shapes = {} if input_shape is None else _output_shapes(net, input_shape)
    labels = [layer_label(block) for _, block in rows]
    named = [(f'{name.split("/")[-1]}: {label}' if kind == 'block' else label, kind)
             for (name, _), (label, kind) in zip(rows, labels)]
    width = _column_width([label for label, _ in named])
    x = MARGIN + width / 2
    y = -MARGIN - 0.55
    panel.text(x, y, 'input' if input_shape is None else f'input {tuple(input_shape)}')
    y -= 0.12
    for (name, _), (label, kind) in zip(rows, named):
        center = y - GAP - BOX / 2
        panel.arrow((x, y), (x, center + BOX / 2))
        panel.box(x, center, width, label, kind)
        if name in shapes:
            text = str(shapes[name])
            panel.text(x + width / 2 + 0.12, center, text, ha='left', fontsize=FONT - 1,
                       family='monospace', color='#333333')
            panel.extend(x + width / 2 + 0.12 + 0.9 * _width(text), center)
        y = center - BOX / 2
    panel.extend(x, y)
    return panel


def draw(*blocks, input_shape=None, titles=None):
    """Diagrams of ``blocks`` side by side, each drawn from the block itself.

    Parameters
    ----------
    *blocks : Block
        Residual blocks, stages or nets (see the module docstring).
    input_shape : tuple of 4 int, optional
        ``(N, C, H, W)``: a net is run on it (``layer_report``, in predict
        mode) to write the output shape after each of its layers; a net not
        initialized yet stays so.  Blocks ignore it.
    titles : list of str, optional
        One per block; default the class name (and version).

    Returns
    -------
    matplotlib.figure.Figure

    Example::

        fig = draw(Residual(8), Residual(8, use_1x1conv=True, strides=2),
                   titles=['identity shortcut', '1x1 conv shortcut'])
        fig.savefig('residual.png', dpi=150)
    """
    if not blocks:
        raise ValueError('draw needs at least one block or net')
    titles = list(titles) if titles is not None else [None] * len(blocks)
    if len(titles) != len(blocks):
        raise ValueError(f'draw got {len(blocks)} blocks and {len(titles)} titles')
    panels = []
    for block, title in zip(blocks, titles):
        if not isinstance(block, nn.Block):
            raise ValueError(f'draw draws Gluon blocks and nets, got {type(block).__name__}')
        if residual_parts(block):
            panels.append(_block_panel([block], title or _title(block)))
        elif _blocks_of(block) and isinstance(block, (Stage, nn.Sequential, nn.HybridSequential)):
            panels.append(_block_panel(_blocks_of(block), title or type(block).__name__))
        else:
            panels.append(_net_panel(block, input_shape, title or type(block).__name__))
    height = max(-panel.bottom for panel in panels) + MARGIN
    width = sum(panel.width for panel in panels)
    fig = Figure(figsize=(width, height))
    left = 0
    for panel in panels:
        panel.render(fig.add_axes([left / width, 0, panel.width / width, 1]), height)
        left += panel.width
    return fig
