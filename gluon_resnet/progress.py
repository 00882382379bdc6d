"""What a person sees while ``fit`` runs: a bar, a live plot, a line per epoch.

In a terminal a tqdm bar on stderr counts the batches of the epoch (nothing
when stderr is not a terminal); in Jupyter the curves of ``plotting.Animator``
grow ``PLOTS_PER_EPOCH`` times an epoch, as d2l's ``train_ch6``; everywhere,
one line per epoch on stdout: ``epoch 3/8  loss 0.123  train acc 0.961  test
acc 0.983  470 img/s``.
"""
import sys

from tqdm import tqdm

from .plotting import Animator, in_notebook

__all__ = ['Progress', 'epoch_line', 'PLOTS_PER_EPOCH']

PLOTS_PER_EPOCH = 5  # as d2l's train_ch6


def epoch_line(record, num_epochs):
    """The line printed after an epoch, from its ``record`` (one row of the history)."""
    return (f"epoch {record['epoch']}/{num_epochs}  loss {record['loss']:.3f}  "
            f"train acc {record['train_acc']:.3f}  test acc {record['test_acc']:.3f}  "
            f"{record['img_per_s']:.0f} img/s")


class Progress:
    """The bar, the live plot and the epoch lines of one training run."""

    def __init__(self, num_epochs, num_batches):
        self.num_epochs, self.num_batches = num_epochs, num_batches
        self.animator = Animator(num_epochs) if in_notebook() else None
        self.bar = None
        self._plot_every = max(1, num_batches // PLOTS_PER_EPOCH)

    def start_epoch(self, epoch, batch):
        """Epoch ``epoch`` (from 0) begins, or resumes at batch ``batch``."""
        self.epoch = epoch
        self.bar = tqdm(total=self.num_batches, initial=batch, unit='batch', leave=False,
                        desc=f'epoch {epoch + 1}/{self.num_epochs}', file=sys.stderr,
                        disable=None)

    def step(self, batch, sums):
        """Batch ``batch`` (from 1) is done; ``sums`` are the epoch's running sums."""
        self.bar.update()
        self.bar.set_postfix(loss=f"{sums['loss'] / sums['images']:.3f}", refresh=False)
        if self.animator and (batch % self._plot_every == 0 or batch == self.num_batches):
            self.animator.add(self.epoch + batch / self.num_batches,
                              {'train loss': sums['loss'] / sums['images'],
                               'train acc': sums['correct'] / sums['images']})

    def close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def end_epoch(self, record):
        """The epoch's ``record`` (``fit``'s history row) is complete: say it."""
        self.close_bar()
        print(epoch_line(record, self.num_epochs), flush=True)
        if self.animator:
            self.animator.add(record['epoch'], {'test acc': record['test_acc']})
