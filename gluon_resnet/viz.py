"""Pictures the notebooks share: image grids, confusion matrices, gradient norms.

==========================  ==================================================
function                    what it gives
==========================  ==================================================
``show_images``             a grid of images, filters or feature maps (d2l's
                            ``show_images``, for ``(N, C, H, W)`` arrays)
``layer_outputs``           the output of every layer of a sequence (d2l's
                            shape loop), to look at feature maps
``classify``                the images, labels and predicted classes of a
                            data iterator, as numpy arrays
``show_misclassified``      a grid of the images a net got wrong, titled
                            with the true and the predicted class
``confusion_matrix``        counts of (true class, predicted class)
``plot_confusion_matrix``   that matrix as a heat map with its counts
``gradient_norms``          the gradient norm of every conv and dense weight
                            for one batch, input side first
``plot_gradient_norms``     those norms of several nets on one log-scale plot
==========================  ==================================================

Arrays may be numpy, ``mx.nd`` or ``mx.np``; the functions return numpy
arrays and matplotlib axes and never call ``plt.show()``: Jupyter's inline
backend draws the figure at the end of the cell.
"""
import matplotlib.pyplot as plt
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn

from .report import named_children

__all__ = ['to_numpy', 'show_images', 'layer_outputs', 'classify', 'show_misclassified',
           'confusion_matrix', 'plot_confusion_matrix', 'gradient_norms', 'plot_gradient_norms']


# Helpers

def to_numpy(x):
    """A numpy array from a numpy array, an ``mx.nd.NDArray`` or an ``mx.np.ndarray``."""
    return x.asnumpy() if hasattr(x, 'asnumpy') else np.asarray(x)


def _displayable(image):
    """One image ``(H, W)``, ``(1, H, W)`` or ``(3, H, W)`` as ``(H, W)`` or
    ``(H, W, 3)`` floats in [0, 1], stretched from its own min and max (inputs
    are normalised and filters have any sign, so fixed limits would not do)."""
    if image.ndim == 3:
        if image.shape[0] not in (1, 3):
            raise ValueError(f'an image of shape (C, H, W) needs C = 1 or 3 channels, '
                             f'got shape {image.shape}: show the channels one by one, '
                             'e.g. show_images(x[0], ...) for the maps of one image')
        image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    elif image.ndim != 2:
        raise ValueError(f'expected images of shape (H, W) or (C, H, W), got {image.shape}')
    image = image.astype(np.float64)
    low, high = image.min(), image.max()
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


# Images

def show_images(images, num_rows, num_cols, titles=None, scale=1.5, cmap='gray'):
    """Draw ``images`` on a ``num_rows`` x ``num_cols`` grid; return the axes.

    Parameters
    ----------
    images : array of shape (N, H, W) or (N, C, H, W), C = 1 or 3, or a list
        of images ``(H, W)`` or ``(C, H, W)`` of any sizes (feature maps of
        several stages).  At most ``num_rows * num_cols`` of them; each is
        stretched to its own value range.  Spare cells of the grid stay empty.
    num_rows, num_cols : int
    titles : list of str, optional
        One per image.
    scale : float, default 1.5
        Width of a grid cell in inches; its height follows the first image's
        aspect ratio (but at most ``scale``), plus room for a title.
    cmap : str, default 'gray'
        Colour map of one-channel images.

    Returns
    -------
    numpy array of ``num_rows * num_cols`` matplotlib axes
    """
    if isinstance(images, (list, tuple)):
        images = [to_numpy(image) for image in images]
    else:
        images = to_numpy(images)
        if images.ndim not in (3, 4):
            raise ValueError(f'expected images of shape (N, H, W) or (N, C, H, W), '
                             f'got {images.shape}')
    if len(images) > num_rows * num_cols:
        raise ValueError(f'{len(images)} images do not fit a {num_rows}x{num_cols} grid: '
                         f'expected at most {num_rows * num_cols}')
    if titles is not None and len(titles) != len(images):
        raise ValueError(f'expected one title per image ({len(images)}), got {len(titles)}')
    first = _displayable(images[0]) if len(images) else np.zeros((1, 1))
    aspect = min(1.0, first.shape[0] / first.shape[1])  # wide images: shorter rows
    title_lines = 0 if titles is None else max((str(t).count('\n') + 1 for t in titles), default=0)
    _, axes = plt.subplots(num_rows, num_cols, squeeze=False,
                           figsize=(num_cols * scale,
                                    num_rows * (scale * aspect + 0.2 * title_lines)))
    axes = axes.ravel()
    for i, ax in enumerate(axes):
        ax.axis('off')
        if i < len(images):
            ax.imshow(_displayable(images[i]), cmap=cmap)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    return axes


def layer_outputs(layers, X):
    """d2l's shape loop, ``for layer in layers: X = layer(X)``, keeping every output.

    ``layers`` is a ``Sequential`` or ``HybridSequential``: d2l's ``resnet18``,
    or the ``features`` of a ``ResNet``.  Returns a list of ``(name, output)``,
    one per layer, named as ``layer_report`` names them at depth 1 (``conv0``,
    ``batchnorm0``, ``stage0``, ...).  Runs in predict mode unless called
    inside ``autograd.record()``.
    """
    if not isinstance(layers, (nn.Sequential, nn.HybridSequential)):
        raise ValueError(f'expected a Sequential or HybridSequential (e.g. net.features), '
                         f'got {type(layers).__name__}')
    outputs = []
    for name, layer in named_children(layers):
        X = layer(X)
        outputs.append((name, X))
    return outputs


def classify(net, data_iter, ctx=None):
    """Run ``net`` over ``data_iter``; return ``(images, labels, predicted)``.

    ``images`` : ``(N, C, H, W)`` float32 as the iterator yields them (normalised),
    ``labels`` and ``predicted`` : ``(N,)`` int.  The net runs in predict mode
    on ``ctx`` (default: the device of its parameters).
    """
    if ctx is None:
        ctx = next(iter(net.collect_params().values())).list_ctx()[0]
    images, labels, predicted = [], [], []
    for X, y in data_iter:
        y_hat = net(X.as_in_context(ctx))
        images.append(to_numpy(X))
        labels.append(to_numpy(y).astype(np.int64))
        predicted.append(to_numpy(y_hat).argmax(axis=1))
    return np.concatenate(images), np.concatenate(labels), np.concatenate(predicted)


def show_misclassified(images, labels, predicted, classes, num_rows=2, num_cols=8):
    """Draw the first ``num_rows * num_cols`` images with ``predicted != labels``,
    titled with the true class over ``→ predicted class``, named by
    ``classes``; return the
    indices of all the misclassified images.

    ``images`` : ``(N, C, H, W)``, ``labels`` and ``predicted`` : ``(N,)``, as
    ``classify`` returns them.  The grid is sized to the errors there are: fewer
    than ``num_cols`` make one row of that many, and the last row has no
    empty cells; nothing is drawn when there is no error.
    """
    labels, predicted = to_numpy(labels), to_numpy(predicted)
    if not len(images) == len(labels) == len(predicted):
        raise ValueError(f'expected as many images, labels and predictions, got '
                         f'{len(images)}, {len(labels)} and {len(predicted)}')
    wrong = np.flatnonzero(labels != predicted)
    shown = wrong[:num_rows * num_cols]
    if len(shown):
        titles = [f'{classes[labels[i]]}\n→ {classes[predicted[i]]}' for i in shown]
        num_cols = min(num_cols, len(shown))
        axes = show_images(to_numpy(images)[shown], -(-len(shown) // num_cols), num_cols,
                           titles=titles)
        for ax in axes[len(shown):]:
            ax.remove()
    return wrong


def confusion_matrix(labels, predicted, num_classes):
    """``(num_classes, num_classes)`` int array: entry ``[i, j]`` counts the
    images of class ``i`` predicted as class ``j`` (rows sum to the class sizes)."""
    labels, predicted = to_numpy(labels).astype(np.int64), to_numpy(predicted).astype(np.int64)
    if labels.shape != predicted.shape or labels.ndim != 1:
        raise ValueError(f'expected labels and predictions of the same shape (N,), '
                         f'got {labels.shape} and {predicted.shape}')
    if labels.size and (min(labels.min(), predicted.min()) < 0
                        or max(labels.max(), predicted.max()) >= num_classes):
        raise ValueError(f'expected classes 0..{num_classes - 1}')
    counts = np.bincount(labels * num_classes + predicted, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes)


def plot_confusion_matrix(matrix, classes, ax=None):
    """Draw ``matrix`` (from ``confusion_matrix``) with its counts; return the axes.

    Rows are true classes, columns predicted ones, both named by ``classes``.
    """
    matrix = np.asarray(matrix)
    if matrix.shape != (len(classes), len(classes)):
        raise ValueError(f'a matrix of shape {matrix.shape} for {len(classes)} classes: '
                         f'expected ({len(classes)}, {len(classes)})')
    if ax is None:
        size = 1.5 + 0.45 * len(classes)
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap='Blues')
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=90)
    ax.set_yticks(ticks, classes)
    ax.set_xlabel('predicted class')
    ax.set_ylabel('true class')
    threshold = matrix.max() / 2
    for i in range(len(classes)):
        for j in range(len(classes)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha='center', va='center', fontsize=8,
                        color='white' if matrix[i, j] > threshold else 'black')
    return ax


# Gradients

def gradient_norms(net, X, y, loss_fn=None):
    """The L2 norm of the loss gradient of every conv and dense weight.

    One forward and backward pass of the batch ``X : (N, C, H, W)``, labels
    ``y : (N,)``, in training mode (BatchNorm uses the batch's statistics, as
    in training); the mean softmax cross-entropy by default.  Nothing is
    updated: parameters and BatchNorm running statistics stay as they were.

    Returns a list of ``(name, norm)``, one per weight of rank 2 or 4, in the
    order the layers were created: for the nets of this package that is the
    order the input meets them (a projection shortcut comes after the body of
    its block).  ``name`` is the parameter's name without the net's prefix.
    """
    loss_fn = loss_fn or gluon.loss.SoftmaxCrossEntropyLoss()
    params = [p for p in net.collect_params().values()
              if p.grad_req != 'null' and len(p.shape) in (2, 4)]
    ctx = params[0].list_ctx()[0]
    X, y = X.as_in_context(ctx), y.as_in_context(ctx)
    if any(min(p.shape) < 1 for p in params):  # deferred initialization: shapes unknown
        net(X)  # predict mode: infers the shapes, changes nothing
    running = {name: p.data().copy() for name, p in net.collect_params().items()
               if p.grad_req == 'null'}
    with autograd.record():
        loss = loss_fn(net(X), y).mean()
    loss.backward()
    for name, value in running.items():  # a training-mode pass moved them
        net.collect_params()[name].set_data(value)
    prefix = net.prefix
    return [(p.name[len(prefix):] if p.name.startswith(prefix) else p.name,
             float(np.linalg.norm(to_numpy(p.grad(ctx)))))
            for p in params]


def plot_gradient_norms(norms, ax=None, styles=None):
    """Plot ``norms``, ``{net name: gradient_norms(...)}``, against layer number
    (1 = the layer next to the input), log scale; return the axes.

    ``styles``, optional: ``{net name: (colour, line style)}``, e.g.
    ``{'cifar_plain56': ('C0', '-')}``; a net left out gets the next colour of
    matplotlib's cycle and a solid line.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    styles = styles or {}
    for label, pairs in norms.items():
        values = [norm for _, norm in pairs]
        color, linestyle = styles.get(label, (None, '-'))
        ax.plot(np.arange(1, len(values) + 1), values, marker='.', color=color,
                linestyle=linestyle, label=label)
    ax.set_yscale('log')
    ax.set_xlabel('layer (1 = next to the input)')
    ax.set_ylabel('gradient norm of its weights')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend()
    return ax
