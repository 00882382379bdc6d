"""Training: the ``fit`` loop, learning-rate schedules, run directories, checkpoints.

``fit(net, train_iter, test_iter, num_epochs, lr)`` is d2l's ``train_ch6``
(section 7.6 of https://d2l.ai) grown up for real runs: SGD with momentum and
weight decay, a learning-rate schedule, label smoothing, data parallelism
over several devices with one ``Trainer``, mixed precision on GPUs; a tqdm
bar on stderr in a terminal, a live plot in Jupyter, one line per epoch on
stdout; it returns the history, a dict of per-epoch lists.

With ``out=DIR`` a run survives Ctrl-C, ``kill`` and crashes.  The run directory::

    config.json     the run's arguments and the Python, MXNet and numpy versions
    metrics.jsonl   one JSON object per epoch: epoch, loss, train_acc, test_acc,
                    img_per_s, lr (rewritten from the history every epoch)
    curves.png      loss and accuracies against epochs, redrawn every epoch
    last.ckpt       where training is: written after every epoch, and after the
                    current step when SIGINT or SIGTERM arrives
    best.ckpt       the state after the epoch of highest test accuracy (with no
                    separate validation set, an optimistic choice)

A checkpoint is a zip archive, as PyTorch's, of ``model.params``
(``net.save_parameters``), ``trainer.states`` (``trainer.save_states``:
momentum and update counts), ``state.json`` (epochs and batches done, the
epoch's running sums, the history, the settings) and, stored last,
``manifest.json`` with the sha256 of each.  It is built in memory, written to
a temporary file, flushed to disk and renamed over the old one
(``os.replace``): a crash leaves the old checkpoint or the new one, never a
mix.  Reading one checks every checksum and names the file if one differs.

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
"""
import hashlib
import io
import itertools
import json
import math
import os
import platform
import signal
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.contrib import amp as mx_amp
from mxnet.util import is_np_array
from tqdm import tqdm

from ._threads import NUM_THREADS
from .devices import get_ctx
from .plotting import Animator, in_notebook, save_curves

__all__ = ['fit', 'evaluate_accuracy', 'learning_rate', 'check_settings', 'save_checkpoint',
           'load_checkpoint', 'read_checkpoint', 'read_config', 'NonFiniteLoss', 'Interrupted',
           'SCHEDULES', 'HISTORY_KEYS', 'RUN_FILES']

SCHEDULES = ('constant', 'step', 'cosine')
HISTORY_KEYS = ('epoch', 'loss', 'train_acc', 'test_acc', 'img_per_s', 'lr')
RUN_FILES = ('config.json', 'metrics.jsonl', 'curves.png', 'last.ckpt', 'best.ckpt')
CHECKPOINT_FILES = ('model.params', 'trainer.states', 'state.json')
PLOTS_PER_EPOCH = 5  # as d2l's train_ch6
# He et al. 2015 (https://arxiv.org/abs/1502.01852): N(0, 2/fan_in) keeps the
# variance of activations constant through ReLU layers; with Xavier's 1/fan_avg
# it halves at every layer.
INIT = mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or infinite: training diverged.

    ``epoch`` and ``batch`` count from 1; ``lr`` is the step's learning rate.
    """

    def __init__(self, message, epoch, batch, lr):
        super().__init__(message)
        self.epoch, self.batch, self.lr = epoch, batch, lr

    @classmethod
    def at(cls, loss, epoch, batch, num_batches, lr, checkpoint):
        """The error for a ``loss`` at step ``batch`` (from 0) of ``epoch`` (from 0)."""
        kept = (f'the last checkpoint, {checkpoint}, is kept' if checkpoint
                and os.path.exists(checkpoint) else 'no checkpoint was written')
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
    def at(cls, signal_name, epoch, batch, num_batches, checkpoint):
        """The exception at ``epoch`` epochs and ``batch`` batches of the next one done."""
        where = (f'after batch {batch} of {num_batches} of epoch {epoch + 1}' if batch
                 else f'after epoch {epoch}')
        saved = f'saved {checkpoint}' if checkpoint else 'no run directory: nothing saved'
        return cls(f'{signal_name} {where}; {saved}', checkpoint)


# Helpers

def learning_rate(step, num_steps, lr, schedule='cosine', warmup_steps=0):
    """The learning rate of step ``step`` (from 0) of ``num_steps``.

    ``constant``: ``lr``.  ``step``: ``lr``, then ``lr/10`` from 50% of the
    steps and ``lr/100`` from 75%, as the CIFAR runs of He et al. 2015
    (divided at 32k and 48k of 64k iterations).  ``cosine``: half a cosine from
    ``lr`` down to 0 over the steps after the warmup (Loshchilov and Hutter,
    https://arxiv.org/abs/1608.03983).  Warmup: the first ``warmup_steps``
    steps rise linearly to ``lr``, from ``lr / warmup_steps`` (Goyal et al.,
    https://arxiv.org/abs/1706.02677: large early steps destabilise training).
    """
    factor = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    if schedule == 'step':
        factor *= 0.1 ** ((step >= 0.5 * num_steps) + (step >= 0.75 * num_steps))
    elif schedule == 'cosine':
        progress = max(0, step - warmup_steps) / max(1, num_steps - warmup_steps)
        factor *= 0.5 * (1 + math.cos(math.pi * progress))
    elif schedule != 'constant':
        raise ValueError(f'schedule must be one of {SCHEDULES}, got {schedule!r}')
    return lr * factor


def _is_number(value):
    return not isinstance(value, bool) and isinstance(value, (int, float)) \
        and math.isfinite(value)


def _is_integer(value):
    return not isinstance(value, bool) and isinstance(value, int)


def check_settings(num_epochs, lr, schedule='cosine', warmup_epochs=0, wd=5e-4, momentum=0.9,
                   label_smoothing=0.0, seed=0):
    """Raise ``ValueError`` naming the first bad training setting of ``fit``."""
    number, integer = _is_number, _is_integer
    checks = [('num_epochs', num_epochs, integer(num_epochs) and num_epochs > 0,
               'a positive integer'),
              ('lr', lr, number(lr) and lr > 0, 'a positive number'),
              ('schedule', schedule, schedule in SCHEDULES, f'one of {SCHEDULES}'),
              ('warmup_epochs', warmup_epochs,
               integer(warmup_epochs) and 0 <= warmup_epochs < num_epochs,
               'an integer from 0 to num_epochs - 1'),
              ('wd', wd, number(wd) and wd >= 0, 'a number >= 0'),
              ('momentum', momentum, number(momentum) and 0 <= momentum < 1, 'in [0, 1)'),
              ('label_smoothing', label_smoothing,
               number(label_smoothing) and 0 <= label_smoothing < 1, 'in [0, 1)'),
              ('seed', seed, integer(seed) and seed >= 0, 'a non-negative integer')]
    for name, value, ok, expected in checks:
        if not ok:
            raise ValueError(f'{name} must be {expected}, got {value!r}')


def _step_seed(seed, epoch, batch):
    """A 32-bit seed for ``mx.random`` that depends only on the step."""
    return int(np.random.SeedSequence([seed, epoch, batch]).generate_state(1)[0])


def _scalar(x):
    """A one-element mx.nd or mx.np array as a Python number (waits for it)."""
    return x.asnumpy().item()


def _num_correct(y_hat, y):
    """Correct predictions in ``y_hat : (N, num_classes)`` for labels ``y : (N,)``."""
    return round(_scalar((y_hat.argmax(axis=1).astype(y.dtype) == y).astype('float32').sum()))


def _targets(y, num_classes, label_smoothing):
    """Labels ``y : (N,)`` as the loss wants them: as they are, or smoothed
    one-hot rows ``(N, num_classes)`` (Szegedy et al., https://arxiv.org/abs/1512.00567)."""
    if not label_smoothing:
        return y
    one_hot = mx.npx.one_hot(y, num_classes) if is_np_array() else mx.nd.one_hot(y, num_classes)
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


def _zero_sums():
    """The running sums of an epoch: summed loss, correct predictions, images, seconds."""
    return dict(loss=0.0, correct=0, images=0, seconds=0.0)


def _is_initialized(net):
    try:
        for param in net.collect_params().values():
            param.list_ctx()  # raises for a parameter that was never initialized
    except RuntimeError:
        return False
    return True


def _average_running_stats(net):
    """Give every device the mean of the BatchNorm running statistics, which
    each device updated from its own slices of the batches."""
    for param in net.collect_params().values():
        copies = param.list_data()
        if param.grad_req == 'null' and len(copies) > 1:
            param.set_data(sum(c.copyto(copies[0].ctx) for c in copies) / len(copies))


def _write_atomically(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary file, flushed to
    disk before it replaces ``path``: readers see the old file or the new one."""
    temporary = f'{path}.tmp'
    with open(temporary, 'wb') as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _versions():
    return {'python': platform.python_version(), 'mxnet': mx.__version__,
            'numpy': np.__version__}


class _StopSignals:
    """Inside ``with``: SIGINT and SIGTERM set ``signal`` (the first one's
    name) for the loop to stop after its step.  A second signal acts as usual
    (Ctrl-C twice aborts at once; checkpoints are atomic, so that is safe)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.signal, self._previous = None, {}
        if threading.current_thread() is threading.main_thread():  # the only one allowed
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        self.signal = signal.Signals(signum).name
        print(f'\n{self.signal}: stopping after this step (send it again to abort now)',
              file=sys.stderr, flush=True)
        self._restore()

    def _restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def __exit__(self, *exc_info):
        self._restore()


# Checkpoints and run directories

def save_checkpoint(path, net, trainer, state):
    """Write ``net``'s parameters, ``trainer``'s states and the JSON-able dict
    ``state`` to the checkpoint ``path``, atomically; returns its bytes."""
    with tempfile.TemporaryDirectory() as folder:
        net.save_parameters(os.path.join(folder, 'model.params'))
        trainer.save_states(os.path.join(folder, 'trainer.states'))
        files = {name: Path(folder, name).read_bytes() for name in CHECKPOINT_FILES[:2]}
    files['state.json'] = json.dumps(state).encode()
    manifest = {'sha256': {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as archive:  # stored: parameters barely compress
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr('manifest.json', json.dumps(manifest, indent=1))
    data = buffer.getvalue()
    _write_atomically(path, data)
    return data


def read_checkpoint(path):
    """The files in checkpoint ``path``, ``{name: bytes}``, each checked against
    the sha256 of the manifest.  ``ValueError`` naming ``path`` if it is
    truncated or corrupted, ``FileNotFoundError`` if missing."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'no checkpoint {path}')
    try:
        with zipfile.ZipFile(path) as archive:
            digests = json.loads(archive.read('manifest.json'))['sha256']
            files = {name: archive.read(name) for name in CHECKPOINT_FILES}
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as error:
        raise ValueError(f'checkpoint {path} is truncated or corrupted ({error}); '
                         'nothing was changed') from None
    for name, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != digests.get(name):
            raise ValueError(f'checkpoint {path} is corrupted: {name} has sha256 {digest}, '
                             f'its manifest says {digests.get(name)}; nothing was changed')
    return files


def _load_params(net, data, ctx, path):
    with tempfile.TemporaryDirectory() as folder:
        filename = os.path.join(folder, 'model.params')
        with open(filename, 'wb') as file:
            file.write(data)
        try:
            net.load_parameters(filename, ctx=ctx)
        except (AssertionError, ValueError, mx.MXNetError) as error:
            reason = str(error).strip().splitlines()[0]
            raise ValueError(f'checkpoint {path} does not fit this net: {reason}') from None


def _load_states(trainer, data):
    with tempfile.TemporaryDirectory() as folder:
        filename = os.path.join(folder, 'trainer.states')
        with open(filename, 'wb') as file:
            file.write(data)
        trainer.load_states(filename)


def load_checkpoint(path, net, ctx=None):
    """Load the parameters of checkpoint ``path`` (e.g. ``runs/x/best.ckpt``)
    into ``net`` on ``ctx`` (default: the CPU) and return its state dict."""
    files = read_checkpoint(path)
    _load_params(net, files['model.params'], ctx or mx.cpu(), path)
    return json.loads(files['state.json'])


def read_config(run_dir):
    """The dict of ``run_dir/config.json``: ``args`` (the run's settings),
    ``versions``, ``omp_num_threads``."""
    path = os.path.join(run_dir, 'config.json')
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f'no run directory {run_dir}')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{run_dir} is not a run directory: it has no config.json')
    with open(path) as file:
        try:
            config = json.load(file)
        except ValueError as error:
            raise ValueError(f'{path} is corrupted: {error}') from None
    if not isinstance(config, dict) or not isinstance(config.get('args'), dict):
        raise ValueError(f'{path} is corrupted: expected an object with an "args" object')
    return config


def _start_run(out, config):
    """Create the run directory ``out`` with its ``config.json``, refusing to
    overwrite the files of another run."""
    taken = [name for name in RUN_FILES if os.path.exists(os.path.join(out, name))]
    if taken:
        raise ValueError(f'{out} already holds a run ({", ".join(taken)}): resume it or '
                         'choose another directory')
    os.makedirs(out, exist_ok=True)
    record = {'args': config, 'versions': _versions(), 'omp_num_threads': NUM_THREADS}
    _write_atomically(os.path.join(out, 'config.json'), json.dumps(record, indent=2).encode())


def _check_resumable(state, settings, num_batches, path):
    """Raise ``ValueError`` unless the checkpoint ``state`` was saved with these settings."""
    for name, value in settings.items():
        if state['settings'][name] != value:
            raise ValueError(f'{path} was trained with {name}={state["settings"][name]!r}, '
                             f'not {value!r}: resume with the settings of the run')
    if state['num_batches'] != num_batches:
        raise ValueError(f'{path} was trained with {state["num_batches"]} batches per epoch, '
                         f'train_iter has {num_batches}: resume with the same data and batch size')


def _write_epoch_files(out, history, num_epochs):
    """Rewrite metrics.jsonl (from the whole history, so it always matches the
    checkpoint's, even after a crash between the two) and curves.png."""
    rows = [{key: history[key][i] for key in HISTORY_KEYS} for i in range(len(history['epoch']))]
    text = ''.join(json.dumps(row) + '\n' for row in rows)
    _write_atomically(os.path.join(out, 'metrics.jsonl'), text.encode())
    save_curves(history, os.path.join(out, 'curves.png'), num_epochs)


# The loop

def _forward_backward(net, loss_fn, Xs, ys, label_smoothing, amp_trainer):
    """Forward and backward pass of the slices ``Xs`` (one per device) with
    labels ``ys``; returns the summed loss and the number of correct predictions."""
    with autograd.record():
        outputs = [net(X) for X in Xs]
        losses = [loss_fn(y_hat, _targets(y, y_hat.shape[1], label_smoothing))
                  for y_hat, y in zip(outputs, ys)]
        if amp_trainer:  # scale up, or small float16 gradients become 0; recorded, to differentiate
            with mx_amp.scale_loss(losses, amp_trainer) as scaled:
                autograd.backward(scaled)
    if not amp_trainer:
        autograd.backward(losses)
    return (sum(_scalar(l.sum()) for l in losses),
            sum(_num_correct(y_hat, y) for y_hat, y in zip(outputs, ys)))


def evaluate_accuracy(net, data_iter, ctx=None):
    """Fraction of the images of ``data_iter`` that ``net`` classifies right;
    batches are split over ``ctx`` (default: the devices of the net)."""
    ctx = ctx or next(iter(net.collect_params().values())).list_ctx()
    correct = total = 0
    for X, y in data_iter:
        Xs, ys = _split(X, y, ctx[:len(X)])  # a last small batch may leave devices idle
        correct += sum(_num_correct(net(X_), y_) for X_, y_ in zip(Xs, ys))
        total += len(y)
    return correct / total


def _epoch_line(record, num_epochs):
    return (f"epoch {record['epoch']}/{num_epochs}  loss {record['loss']:.3f}  "
            f"train acc {record['train_acc']:.3f}  test acc {record['test_acc']:.3f}  "
            f"{record['img_per_s']:.0f} img/s")


def fit(net, train_iter, test_iter, num_epochs, lr, ctx=None, *, schedule='cosine',
        warmup_epochs=0, wd=5e-4, momentum=0.9, label_smoothing=0.0, hybridize=True, seed=0,
        amp=False, out=None, resume=False, config=None):
    """Train ``net`` with SGD and return the history (see the module docstring).

    Parameters
    ----------
    net : gluon.Block
        ``(N, C, H, W) -> (N, num_classes)``.  If not initialized yet, it is,
        with He et al.'s normal init, from ``mx.random.seed(seed)``.
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
        How the learning rate changes at every step (``learning_rate``).
    warmup_epochs : int, default 0
        Epochs of linear warmup at the start.
    wd : float, default 5e-4
        Weight decay (L2 penalty ``wd/2 * |w|^2``).
    momentum : float, default 0.9
    label_smoothing : float, default 0
        Train on targets ``(1 - eps) * one_hot + eps / num_classes``.
    hybridize : bool, default True
        Compile the net into a static graph (faster; same results).
    seed : int, default 0
        Seeds the initialization and every step's ``mx.random``.  The data
        order is the loader's business (``load_data(..., seed=)``).
    amp : bool, default False
        float16 mixed precision with ``mxnet.contrib.amp``: GPUs and the
        legacy ``mx.nd`` API only.
    out : str, default None
        Run directory for config, metrics, curves and checkpoints; ``None``
        writes nothing.
    resume : bool, default False
        Continue the run in ``out`` from ``last.ckpt``, to ``num_epochs``;
        every other setting must be the run's too (``ValueError`` otherwise).
    config : dict, default None
        The settings to record as ``args`` in ``out/config.json`` (the CLI
        passes all its arguments); default: this function's.

    Returns
    -------
    dict of lists, one item per epoch: ``epoch`` (from 1), ``loss`` (mean
    training loss), ``train_acc``, ``test_acc``, ``img_per_s`` (training
    images per second), ``lr`` (at the epoch's last step).

    Raises ``NonFiniteLoss`` if the loss becomes NaN or infinite (before that
    step's update, so the checkpoints stay good), ``Interrupted`` after SIGINT
    or SIGTERM (with a checkpoint in ``out``).
    """
    settings = dict(num_epochs=num_epochs, lr=lr, schedule=schedule,
                    warmup_epochs=warmup_epochs, wd=wd, momentum=momentum,
                    label_smoothing=label_smoothing, seed=seed)
    check_settings(**settings)
    ctx = get_ctx(ctx)
    if amp and any(c.device_type != 'gpu' for c in ctx):
        raise ValueError('amp (float16 mixed precision) needs GPUs: MXNet has no float16 '
                         f'training kernels for the CPU; got {ctx}')
    num_batches = len(train_iter)
    if num_batches < 1:
        raise ValueError('train_iter has no batches')
    last = os.path.join(out, 'last.ckpt') if out else None

    # Setup: a new run, or the state of the one in `out`; nothing is written
    # before every check has passed.
    if resume:
        if not out:
            raise ValueError('resume=True needs the run directory out')
        files = read_checkpoint(last)
        state = json.loads(files['state.json'])
        _check_resumable(state, settings, num_batches, last)
        _load_params(net, files['model.params'], ctx, last)
    else:
        state = dict(epoch=0, batch=0, sums=_zero_sums(), history={k: [] for k in HISTORY_KEYS},
                     best_test_acc=-1.0, num_batches=num_batches, settings=settings)
        if out:
            _start_run(out, config or {**settings, 'ctx': [str(c) for c in ctx],
                                       'hybridize': hybridize, 'amp': amp})
        if not _is_initialized(net):
            mx.random.seed(seed)
            net.initialize(INIT, ctx=ctx)
    if any(p.list_ctx() != ctx for p in net.collect_params().values()):
        net.collect_params().reset_ctx(ctx)
    net.hybridize(active=hybridize)
    trainer = gluon.Trainer(net.collect_params(), 'sgd',
                            {'learning_rate': lr, 'momentum': momentum, 'wd': wd})
    if resume:
        _load_states(trainer, files['trainer.states'])
    if amp:
        mx_amp.init()
        mx_amp.init_trainer(trainer)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=not label_smoothing)
    animator = Animator(num_epochs) if in_notebook() else None
    num_steps, warmup_steps = num_epochs * num_batches, warmup_epochs * num_batches
    history = state['history']

    with _StopSignals() as stop:
        while state['epoch'] < num_epochs:
            epoch, sums = state['epoch'], state['sums']
            bar = tqdm(total=num_batches, initial=state['batch'], unit='batch', leave=False,
                       desc=f'epoch {epoch + 1}/{num_epochs}', file=sys.stderr, disable=None)
            tick = time.perf_counter()
            for X, y in _batches(train_iter, epoch, state['batch']):
                step_lr = learning_rate(epoch * num_batches + state['batch'], num_steps, lr,
                                        schedule, warmup_steps)
                trainer.set_learning_rate(step_lr)
                mx.random.seed(_step_seed(seed, epoch, state['batch']))
                Xs, ys = _split(X, y, ctx)
                loss_sum, correct = _forward_backward(net, loss_fn, Xs, ys, label_smoothing,
                                                      trainer if amp else None)
                if not math.isfinite(loss_sum):  # checked before the update spoils the net
                    raise NonFiniteLoss.at(loss_sum / len(X), epoch, state['batch'],
                                           num_batches, step_lr, last)
                trainer.step(len(X))
                state['batch'] += 1
                sums['loss'] += loss_sum
                sums['correct'] += correct
                sums['images'] += len(X)
                sums['seconds'] += time.perf_counter() - tick
                tick = time.perf_counter()
                bar.update()
                bar.set_postfix(loss=f"{sums['loss'] / sums['images']:.3f}", refresh=False)
                if animator and (state['batch'] % max(1, num_batches // PLOTS_PER_EPOCH) == 0
                                 or state['batch'] == num_batches):
                    animator.add(epoch + state['batch'] / num_batches,
                                 {'train loss': sums['loss'] / sums['images'],
                                  'train acc': sums['correct'] / sums['images']})
                if stop.signal:
                    break
            bar.close()
            if stop.signal and state['batch'] < num_batches:  # stopped in mid-epoch
                if out:
                    save_checkpoint(last, net, trainer, state)
                raise Interrupted.at(stop.signal, epoch, state['batch'], num_batches, last)

            # End of the epoch: evaluate, record, save.
            if len(ctx) > 1:
                _average_running_stats(net)
            record = dict(epoch=epoch + 1, loss=sums['loss'] / sums['images'],
                          train_acc=sums['correct'] / sums['images'],
                          test_acc=evaluate_accuracy(net, test_iter, ctx),
                          img_per_s=sums['images'] / sums['seconds'],
                          lr=learning_rate((epoch + 1) * num_batches - 1, num_steps, lr,
                                           schedule, warmup_steps))
            for key in HISTORY_KEYS:
                history[key].append(record[key])
            print(_epoch_line(record, num_epochs), flush=True)
            improved = record['test_acc'] > state['best_test_acc']
            state.update(epoch=epoch + 1, batch=0, sums=_zero_sums(),
                         best_test_acc=max(record['test_acc'], state['best_test_acc']))
            if out:
                _write_epoch_files(out, history, num_epochs)
                data = save_checkpoint(last, net, trainer, state)
                if improved:
                    _write_atomically(os.path.join(out, 'best.ckpt'), data)
            if animator:
                animator.add(epoch + 1, {'test acc': record['test_acc']})
            if stop.signal:
                raise Interrupted.at(stop.signal, epoch + 1, 0, num_batches, last)
    return history
