"""Training curves: a live plot in Jupyter (as d2l's ``Animator``) and ``curves.png``.

Both draw the same figure: the training loss on the left, train and test
accuracy on the right, against epochs.  The figure is a bare
``matplotlib.figure.Figure`` drawn by Agg, never a pyplot figure, so nothing
here changes the backend, opens a window, or is shown twice by Jupyter's
inline backend at the end of a cell.
"""
import io
import sys

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .files import write_atomically

__all__ = ['in_notebook', 'curves_figure', 'save_curves', 'Animator']

LINES = {'train loss': (0, '-'), 'train acc': (1, 'm--'), 'test acc': (1, 'g-.')}


def in_notebook():
    """Whether this code runs in a Jupyter kernel, where a live plot can be shown."""
    zmqshell = sys.modules.get('ipykernel.zmqshell')  # imported only by a kernel
    if zmqshell is None:
        return False
    from IPython import get_ipython
    return isinstance(get_ipython(), zmqshell.ZMQInteractiveShell)


def curves_figure(series, num_epochs):
    """A figure of ``series``, ``{'train loss': (xs, ys), 'train acc': ...,
    'test acc': ...}`` (names of ``LINES``; x in epochs, from 0 to ``num_epochs``)."""
    fig = Figure(figsize=(7, 2.6), layout='constrained')
    axes = fig.subplots(1, 2)
    for name, (xs, ys) in series.items():
        column, fmt = LINES[name]
        axes[column].plot(xs, ys, fmt, marker='.', label=name)  # dots: 1 epoch shows too
    for ax, ylabel in zip(axes, ('loss', 'accuracy')):
        ax.set_xlabel('epoch')
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, num_epochs)
        ax.grid(True)
        ax.legend()
    return fig


def _png(fig):
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def save_curves(history, path, num_epochs):
    """Write the per-epoch ``loss``, ``train_acc`` and ``test_acc`` of
    ``history`` (a dict of lists, as ``fit`` returns) as the PNG ``path``.
    The file is replaced atomically, so a viewer never reads half an image."""
    epochs = history['epoch']
    fig = curves_figure({'train loss': (epochs, history['loss']),
                         'train acc': (epochs, history['train_acc']),
                         'test acc': (epochs, history['test_acc'])}, num_epochs)
    write_atomically(path, _png(fig))


class Animator:
    """Curves that grow during training, redrawn in place in a notebook.

    Like d2l's ``Animator``, but it updates its own output (a display handle)
    instead of clearing the cell, so the per-epoch lines printed by ``fit``
    stay visible.
    """

    def __init__(self, num_epochs):
        self.num_epochs = num_epochs
        self.series = {name: ([], []) for name in LINES}
        self._handle = None

    def add(self, x, values):
        """Add points at epoch ``x`` (a float) for ``values``, a dict
        ``{line name: y}``, and redraw."""
        from IPython.display import Image, display
        for name, y in values.items():
            xs, ys = self.series[name]
            xs.append(x)
            ys.append(y)
        image = Image(data=_png(curves_figure(self.series, self.num_epochs)))
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
