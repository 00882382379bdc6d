"""Training: the ``fit`` loop.

``fit(net, train_iter, test_iter, num_epochs, lr)`` is d2l's ``train_ch6``
(section 7.6 of https://d2l.ai) grown up for real runs: SGD with momentum and
weight decay, a learning-rate schedule, label smoothing, data parallelism
over several devices with one ``Trainer``, mixed precision on GPUs; a tqdm
bar, a live plot in Jupyter and one line per epoch (``progress``); it
returns the history, a dict of per-epoch lists.  With ``out=DIR`` a run
survives Ctrl-C, ``kill`` and crashes: see ``checkpoint`` for the run
directory it writes.

The loop reads as d2l's ``train_ch13``: ``fit`` checks its inputs
(``checks``) and sets up, then for each epoch ``_train_epoch`` (the batches,
each one ``_train_step``, d2l's ``train_batch_ch13``) and ``_end_epoch``
(evaluate, record, save).  The learning rate of each step comes from
``schedules``, the run directory's files from ``checkpoint``.

Exact resumption: everything random is a function of ``(seed, epoch, batch)``.
``mx.random`` is reseeded before every step from it; the learning rate is a
function of the step; and loaders with an ``epoch(epoch, start_batch)``
method (``gluon_resnet.data``) yield batch k of an epoch without drawing the
earlier ones.  So on one device a run stopped anywhere and resumed ends with
the parameters and metrics of the unbroken run, bit for bit on the CPU at a
fixed thread count.  Other iterables, such as d2l's ``DataLoader``, train
fine but a resumed epoch skips its first batches of a *new* random order.
Several devices each update their own copy of the BatchNorm running
statistics from their slices; ``fit`` averages them at every epoch end, and
a mid-epoch checkpoint stores the average, so resuming there is exact for the
weights only.

Several processes, on one machine or several: ``fit(..., kvstore='dist_sync')``
in every worker of a parameter-server job; each trains on its shard of every
batch, and only worker 0 writes the run directory.  ``distributed`` tells how.
"""
import itertools
import math
import os
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.contrib import amp as mx_amp

from ._arrays import operators
from ._signals import CatchSignals
from .checkpoint import HISTORY_KEYS, RunDir, RunState
from .checks import check_amp, check_batch, check_labels, check_loaders, check_settings
from .devices import get_ctx
from .distributed import Workers
from .models import initialize, is_initialized
from .progress import Progress
from .schedules import step_schedule

__all__ = ['fit', 'evaluate_accuracy', 'NonFiniteLoss', 'Interrupted']


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or infinite: training diverged.

    ``epoch`` and ``batch`` count from 1; ``lr`` is the step's learning rate.
    """

    def __init__(self, message, epoch, batch, lr):
        super().__init__(message)
        self.epoch, self.batch, self.lr = epoch, batch, lr

    @classmethod
    def at(cls, loss, epoch, batch, num_batches, lr, run):
        """The error for a ``loss`` at step ``batch`` (from 0) of ``epoch`` (from 0)."""
        kept = (f'the last checkpoint, {run.last}, is kept' if run and os.path.exists(run.last)
                else 'no checkpoint was written')
        return cls(f'the loss became {loss} at epoch {epoch + 1}, batch {batch + 1} of '
                   f'{num_batches}, learning rate {lr:g}: training diverged (try a smaller '
                   f'learning rate); {kept}', epoch + 1, batch + 1, lr)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped ``fit`` after a step; ``checkpoint`` is the
    path of the checkpoint written then (``None`` without a run directory)."""

    def __init__(self, message, checkpoint):
        super().__init__(message)
        self.checkpoint = checkpoint

    @classmethod
    def at(cls, signal_name, epoch, batch, num_batches, run):
        """The exception at ``epoch`` epochs and ``batch`` batches of the next one done."""
        where = (f'after batch {batch} of {num_batches} of epoch {epoch + 1}' if batch
                 else f'after epoch {epoch}')
        saved = f'saved {run.last}' if run else 'no run directory: nothing saved'
        return cls(f'{signal_name} {where}; {saved}', run.last if run else None)


# Helpers

def _step_seed(seed, epoch, batch):
    """A 32-bit seed for ``mx.random`` that depends only on the step."""
    return int(np.random.SeedSequence([seed, epoch, batch]).generate_state(1)[0])


def _scalar(x):
    """A one-element mx.nd or mx.np array as a Python number (waits for it)."""
    return x.asnumpy().item()


def _num_correct(y_hat, y):
    """Correct predictions in ``y_hat : (N, num_classes)`` for labels ``y : (N,)``,
    as a one-element array on ``y_hat``'s device (not waited for)."""
    return (y_hat.argmax(axis=1).astype(y.dtype) == y).astype('float32').sum()


def _lagging(values):
    """Yield the items of ``values`` one step late, so the work that computes
    item k+1 is already queued when the caller waits for item k: MXNet's
    engine then runs it while Python prepares the next batch."""
    previous = None
    for value in values:
        if previous is not None:
            yield previous
        previous = value
    if previous is not None:
        yield previous


def _targets(y, num_classes, label_smoothing):
    """Labels ``y : (N,)`` as the loss wants them: as they are, or smoothed
    one-hot rows ``(N, num_classes)`` (Szegedy et al., https://arxiv.org/abs/1512.00567)."""
    if not label_smoothing:
        return y
    one_hot = operators().one_hot(y, num_classes)
    return one_hot * (1 - label_smoothing) + label_smoothing / num_classes


def _split(X, y, ctx):
    """``X : (N, ...)`` and ``y : (N,)`` cut into one slice per device of ``ctx``."""
    if len(X) < len(ctx):
        raise ValueError(f'a batch of {len(X)} images cannot be split over {len(ctx)} devices: '
                         'use a larger batch size or fewer devices')
    return (gluon.utils.split_and_load(X, ctx, even_split=False),
            gluon.utils.split_and_load(y, ctx, even_split=False))


def _batches(data_iter, epoch, start_batch):
    """The batches ``start_batch, ...`` of epoch ``epoch`` (see the module docstring)."""
    if hasattr(data_iter, 'epoch'):
        return data_iter.epoch(epoch, start_batch)
    return itertools.islice(data_iter, start_batch, None)


class _StopSignals(CatchSignals):
    """Inside ``with``: SIGINT and SIGTERM set ``signal`` (the first one's
    name) for the loop to stop after its step.  A second signal acts as usual
    (Ctrl-C twice aborts at once; checkpoints are atomic, so that is safe).
    ``deferred`` (several workers): the signal sets ``received``, and ``signal``
    is set only where the workers agree to stop (``distributed.Workers``)."""

    def __init__(self, deferred=False):
        super().__init__(once=True)
        self.deferred = deferred

    def __enter__(self):
        self.signal = None
        return super().__enter__()

    @property
    def first(self):
        """The name of the signal this process got (``'SIGINT'``), or ``None``."""
        return self.received[0].name if self.received else None

    def on_signal(self, signum):
        if not self.deferred:
            self.signal = signum.name
        print(f'\n{signum.name}: stopping after this step (send it again to abort now)',
              file=sys.stderr, flush=True)


def evaluate_accuracy(net, data_iter, ctx=None):
    """Fraction of the images of ``data_iter`` that ``net`` classifies right;
    batches are split over ``ctx`` (default: the devices of the net)."""
    correct, total = _count_correct(net, data_iter, ctx)
    return _fraction(correct, total)


def _count_correct(net, data_iter, ctx=None):
    """The images of ``data_iter`` that ``net`` classifies right, and all of them."""
    ctx = ctx or next(iter(net.collect_params().values())).list_ctx()

    def batch_counts():
        for X, y in data_iter:
            Xs, ys = _split(X, y, ctx[:len(X)])  # a last small batch may leave devices idle
            yield [_num_correct(net(X_), y_) for X_, y_ in zip(Xs, ys)], len(y)

    correct = total = 0
    for counts, size in _lagging(batch_counts()):
        correct += sum(round(_scalar(c)) for c in counts)
        total += size
    return correct, total


def _fraction(correct, total):
    if not total:
        raise ValueError('test_iter yielded no images: expected at least one batch')
    return correct / total


# The loop

class _Setup:
    """What every step needs: the net, its devices, trainer, loss and settings,
    the workers of the job (``distributed.Workers``)."""

    def __init__(self, net, ctx, trainer, settings, lr_of_step, amp, run, workers):
        self.net, self.ctx, self.trainer, self.amp, self.run = net, ctx, trainer, amp, run
        self.settings, self.lr_of_step, self.workers = settings, lr_of_step, workers
        self.num_batches = settings['num_batches']
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss(
            sparse_label=not settings['label_smoothing'])
        self.checked = False  # the first batch gets checked

    def lr_at(self, epoch, batch):
        """The learning rate of batch ``batch`` of epoch ``epoch`` (both from 0)."""
        return self.lr_of_step(epoch * self.num_batches + batch)


def _train_step(setup, X, y, epoch, batch):
    """One step of SGD on batch ``batch`` of epoch ``epoch`` (both from 0), as
    d2l's ``train_batch_ch13``: ``X``, ``y`` split over the devices, forward,
    loss, backward, update.  Returns the step's learning rate and per device
    the summed loss and the number of correct predictions, one-element arrays
    not waited for.  The first step checks the labels against the net's outputs."""
    lr = setup.lr_at(epoch, batch)
    setup.trainer.set_learning_rate(lr)
    mx.random.seed(_step_seed(setup.settings['seed'], epoch, batch))
    Xs, ys = _split(X, y, setup.ctx)
    smoothing = setup.settings['label_smoothing']
    with autograd.record():
        outputs = [setup.net(X_) for X_ in Xs]
        if not setup.checked:
            check_labels(y, outputs[0].shape[1])
            setup.checked = True
        losses = [setup.loss_fn(y_hat, _targets(y_, y_hat.shape[1], smoothing))
                  for y_hat, y_ in zip(outputs, ys)]
        if setup.amp:  # scale up, or small float16 gradients become 0; recorded, to differentiate
            with mx_amp.scale_loss(losses, setup.trainer) as scaled:
                autograd.backward(scaled)
    if not setup.amp:
        autograd.backward(losses)
    setup.trainer.step(len(X) * setup.workers.num_workers)  # the global batch
    return (lr, [l.sum() for l in losses],
            [_num_correct(y_hat, y_) for y_hat, y_ in zip(outputs, ys)])


def _train_epoch(setup, train_iter, state, progress, stop):
    """Train on the batches of epoch ``state.epoch`` from ``state.batch`` on,
    adding to ``state.sums``, until the epoch ends or ``stop`` is signalled.

    Python reads a step's loss one step late (``_lagging``), so preparing the
    next batch overlaps this one's compute; a non-finite loss is still found
    at its own step, before anything is saved."""
    epoch, sums = state.epoch, state.sums
    progress.start_epoch(epoch, state.batch)
    tick = time.perf_counter()
    for batch, lr, size, losses, corrects in _lagging(_queued_steps(setup, train_iter, state,
                                                                    stop)):
        loss_sum = sum(_scalar(l) for l in losses)
        if not math.isfinite(loss_sum):  # found before the update is saved anywhere
            raise NonFiniteLoss.at(loss_sum / size, epoch, batch, setup.num_batches, lr,
                                   setup.run)
        state.batch = batch + 1
        sums['loss'] += loss_sum
        sums['correct'] += sum(round(_scalar(c)) for c in corrects)
        sums['images'] += size
        sums['seconds'] += time.perf_counter() - tick
        tick = time.perf_counter()
        progress.step(state.batch, sums)
    progress.close_bar()


def _queued_steps(setup, train_iter, state, stop):
    """Queue the training steps of the epoch from ``state.batch`` on, one per
    batch, until ``stop`` is signalled; yields ``(batch, lr, images, losses,
    corrects)`` per step, the last two on the devices (see ``_train_step``)."""
    for batch, data in enumerate(_batches(train_iter, state.epoch, state.batch), state.batch):
        X, y = data if setup.checked else check_batch(data)
        lr, losses, corrects = _train_step(setup, X, y, state.epoch, batch)
        yield batch, lr, len(X), losses, corrects
        if setup.workers.agree_to_stop(stop):
            return


def _end_epoch(setup, test_iter, state, progress, stop):
    """Evaluate, record the epoch in the history, say it, save the run.  With
    several workers, every number is summed over them (``distributed``)."""
    epoch, sums = state.epoch, state.sums
    setup.workers.average_running_stats(setup.net)  # over the devices and the workers
    test_counts = _count_correct(setup.net, test_iter, setup.ctx)
    loss, correct, images, test_correct, test_images = setup.workers.epoch_totals(
        sums, test_counts, stop)
    record = dict(epoch=epoch + 1, loss=loss / images, train_acc=correct / images,
                  test_acc=_fraction(test_correct, test_images),
                  img_per_s=images / sums['seconds'],
                  lr=setup.lr_at(epoch, setup.num_batches - 1))
    for key in HISTORY_KEYS:
        state.history[key].append(record[key])
    improved = record['test_acc'] > state.best_test_acc
    state.best_test_acc = max(record['test_acc'], state.best_test_acc)
    state.next_epoch()
    progress.end_epoch(record)
    if setup.run:
        setup.run.end_epoch(setup.net, setup.trainer, state, improved)


def _start(net, ctx, settings, lr_of_step, run, resume, args, workers):
    """The ``RunState`` and trainer of a new run, or of the run resumed from
    ``run``; the net is initialized or loaded, on ``ctx``; worker 0 alone writes."""
    if resume and not run.has_checkpoint() and os.path.isfile(
            os.path.join(run.path, 'config.json')):
        resume = False  # stopped before its first checkpoint: resuming is starting anew
    state = run.resume_state(settings) if resume else RunState(settings['num_batches'])
    if resume and workers.rank:  # a checkpoint's running sums are the job's: worker 0 has them
        state.sums = dict.fromkeys(state.sums, 0)
    if not is_initialized(net):
        initialize(net, settings['seed'], ctx)  # a resumed run loads its parameters over these
    if any(p.list_ctx() != ctx for p in net.collect_params().values()):
        net.collect_params().reset_ctx(ctx)
    trainer = workers.trainer(net.collect_params(), {
        'learning_rate': settings['lr'], 'momentum': settings['momentum'], 'wd': settings['wd']},
        lr_of_step, state.steps_done)
    if resume:
        run.resume(net, trainer)
    elif run and workers.rank == 0:
        run.start(settings, net, args)
    return state, trainer


def fit(net, train_iter, test_iter, num_epochs, lr, ctx=None, *, schedule='cosine',
        warmup_epochs=0, wd=5e-4, momentum=0.9, label_smoothing=0.0, hybridize=True, seed=0,
        amp=False, out=None, resume=False, kvstore='device'):
    """Train ``net`` with SGD and return the history (see the module docstring).

    Parameters
    ----------
    net : gluon.Block
        ``(N, C, H, W) -> (N, num_classes)``.  If not initialized yet, it is,
        with ``models.initialize(net, seed)`` (He et al.'s normal init).
    train_iter, test_iter : iterables of ``(X, y)``
        ``X : (N, C, H, W)`` float32, ``y : (N,)`` integer labels, mx.nd or mx.np
        arrays on any device.  ``len(train_iter)`` is the batches per epoch.
    num_epochs : int
    lr : float
        Learning rate at the top of the schedule.
    ctx : None, str, mx.Context or list of them, default None
        Devices: ``None`` a GPU if MXNet sees one, else the CPU; ``'gpu:0,1'``
        etc. as ``devices.get_ctx``.  Batches are split across the devices.
    schedule : {'constant', 'step', 'cosine'}, default 'cosine'
        How the learning rate changes at every step (``schedules.learning_rate``).
    warmup_epochs : int, default 0
        Epochs of linear warmup at the start.
    wd : float, default 5e-4
        Weight decay (L2 penalty ``wd/2 * |w|^2``).
    momentum : float, default 0.9
    label_smoothing : float, default 0
        Train on targets ``(1 - eps) * one_hot + eps / num_classes``.
    hybridize : bool, default True
        Compile the net into a static graph with static memory (faster;
        the same results).
    seed : int, default 0
        Seeds the initialization and every step's ``mx.random``.  The data
        order is the loader's business (``load_data(..., seed=)``).
    amp : bool, default False
        float16 mixed precision with ``mxnet.contrib.amp``: GPUs and the
        legacy ``mx.nd`` API only.
    out : str or checkpoint.RunDir, default None
        Run directory for config, metrics, curves and checkpoints; ``None``
        writes nothing.  Its config.json records this function's settings
        and, as ``args``, the devices, ``hybridize`` and ``amp``, or the
        ``args`` of a ``RunDir(path, args)`` (the CLI passes its other flags).
    resume : bool, default False
        Continue the run in ``out`` from ``last.ckpt``, to ``num_epochs``;
        every other setting must be the run's too (``ValueError`` otherwise).
    kvstore : str or mx.kv.KVStore, default 'device'
        How gradients are summed: ``'device'`` or ``'local'`` over the devices
        of this process (``gluon.Trainer``'s kvstore); ``'dist_sync'``,
        ``'dist_device_sync'`` or ``'dist_async'`` over the workers of a
        parameter-server job, started by ``python -m gluon_resnet.launch``
        (``distributed``).  Then ``train_iter``'s batches are the global ones
        and each worker trains on its part of every one
        (``train_iter.shard(rank, num_workers)``), the history sums over the
        workers, and worker 0 alone writes ``out``.

    Returns
    -------
    dict of lists, one item per epoch: ``epoch`` (from 1), ``loss`` (mean
    training loss), ``train_acc``, ``test_acc``, ``img_per_s`` (training
    images per second), ``lr`` (at the epoch's last step).

    Raises ``NonFiniteLoss`` if the loss becomes NaN or infinite (before that
    step's update, so the checkpoints stay good), ``Interrupted`` after SIGINT
    or SIGTERM (with a checkpoint in ``out``).
    """
    arguments = dict(num_epochs=num_epochs, lr=lr, schedule=schedule,
                     warmup_epochs=warmup_epochs, wd=wd, momentum=momentum,
                     label_smoothing=label_smoothing, seed=seed)
    check_settings(**arguments)
    ctx = get_ctx(ctx)
    check_amp(amp, ctx)
    check_loaders(train_iter, test_iter)
    num_batches = len(train_iter)
    if resume and not out:
        raise ValueError('resume=True needs the run directory out')
    run = out if isinstance(out, RunDir) or out is None else RunDir(out)
    workers = Workers(kvstore)
    train_iter, test_iter = workers.shard(train_iter, 'train_iter'), workers.shard(test_iter, '')
    settings = dict(arguments, num_batches=num_batches, num_workers=workers.num_workers)
    lr_of_step = step_schedule(settings)
    args = {'ctx': [str(c) for c in ctx], 'hybridize': hybridize, 'amp': amp}  # beside settings
    state, trainer = _start(net, ctx, settings, lr_of_step, run, resume, args, workers)
    # static_alloc: the graph keeps its memory from step to step.  Not static_shape: after a
    # test pass of another batch shape, MXNet 1.9.1 then trains differently (a resumed run
    # no longer equals the unbroken one: test_interrupted_run_resumes_exactly).
    net.hybridize(active=hybridize, static_alloc=True)
    if amp:
        mx_amp.init()
        mx_amp.init_trainer(trainer)
    writer = run if workers.rank == 0 else None
    setup = _Setup(net, ctx, trainer, settings, lr_of_step, amp, writer, workers)
    progress = Progress(num_epochs, num_batches)
    with _StopSignals(deferred=workers.distributed) as stop:
        while state.epoch < num_epochs:
            _train_epoch(setup, train_iter, state, progress, stop)
            if stop.signal and state.batch < num_batches:  # stopped in mid-epoch
                state.sums = workers.job_sums(state.sums)  # as resuming counts them
                if writer:
                    writer.save_last(net, trainer, state)
                raise Interrupted.at(stop.signal, state.epoch, state.batch, num_batches, run)
            _end_epoch(setup, test_iter, state, progress, stop)
            if stop.signal:
                raise Interrupted.at(stop.signal, state.epoch, 0, num_batches, run)
    return state.history
