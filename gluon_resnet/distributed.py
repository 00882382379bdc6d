"""Distributed training on MXNet's parameter server: what ``fit`` needs of the kvstore.

A job is a scheduler, one or more servers and N workers, each a process that
learns its role and its peers from the ``DMLC_*`` environment
(``python -m gluon_resnet.launch`` starts them on one machine, MXNet's
``tools/launch.py`` on several); ``import mxnet`` turns a server or the
scheduler into one.  Every worker runs ``fit`` with the same arguments and
``kvstore='dist_sync'`` (or ``dist_device_sync``, ``dist_async``); ``fit``
sees the job through a ``Workers`` object:

* Data: worker ``rank`` trains on its shard of every batch of the same seeded
  order (``ArrayLoader.shard``): the global batch is split over the workers
  as over the devices of one process, and every worker runs as many steps.
* Updates, ``dist_sync``: the servers sum the workers' gradients; every
  worker pulls the sum and applies the same SGD step to its copy
  (``update_on_kvstore=False``), so the schedule stays a function of the
  global step, ``trainer.save_states`` holds the momentum, and W workers with
  a global batch B compute what one process computes with B split over W
  devices.  BatchNorm normalises each worker's slice with that slice's
  statistics (as over devices); the running statistics each worker updates
  from its slices are averaged over the workers at every epoch end.
* Metrics: loss sums, correct counts and image counts (training and test)
  are summed over the workers with a push and a pull of a small array.  The
  servers sum in float32: counts are exact up to 2**24, loss sums to about
  1e-7 relative.
* Stopping (SIGINT, SIGTERM): in ``dist_sync`` the workers push a two-element
  flag after every step and stop together at the first step where any of
  them was signalled; a worker that stopped alone would leave the others
  waiting for it for ever.  Worker 0 saves the checkpoint, with the job's
  running sums; every worker resumes from it.
* ``dist_async``: MXNet runs the optimizer on the servers, which apply each
  worker's gradient as it comes (scaled by 1/B, so W pushes make one global
  step).  The schedule runs there too (``_ServerSchedule``), by update count;
  the servers keep the momentum, which MXNet 1.9.1 cannot fetch
  (``KVStore.save_optimizer_states``: "Cannot save states for distributed
  training"): a resumed run restarts it from zero.  Sums add up on the
  servers between two barriers, and a signal stops the job at the end of
  the epoch: workers meet nowhere else.  Runs are not reproducible.
"""
import os
import sys

import mxnet as mx
import numpy as np
from mxnet import gluon

from .checks import check_choice

__all__ = ['KVSTORES', 'ENVIRONMENT', 'Workers', 'connect', 'is_distributed',
           'check_environment', 'RANK_LINE']

KVSTORES = ('device', 'local', 'dist_sync', 'dist_device_sync', 'dist_async')
ENVIRONMENT = ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_SERVER',
               'DMLC_NUM_WORKER')
RANK_LINE = 'worker {rank} of {num_workers}'  # the first line a worker prints: the launcher's label

# The Trainer's keys are the parameter indices 0, 1, ...; ours come after, and
# below 2**31 / 9973, which MXNet multiplies a key by to pick its server.
_STOP_KEY, _SUMS_KEY, _RUNNING_KEY, _STATS_KEYS = 100_000, 100_001, 100_002, 100_003
_SIGNALS = ('SIGINT', 'SIGTERM')


# Helpers

def is_distributed(kvstore):
    """Whether ``kvstore`` (a name or an ``mx.kv.KVStore``) is a parameter-server one."""
    name = kvstore if isinstance(kvstore, str) else kvstore.type
    return name.startswith('dist')


def check_environment(kvstore):
    """Raise ``ValueError`` unless this process is a worker of a job (the ``DMLC_*``
    variables are set), as a distributed ``kvstore`` needs."""
    missing = [name for name in ENVIRONMENT if not os.environ.get(name)]
    if missing:
        raise ValueError(f'kvstore {kvstore} trains in a job of a scheduler, servers and workers, '
                         f'and {", ".join(missing)} {"is" if len(missing) == 1 else "are"} not '
                         'set: start it with python -m gluon_resnet.launch --workers N -- '
                         '<train arguments> (or MXNet\'s tools/launch.py on several machines)')
    if os.environ['DMLC_ROLE'] != 'worker':
        raise ValueError(f'DMLC_ROLE is {os.environ["DMLC_ROLE"]!r}: only a worker trains')


def connect(kvstore):
    """The kvstore of this process: ``mx.kv.create(kvstore)`` after checking the
    environment for a distributed one (it waits until every node of the job
    has joined, and prints ``RANK_LINE`` on stderr); the name itself otherwise."""
    check_choice(kvstore, 'kvstore', KVSTORES)
    if not is_distributed(kvstore):
        return kvstore
    check_environment(kvstore)
    kv = mx.kv.create(kvstore)
    print(RANK_LINE.format(rank=kv.rank, num_workers=kv.num_workers) +
          f' (kvstore {kv.type}, {os.environ["DMLC_NUM_SERVER"]} server(s), scheduler '
          f'{os.environ["DMLC_PS_ROOT_URI"]}:{os.environ["DMLC_PS_ROOT_PORT"]})',
          file=sys.stderr, flush=True)
    return kv


# The workers of a job

class Workers:
    """The job as one worker sees it: ``rank``, ``num_workers``, the kvstore.

    ``Workers('device')`` (or ``'local'``) is a single process: rank 0 of 1,
    every method a no-op that returns its input, so ``fit`` runs as it always
    did.  ``kvstore`` may be a name (a distributed one is connected to) or an
    ``mx.kv.KVStore`` that ``connect`` made.
    """

    def __init__(self, kvstore='device'):
        kv = connect(kvstore) if isinstance(kvstore, str) else kvstore
        self.distributed = not isinstance(kv, str)
        self.kv = kv if self.distributed else None
        self.name = kv.type if self.distributed else kv
        self.rank = kv.rank if self.distributed else 0
        self.num_workers = kv.num_workers if self.distributed else 1
        self.sync = self.distributed and 'async' not in self.name
        self._keys = set()  # our keys initialized in the kvstore

    def __repr__(self):
        return f'Workers({self.name!r}, rank={self.rank}, num_workers={self.num_workers})'

    def shard(self, data, name):
        """This worker's part of ``data`` (``data.shard(rank, num_workers)``).  A
        training loader must have one; a test loader without one is evaluated
        whole by every worker (the counts are summed, the fraction is the same)."""
        if not self.distributed:
            return data
        if hasattr(data, 'shard'):
            return data.shard(self.rank, self.num_workers)
        if name == 'train_iter':
            raise ValueError(f'kvstore {self.name}: train_iter must have a shard(rank, '
                             'num_workers) method, or every worker trains on the same images '
                             "(gluon_resnet.data's loaders have one)")
        return data

    def trainer(self, params, optimizer_params, lr_of_step, steps_done):
        """The ``gluon.Trainer`` of SGD with ``optimizer_params`` on this kvstore
        (see the module docstring); ``lr_of_step(step)`` is the schedule and
        ``steps_done`` the global steps before this one (for ``dist_async``)."""
        if not self.distributed:
            return gluon.Trainer(params, 'sgd', optimizer_params, kvstore=self.name)
        if self.sync:
            return _JobTrainer(params, 'sgd', optimizer_params, kvstore=self.kv,
                               update_on_kvstore=False)
        optimizer = _ServerSGD(lr_scheduler=_ServerSchedule(lr_of_step, self.num_workers),
                               begin_num_update=steps_done * self.num_workers,
                               **{name: value for name, value in optimizer_params.items()
                                  if name != 'learning_rate'})  # the schedule gives it
        return _ServerTrainer(params, optimizer, kvstore=self.kv, update_on_kvstore=True)

    def agree_to_stop(self, stop):
        """After a step: whether the job stops now.  ``stop`` is ``fit``'s
        ``_StopSignals``: in a job, ``stop.first`` is this worker's signal
        (``None`` or a name), and ``stop.signal`` is set on every worker when
        they agree to stop, to the signal one of them got (see the module
        docstring: they must all stop after the same step)."""
        if not self.distributed:
            return stop.signal is not None
        if not self.sync:
            return False  # at the epoch end (``epoch_totals``)
        return self._agree(stop, self._sum([_STOP_KEY], [_flags(stop)])[0])

    def epoch_totals(self, sums, test_counts, stop):
        """``[loss, correct, images, test_correct, test_images]`` of the epoch,
        summed over the workers, from this worker's ``sums`` and ``test_counts``;
        the workers also agree whether to stop (``agree_to_stop``)."""
        values = [sums['loss'], sums['correct'], sums['images'], *test_counts]
        if not self.distributed:
            return values
        totals = self._sum([_SUMS_KEY], [np.array(values + list(_flags(stop)))])[0]
        self._agree(stop, totals[len(values):])
        return [float(value) for value in totals[:len(values)]]

    def job_sums(self, sums):
        """The running ``sums`` of the epoch (``fit``'s) summed over the workers, for a
        mid-epoch checkpoint; ``seconds`` stays this worker's."""
        if not self.distributed:
            return sums
        loss, correct, images = self._sum(
            [_RUNNING_KEY], [np.array([sums['loss'], sums['correct'], sums['images']])])[0]
        return dict(sums, loss=float(loss), correct=round(correct), images=round(images))

    def average_running_stats(self, net):
        """Give every device of every worker the mean of the BatchNorm running
        statistics, which each device updated from its own slices of the batches."""
        params = [p for p in net.collect_params().values() if p.grad_req == 'null']
        if not params or not (self.distributed or len(params[0].list_ctx()) > 1):
            return
        means = []
        for param in params:
            copies = param.list_data()
            means.append(sum(c.copyto(copies[0].ctx) for c in copies) / len(copies))
        if self.distributed:
            keys = [_STATS_KEYS + i for i in range(len(params))]
            means = [total / self.num_workers
                     for total in self._sum(keys, [mean.asnumpy() for mean in means])]
        for param, mean in zip(params, means):
            for copy in param.list_data():  # not set_data: it resets the Trainer's kvstore,
                copy[:] = mean                # and with it the momentum

    # The kvstore

    def _sum(self, keys, values):
        """``values`` (numpy arrays, one per key) summed over the workers, as numpy
        float32 arrays.  ``dist_sync`` servers sum every round of pushes of a key;
        ``dist_async`` ones add each push as it comes (``_ServerSGD``), so every
        worker pushes, waits for all, pulls, waits for all, and worker 0 pushes
        the negated total to bring the key back to zero."""
        arrays = [mx.nd.array(value, dtype='float32') for value in values]
        if not self._keys.issuperset(keys):  # every worker gets here with the same keys
            self.kv.init(keys, [mx.nd.zeros_like(array) for array in arrays])
            self._keys.update(keys)
        outputs = [mx.nd.zeros_like(a) for a in arrays]
        self.kv.push(keys, arrays)
        if not self.sync:
            mx.nd.waitall()
            self.kv._barrier()
        self.kv.pull(keys, out=outputs)
        totals = [output.asnumpy() for output in outputs]
        if not self.sync:
            self.kv._barrier()
            if self.rank == 0:
                self.kv.push(keys, [-output for output in outputs])
                mx.nd.waitall()
        return totals

    @staticmethod
    def _agree(stop, flags):
        """Stop (set ``stop.signal``) if any worker got a signal: this worker's, else
        theirs; whether to."""
        if flags.any() and stop.signal is None:
            stop.signal = stop.first or (_SIGNALS[0] if flags[0] else _SIGNALS[1])
        return bool(flags.any())


def _flags(stop):
    """``[got SIGINT, got SIGTERM]`` of this worker, as numbers to sum."""
    return np.array([stop.first == name for name in _SIGNALS], dtype=np.float32)


# dist_async: the optimizer on the servers

class _ServerSchedule:
    """The learning rate a ``dist_async`` server uses at its update ``num_update``
    (from 1): each worker's push is an update, ``num_workers`` make a global step."""

    def __init__(self, lr_of_step, num_workers):
        self.lr_of_step, self.num_workers = lr_of_step, num_workers
        self.base_lr = None  # set by mx.optimizer.Optimizer

    def __call__(self, num_update):
        return self.lr_of_step(max(0, num_update - 1) // self.num_workers)


class _ServerSGD(mx.optimizer.SGD):
    """SGD as the servers of a ``dist_async`` job run it: our keys (sums of
    metrics and statistics, ``Workers._sum``) are added to, not descended."""

    def update_multi_precision(self, index, weight, grad, state):
        several = isinstance(index, (list, tuple))  # MXNet aggregates updates into lists
        if (index[0] if several else index) < _STOP_KEY:
            return super().update_multi_precision(index, weight, grad, state)
        for w, g in zip(weight if several else [weight], grad if several else [grad]):
            w += g


class _JobTrainer(gluon.Trainer):
    """The Trainer of a worker.  In its first step MXNet 1.9.1 gives every key
    worker 0's parameter (``_init_params``: init, then a pull into the
    parameter) and then pushes the gradients; its engine sees no dependency
    between that pull and the push, so the push can reach the server first, and
    in ``dist_sync`` the pull then brings back the summed gradients as the
    weights (seen in 1 run of 3 of two workers).  Waiting for the pulls closes
    that race."""

    def _init_params(self):
        super()._init_params()
        mx.nd.waitall()


class _ServerTrainer(_JobTrainer):
    """The Trainer of a ``dist_async`` worker.  The servers run the optimizer, its
    schedule and its momentum: ``set_learning_rate`` leaves the schedule to
    them, and a checkpoint holds no optimizer state (see the module docstring)."""

    def set_learning_rate(self, lr):
        pass

    def save_states(self, fname):
        with open(fname, 'wb'):
            pass

    def load_states(self, fname):
        pass
