"""Run directories and checkpoints: what a run writes, and how it is read back.

A run directory::

    config.json     ``settings``: what ``fit`` trains with (``RUN_SETTINGS``), the
                    record a resumed run is checked against; ``args``: the rest of
                    the caller's account of the run (the CLI: its other flags, such
                    as model, data, batch size, devices); ``model``: the
                    registry name and arguments of a net of ``models.get_model``;
                    ``data``: the data's facts a prediction needs (classes, image
                    shape, per-channel mean and std, when the run was given them);
                    the Python, MXNet and numpy versions and the thread count
    metrics.jsonl   one JSON object per epoch: epoch, loss, train_acc, test_acc,
                    img_per_s, lr (rewritten from the history every epoch)
    curves.png      loss and accuracies against epochs, redrawn every epoch
    last.ckpt       where training is: written after every epoch, and after the
                    current step when SIGINT or SIGTERM arrives
    best.ckpt       the state after the epoch of highest test accuracy (with no
                    separate validation set, an optimistic choice); a hard link
                    to that epoch's last.ckpt where the file system allows it

A checkpoint is a zip archive, as PyTorch's, of ``model.params``
(``net.save_parameters``), ``trainer.states`` (``trainer.save_states``:
momentum and update counts), ``state.json`` (a ``RunState``: epochs and
batches done, the epoch's running sums, the history) and, stored last,
``manifest.json`` with the sha256 of each.  Every file is written atomically
(``files.write_atomically``): a crash leaves the old checkpoint or the new
one, never a mix.  Reading one checks every checksum and names the file if
one differs.

While a run writes its directory it holds ``.lock`` there (``RunDir.locked``):
a second run on the same directory is refused instead of mixing its files
with the first's.

Run directories of earlier versions load too: there each checkpoint's
state.json also held the settings (and ``num_workers``) and config.json had
no ``settings``, which are then read from last.ckpt; there ``args`` repeated
the settings.
"""
import contextlib
import fcntl
import hashlib
import io
import json
import os
import platform
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mxnet as mx
import numpy as np

from ._threads import NUM_THREADS
from .files import write_atomically
from .plotting import save_curves

__all__ = ['RunDir', 'RunState', 'save_checkpoint', 'read_checkpoint', 'load_checkpoint',
           'read_config', 'HISTORY_KEYS', 'RUN_FILES', 'RUN_SETTINGS']

HISTORY_KEYS = ('epoch', 'loss', 'train_acc', 'test_acc', 'img_per_s', 'lr')
RUN_FILES = ('config.json', 'metrics.jsonl', 'curves.png', 'last.ckpt', 'best.ckpt')
LOCK_FILE = '.lock'  # not a run file: files(), size_mb() and check_new() do not see it
CHECKPOINT_FILES = ('model.params', 'trainer.states', 'state.json')
DATA_KEYS = ('name', 'classes', 'image_shape', 'mean', 'std')  # of data.DatasetInfo
# What a resumed run must share with the run it continues: fit's settings, the batches per
# epoch (the schedule is a function of the step) and the workers (each trains on its share).
RUN_SETTINGS = ('num_epochs', 'lr', 'schedule', 'warmup_epochs', 'wd', 'momentum',
                'label_smoothing', 'seed', 'num_batches', 'num_workers')


def _zero_sums():
    """The running sums of an epoch: summed loss, correct predictions, images, seconds."""
    return dict(loss=0.0, correct=0, images=0, seconds=0.0)


@dataclass
class RunState:
    """Where a run is: all that a checkpoint holds besides the arrays (its state.json).

    ``epoch`` epochs and ``batch`` batches of the next one are done, of
    ``num_batches`` per epoch; ``sums`` are that epoch's running sums so far
    (``loss``, ``correct``, ``images``, ``seconds``); ``history`` holds a list
    per key of ``HISTORY_KEYS``, an item per epoch done; ``best_test_acc`` is
    that of best.ckpt (-1 before the first epoch).
    """
    num_batches: int
    epoch: int = 0
    batch: int = 0
    sums: dict = field(default_factory=_zero_sums)
    history: dict = field(default_factory=lambda: {key: [] for key in HISTORY_KEYS})
    best_test_acc: float = -1.0

    @property
    def steps_done(self):
        """The global steps done, ``epoch * num_batches + batch``."""
        return self.epoch * self.num_batches + self.batch

    def next_epoch(self):
        """The epoch is complete: on to the next, with zero sums."""
        self.epoch, self.batch, self.sums = self.epoch + 1, 0, _zero_sums()

    @classmethod
    def from_json(cls, record):
        """The ``RunState`` of a checkpoint's state.json (older ones' other keys ignored)."""
        return cls(**{name: record[name] for name in cls.__dataclass_fields__})


# Checkpoints

def save_checkpoint(path, net, trainer, state):
    """Write ``net``'s parameters, ``trainer``'s states and the JSON-able dict
    ``state`` to the checkpoint ``path``, atomically."""
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
    write_atomically(path, buffer.getvalue())


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


def load_from_bytes(load, data):
    """Call ``load(filename)`` on a temporary file holding ``data``: MXNet's
    ``load_parameters`` and ``load_states`` read only from files."""
    with tempfile.TemporaryDirectory() as folder:
        filename = os.path.join(folder, 'data')
        Path(filename).write_bytes(data)
        return load(filename)


def load_params(net, files, ctx, path):
    """Load ``model.params`` of the checkpoint ``files`` (read from ``path``) into ``net``."""
    try:
        load_from_bytes(lambda filename: net.load_parameters(filename, ctx=ctx),
                        files['model.params'])
    except (AssertionError, ValueError, mx.MXNetError) as error:
        reason = str(error).strip().splitlines()[0]
        raise ValueError(f'checkpoint {path} does not fit this net: {reason}') from None


def load_checkpoint(path, net, ctx=None):
    """Load the parameters of checkpoint ``path`` (e.g. ``runs/x/best.ckpt``)
    into ``net`` on ``ctx`` (default: the CPU) and return its state dict."""
    files = read_checkpoint(path)
    load_params(net, files, ctx or mx.cpu(), path)
    return json.loads(files['state.json'])


# Run directories

def read_config(run_dir):
    """The dict of ``run_dir/config.json``: ``settings`` (fit's), ``args``
    (the caller's other arguments), ``model`` and ``data`` (if recorded),
    ``versions``, ``omp_num_threads`` (see the module docstring)."""
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


class RunDir:
    """The run directory ``path`` (see the module docstring).

    ``args`` is config.json's account of the run (a JSON-able dict; the CLI
    gives all its arguments); ``None`` leaves it to ``start``'s caller.
    ``data`` (a ``data.DatasetInfo``) records what preprocessing and class
    names a prediction needs.  ``start`` begins a new run, refusing a folder
    that holds another run's checkpoints; ``resume_state`` and ``resume`` read
    ``last.ckpt`` back; ``save_last`` and ``end_epoch`` write; ``locked()``
    keeps other runs out meanwhile.
    """

    def __init__(self, path, args=None, data=None):
        self.path, self.args, self.data = os.fspath(path), args, data
        self.last = os.path.join(self.path, 'last.ckpt')
        self.best = os.path.join(self.path, 'best.ckpt')
        self.num_epochs = None  # for curves.png: set by start and resume_state
        self._checkpoint = None  # the files of last.ckpt, once read and checked

    def __repr__(self):
        return f'RunDir({self.path!r})'

    def start(self, settings, net=None, default_args=None):
        """Create the folder and write ``config.json``: the ``settings`` (a dict of
        ``RUN_SETTINGS``), ``self.args`` or else ``default_args``, the model of
        ``net`` when ``models.get_model`` built it.  A folder with only a
        config.json (a run that stopped before its first checkpoint) is taken
        over; one with checkpoints or metrics is refused."""
        self.check_new()
        os.makedirs(self.path, exist_ok=True)
        record = {'settings': {name: settings[name] for name in RUN_SETTINGS},
                  'args': self.args if self.args is not None else default_args}
        model = getattr(net, 'model_args', None)
        if model is not None:
            record['model'] = model
        record.update(versions=_versions(), omp_num_threads=NUM_THREADS)
        if self.data is not None:
            record['data'] = {key: getattr(self.data, key) for key in DATA_KEYS}
        write_atomically(os.path.join(self.path, 'config.json'),
                         json.dumps(record, indent=2).encode())
        self.num_epochs = settings['num_epochs']

    @contextlib.contextmanager
    def locked(self):
        """Hold the run directory (created if need be) for one run inside ``with``:
        ``ValueError`` if another process holds it.  The lock is ``fcntl.flock``
        on ``.lock``, which the kernel releases when the process ends, however it
        ends; the file is removed when the ``with`` ends."""
        os.makedirs(self.path, exist_ok=True)
        path = os.path.join(self.path, LOCK_FILE)
        while True:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                raise ValueError(f'{self.path} is in use by another run: wait for it to end, '
                                 'or choose another directory') from None
            if _same_file(descriptor, path):
                break
            # The holder removed the file as we opened it: lock the one there now.
            os.close(descriptor)
        try:
            yield self
        finally:
            with contextlib.suppress(FileNotFoundError):  # the folder was removed meanwhile
                os.remove(path)  # before the unlock: whoever locks next locks a file in place
            os.close(descriptor)

    def check_new(self):
        """Raise ``ValueError`` if a new run cannot start here (see ``start``)."""
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ValueError(f'{self.path} is a file: expected a folder for the run, or a '
                             'path that does not exist yet')
        taken = [name for name in RUN_FILES[1:] if os.path.exists(os.path.join(self.path, name))]
        if taken:
            raise ValueError(f'{self.path} already holds a run ({", ".join(taken)}): resume it '
                             'or choose another directory')

    def has_checkpoint(self):
        return os.path.isfile(self.last)

    def epochs_done(self):
        """The epochs ``last.ckpt`` has completed (0 without a checkpoint: a run that
        stopped before its first one resumes from the start)."""
        read_config(self.path)  # a clear error if this is no run directory
        return self._peek_state().get('epoch', 0)

    def settings(self):
        """The recorded ``RUN_SETTINGS`` of the run, ``{}`` where there are none
        (unchecked: ``resume_state`` checks): config.json's ``settings``, or
        for a run of an earlier version those in its last.ckpt."""
        settings = read_config(self.path).get('settings')
        if isinstance(settings, dict):
            return settings
        state = self._peek_state()
        if not isinstance(state.get('settings'), dict):
            return {}
        return {**state['settings'], 'num_batches': state.get('num_batches'),
                'num_workers': state.get('num_workers', 1)}

    def _peek_state(self):
        """The ``state.json`` of ``last.ckpt`` unchecked (``{}`` without a readable
        one: resuming reads it in full and names what is wrong)."""
        if not self.has_checkpoint():
            return {}
        try:
            with zipfile.ZipFile(self.last) as archive:
                state = json.loads(archive.read('state.json'))
        except (zipfile.BadZipFile, KeyError, ValueError, EOFError):
            return {}
        return state if isinstance(state, dict) else {}

    def check_checkpoint(self):
        """Read ``last.ckpt`` and check every checksum (``read_checkpoint``), once:
        ``resume_state`` and ``resume`` use what was read."""
        if self._checkpoint is None:
            self._checkpoint = read_checkpoint(self.last)
        return self._checkpoint

    def resume_state(self, settings):
        """The ``RunState`` of ``last.ckpt``, checked, after checking that the run
        was trained with ``settings`` (a dict of ``RUN_SETTINGS``): ``ValueError``
        naming the first that differs."""
        files = self.check_checkpoint()
        recorded = self.settings()
        for name in RUN_SETTINGS:
            if recorded.get(name) != settings[name]:
                raise ValueError(_difference(self.last, name, recorded.get(name),
                                             settings[name]))
        try:
            state = RunState.from_json(json.loads(files['state.json']))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f'checkpoint {self.last} is corrupted: its state.json lacks '
                             f'{error}') from None
        self.num_epochs = settings['num_epochs']
        return state

    def resume(self, net, trainer):
        """Load the parameters of ``last.ckpt`` into ``net`` (on its devices) and
        the optimizer states into ``trainer``."""
        files = self.check_checkpoint()
        ctx = next(iter(net.collect_params().values())).list_ctx()
        load_params(net, files, ctx, self.last)
        load_from_bytes(trainer.load_states, files['trainer.states'])

    def files(self):
        """The run files present, in ``RUN_FILES`` order."""
        return [name for name in RUN_FILES if os.path.exists(os.path.join(self.path, name))]

    def size_mb(self):
        """Disk space of the run files in MB (a hard-linked best.ckpt counted once)."""
        seen, total = set(), 0
        for name in self.files():
            stat = os.stat(os.path.join(self.path, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
        return total / 1e6

    def save_last(self, net, trainer, state):
        """Write ``last.ckpt``: the parameters of ``net``, ``trainer``'s states, the ``RunState``."""
        save_checkpoint(self.last, net, trainer, asdict(state))

    def end_epoch(self, net, trainer, state, improved):
        """After an epoch: metrics.jsonl and curves.png from the whole history
        (so they always match the checkpoint's, even after a crash between the
        two), then last.ckpt, and best.ckpt if the epoch ``improved``."""
        history = state.history
        rows = [{key: history[key][i] for key in HISTORY_KEYS}
                for i in range(len(history['epoch']))]
        write_atomically(os.path.join(self.path, 'metrics.jsonl'),
                         ''.join(json.dumps(row) + '\n' for row in rows).encode())
        save_curves(history, os.path.join(self.path, 'curves.png'), self.num_epochs)
        self.save_last(net, trainer, state)
        if improved:
            _link_or_copy(self.last, self.best)


def _difference(path, name, recorded, value):
    """The error for a resumed run whose setting ``name`` is ``value``, not the run's."""
    if name == 'num_workers':
        return (f'{path} was trained by {recorded} worker(s), not {value}: resume it with as '
                'many (each trains on its share of every batch)')
    if name == 'num_batches':
        return (f'{path} was trained with {recorded} batches per epoch, train_iter has '
                f'{value}: resume with the same data and batch size')
    return (f'{path} was trained with {name}={recorded!r}, not {value!r}: resume with the '
            'settings of the run')


def _same_file(descriptor, path):
    """Whether the open file ``descriptor`` is the file at ``path``."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    here = os.fstat(descriptor)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _link_or_copy(source, target):
    """Make ``target`` a hard link to ``source`` (no second copy of a checkpoint
    on disk), or a copy where links are not allowed; atomically either way."""
    temporary = f'{target}.tmp'
    if os.path.exists(temporary):
        os.remove(temporary)
    try:
        os.link(source, temporary)
        os.replace(temporary, target)
    except OSError:
        write_atomically(target, Path(source).read_bytes())


def _versions():
    return {'python': platform.python_version(), 'mxnet': mx.__version__,
            'numpy': np.__version__}
