"""Tests of distributed training: ``ArrayLoader.shard``, ``fit(kvstore=...)``,
``python -m gluon_resnet.launch`` and its watchdog, on loopback.

Every job is small (digits at 16x16, or a plain net on 8x8 synthetic
images), bounded by timeouts, and every process a test starts is ended: the
``reaper`` fixture kills by PID whatever a test leaves behind and fails it.
A job costs 10-20 s on 2 busy cores, most of it four processes importing MXNet.
"""
import functools
import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from conftest import trained_params
from gluon_resnet import launch, train
from gluon_resnet._cli import run
from gluon_resnet.data import ArrayLoader, load_data
from gluon_resnet.distributed import _SUMS_KEY, _ServerSchedule, _ServerSGD
from gluon_resnet.schedules import learning_rate
from gluon_resnet.training import fit

TESTS = Path(__file__).resolve().parent
JOB = ['--kvstore', 'dist_sync', '--model', 'cifar_resnet20_v1', '--image-size', '16',
       '--batch-size', '64', '--epochs', '3']
PIDS = re.compile(r'pids: scheduler (\d+), server 0 (\d+), workers (\d+) (\d+)')
EPOCH = re.compile(r'^\[worker 0\] epoch (\d+)/', re.MULTILINE)
KEYS = ('epoch', 'loss', 'train_acc', 'test_acc', 'lr')


# Helpers

def alive(pid):
    """Whether ``pid`` is a process that has not ended (a zombie has)."""
    try:
        with open(f'/proc/{pid}/stat') as file:
            return file.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


@pytest.fixture
def reaper():
    """A set to add the PIDs a test starts to; at the end, any still alive is
    killed and the test fails."""
    pids = set()
    yield pids
    left = sorted(pid for pid in pids if alive(pid))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f'processes left running: {left}'


class Job:
    """``python -m gluon_resnet.launch ...`` in the background, its output
    (stdout and stderr) in a file; the launcher's PID and, once printed,
    those of the scheduler, server and workers go to ``pids``."""

    def __init__(self, argv, tmp_path, pids, env=None):
        self.log = tmp_path / f'launch-{time.monotonic_ns()}.log'
        with open(self.log, 'w') as log:
            self.process = subprocess.Popen(
                [sys.executable, '-m', 'gluon_resnet.launch', *argv], stdout=log,
                stderr=subprocess.STDOUT, env={**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})},
                cwd=tmp_path)
        self.pids = pids
        pids.add(self.process.pid)
        self.children = None

    def output(self):
        return self.log.read_text()

    def wait_for(self, pattern, timeout=90):
        """Wait until the output matches ``pattern``; the match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output(), re.MULTILINE)
            if match:
                return match
            assert self.process.poll() is None, self.output()
            time.sleep(0.1)
        raise AssertionError(f'no {pattern!r} within {timeout} s:\n{self.output()}')

    def job_pids(self):
        """``{'scheduler': pid, 'server': pid, 'workers': [pid, pid]}``."""
        scheduler, server, *workers = map(int, self.wait_for(PIDS.pattern).groups())
        self.pids.update([scheduler, server, *workers])
        self.children = dict(scheduler=scheduler, server=server, workers=workers)
        return self.children

    def wait(self, timeout=150):
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f'the launcher did not end within {timeout} s:\n'
                                 f'{self.output()}') from None
        return self.process.returncode


def metrics(run_dir, *keys):
    lines = (Path(run_dir) / 'metrics.jsonl').read_text().splitlines()
    return [tuple(json.loads(line)[key] for key in keys) for line in lines]


# Sharding

def index_loader(num_images=100, batch_size=8, train=True, **kwargs):
    """A loader whose images are their own index: ``X[i, 0, 0, 0] == i``
    (mean 0, std 1, 1x1 pixels), so a batch says which images it holds."""
    images = np.arange(num_images, dtype=np.uint8).reshape(-1, 1, 1, 1)
    return ArrayLoader(images, np.arange(num_images) % 10, batch_size, [0.0], [1.0],
                       train=train, seed=5, **kwargs)


def indices(batches):
    return [X.asnumpy().reshape(-1).astype(int).tolist() for X, _ in batches]


@pytest.mark.parametrize('num_workers', [2, 4])
def test_shards_split_every_batch_of_the_same_order(num_workers):
    """Over an epoch the shards are disjoint and together are the batches of
    the whole loader, slice by slice; every shard has as many batches."""
    loader = index_loader()
    shards = [loader.shard(rank, num_workers) for rank in range(num_workers)]
    assert {len(shard) for shard in shards} == {len(loader)} == {100 // 8}
    for epoch in (0, 3):
        whole = indices(loader.epoch(epoch))
        parts = [indices(shard.epoch(epoch)) for shard in shards]
        for batch, images in enumerate(whole):
            assert sum((part[batch] for part in parts), []) == images
        seen = [i for part in parts for batch in part for i in batch]
        assert len(seen) == len(set(seen)) == 96  # disjoint; the last 4 dropped, as by one
        assert set(seen) == {i for batch in whole for i in batch}
    assert indices(shards[1].epoch(3, start_batch=5)) == indices(shards[1].epoch(3))[5:]


@pytest.mark.parametrize('image_size', [8, 16])
def test_shards_of_an_augmented_loader_are_slices_of_its_batches(image_size):
    """Cropped and flipped as the whole batch is; resized (8x8 -> 16x16), equal to
    a float32 ulp: the resize is a GEMM whose blocking depends on the batch size."""
    train_iter, _, _ = load_data('digits', 16, image_size=image_size, seed=2)
    shard = train_iter.shard(1, 2)
    for (X, y), (X1, y1) in zip(train_iter.epoch(1), shard.epoch(1)):
        assert np.abs(X[8:].asnumpy() - X1.asnumpy()).max() <= (0 if image_size == 8 else 2e-7)
        assert np.array_equal(y[8:].asnumpy(), y1.asnumpy())


def test_test_loader_shards_are_disjoint_and_complete():
    loader = index_loader(num_images=21, train=False)
    parts = [sum(indices(loader.shard(rank, 2)), []) for rank in range(2)]
    assert sorted(parts[0] + parts[1]) == list(range(21)) and not set(parts[0]) & set(parts[1])


@pytest.mark.parametrize('call, message', [
    (lambda l: l.shard(0, 3), r'a batch of 8 images cannot be split evenly over 3 workers'),
    (lambda l: l.shard(2, 2), r'rank must be an integer from 0 to 1, got 2'),
    (lambda l: l.shard(0, 0), r'num_workers must be a positive integer, got 0'),
    (lambda l: l.shard(0, 2).shard(0, 2), r'this loader is shard 0 of 2 already'),
])
def test_bad_shards(call, message):
    with pytest.raises(ValueError, match=message):
        call(index_loader())


# fit on two workers == fit in one process

def plain_net():
    """No BatchNorm: a worker's half of a batch gives the gradient one process
    computes on it, so the sum over workers is the one process's gradient."""
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 3, padding=1, activation='relu'), nn.MaxPool2D(2),
            nn.Conv2D(16, 3, padding=1, activation='relu'), nn.GlobalAvgPool2D(), nn.Dense(10))
    return net


def plain_fit(kvstore):
    """2 epochs of 8 steps of 16 synthetic 8x8 images (cropped and flipped), as
    fit initializes the net from its seed."""
    train_iter, test_iter, _ = load_data('synthetic', 16, seed=0, num_train=128, num_test=40,
                                         image_shape=(1, 8, 8))
    net = plain_net()
    history = fit(net, train_iter, test_iter, 2, 0.1, 'cpu', kvstore=kvstore, warmup_epochs=1,
                  label_smoothing=0.1)
    return net, history


def plain_worker(out):
    """A worker of ``test_two_workers_equal_one_process``: trains, writes what it got."""
    net, history = plain_fit('dist_sync')
    name = Path(out) / str(os.getpid())
    net.save_parameters(f'{name}.params')
    Path(f'{name}.json').write_text(json.dumps(history))


def worker_command(function, *args):
    """Run ``function(*args)`` of this module in a fresh Python."""
    call = f'{function.__name__}(*{args!r})'
    return [sys.executable, '-c', f'import sys; sys.path.insert(0, {str(TESTS)!r}); '
                                  f'from test_distributed import *; {call}']


def test_two_workers_equal_one_process(tmp_path, capsys, reaper):
    """Two dist_sync workers, global batch 16 (8 each), against one process
    with batch 16 on the same order: the workers' parameters are equal to each
    other, and to the one process's up to float32 rounding (the servers sum two
    half-batch gradients, one process sums 16 per-image ones).  Measured: at
    most 2e-7 relative to the largest weight of a parameter; asserted: 1e-5.
    The history agrees to float32 sums (loss 1e-6 relative), counts exactly."""
    code = launch.run_job(worker_command(plain_worker, str(tmp_path)), 2, 1, timeout=150)
    output = capsys.readouterr()
    reaper.update(map(int, PIDS.search(output.err).groups()))
    assert code == 0, output
    assert re.search(r'^\[worker 0\] worker 0 of 2 ', output.err, re.MULTILINE), output.err
    assert re.search(r'^\[worker 1\] worker 1 of 2 ', output.err, re.MULTILINE), output.err

    reference, expected = plain_fit('device')
    expected_params = trained_params(reference)
    workers = []
    for path in sorted(tmp_path.glob('*.params')):
        net = plain_net()
        net.load_parameters(str(path))
        workers.append(trained_params(net))
        history = json.loads(path.with_suffix('.json').read_text())
        assert history['loss'] == pytest.approx(expected['loss'], rel=1e-6)
        for key in ('epoch', 'train_acc', 'test_acc', 'lr'):
            assert history[key] == pytest.approx(expected[key], rel=1e-12), key
    assert len(workers) == 2
    assert all(np.array_equal(workers[0][name], workers[1][name]) for name in expected_params)
    worst = max(np.abs(workers[0][name] - value).max() / np.abs(value).max()
                for name, value in expected_params.items())
    print(f'largest relative difference to one process: {worst:.2g}')
    assert worst < 1e-5


# The launcher: a real job of cifar_resnet20_v1 on digits

@pytest.fixture(scope='module')
def straight(tmp_path_factory):
    """An uninterrupted 2-worker, 1-server job of ``JOB`` and the same run in one
    process: ``(job run directory, one-process run directory)``; the times and
    accuracies are printed (``pytest -s``)."""
    tmp_path = tmp_path_factory.mktemp('straight')
    pids = set()
    start = time.monotonic()
    job = Job(['--workers', '2', '--servers', '1', '--', *JOB, '--out', 'job'], tmp_path, pids)
    try:
        code = job.wait()
        job_seconds = time.monotonic() - start
        assert code == 0, job.output()
        start = time.monotonic()
        single = subprocess.run([sys.executable, '-m', 'gluon_resnet.train', *JOB[2:], '--out',
                                 str(tmp_path / 'one')], capture_output=True, text=True,
                                env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=120)
        assert single.returncode == 0, single.stderr
        (job_acc,), (one_acc,) = metrics(tmp_path / 'job', 'test_acc')[-1], metrics(
            tmp_path / 'one', 'test_acc')[-1]
        print(f'\n2 workers: test acc {job_acc:.3f} in {job_seconds:.0f} s; one process: '
              f'{one_acc:.3f} in {time.monotonic() - start:.0f} s')
        yield tmp_path / 'job', tmp_path / 'one', job.output()
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_two_workers_learn_as_one_process_does(straight):
    """Same data, schedule and global batch; BatchNorm sees half batches on each
    worker, so the runs differ.  Measured (3 epochs, one thread per process, 2
    busy cores): 2 workers and a server 0.953 test accuracy in 21-28 s (about
    10 s of it starting 4 processes), one process 0.914 in 11-16 s; asserted:
    both above 0.7 (chance 0.1), within 0.1 of each other."""
    job, one, output = straight
    assert metrics(job, 'epoch', 'lr') == metrics(one, 'epoch', 'lr')
    (job_acc,), (one_acc,) = metrics(job, 'test_acc')[-1], metrics(one, 'test_acc')[-1]
    assert job_acc > 0.7 and one_acc > 0.7 and abs(job_acc - one_acc) < 0.1
    assert sorted(p.name for p in job.iterdir()) == [
        'best.ckpt', 'config.json', 'curves.png', 'last.ckpt', 'metrics.jsonl']
    config = json.loads((job / 'config.json').read_text())
    assert config['args']['kvstore'] == 'dist_sync' and config['args']['out'] == 'job'
    # both workers print the same (summed) epochs; worker 0 alone writes
    lines = [re.sub(r'  \d+ img/s', '', line.split('] ', 1)[1])
             for line in output.splitlines() if re.match(r'\[worker \d\] epoch ', line)]
    assert len(lines) == 6 and sorted(lines[::2]) == sorted(lines[1::2])
    assert output.count('] wrote job (') == 1 and '[worker 0] wrote job (' in output


def test_ctrl_c_stops_every_worker_at_one_step_and_the_job_resumes(straight, tmp_path, reaper):
    """SIGINT to the launcher in epoch 2: both workers stop after the same
    step, worker 0 saves, the launcher prints the command that resumes; that
    command ends as the uninterrupted job did.  The weights are computed
    exactly as by the straight job; the running sums and BatchNorm statistics
    saved at the stop are sums over the workers in float32, so the loss agrees
    to 1e-6 relative and the accuracies to one image.  Measured: equal (the
    signal landed after batch 1 of 22 of epoch 2)."""
    job = Job(['--workers', '2', '--', *JOB, '--out', 'broken'], tmp_path, reaper)
    job.job_pids()
    job.wait_for(r'^\[worker 0\] epoch 1/3')
    job.process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    assert job.wait(timeout=60) == 130, job.output()
    assert time.monotonic() - sent < 30
    output = job.output()
    stops = re.findall(r'^\[worker (\d)\] python -m gluon_resnet.train: SIGINT (after .*); saved '
                       r'broken/last.ckpt$', output, re.MULTILINE)
    assert sorted(worker for worker, _ in stops) == ['0', '1'], output
    assert stops[0][1] == stops[1][1], stops  # the same step on both
    assert output.endswith(f'{launch.PROG}: interrupted; resume with: {launch.PROG} --workers 2 '
                           '--servers 1 -- --resume broken\n'), output
    assert 'Traceback' not in output
    assert not any(alive(pid) for pid in job.children.values() if isinstance(pid, int))

    resumed = Job(['--workers', '2', '--servers', '1', '--', '--resume', 'broken'], tmp_path,
                  reaper)
    assert resumed.wait() == 0, resumed.output()
    expected = metrics(straight[0], *KEYS)
    got = metrics(tmp_path / 'broken', *KEYS)
    assert [row[0] for row in got] == [1, 2, 3]
    for row, want in zip(got, expected):
        assert row[0] == want[0] and row[4] == want[4]
        assert row[1] == pytest.approx(want[1], rel=1e-6)
        assert abs(row[2] - want[2]) <= 1 / 1437 and abs(row[3] - want[3]) <= 1 / 360


@pytest.mark.parametrize('victim', ['worker', 'server', 'scheduler'])
def test_a_killed_process_ends_the_whole_job(victim, tmp_path, reaper):
    """SIGKILL to one process in epoch 1: the launcher names it, stops the
    others and exits with 128 + 9 within 30 s; no process is left."""
    job = Job(['--workers', '2', '--', *JOB, '--epochs', '20', '--out', 'run'], tmp_path, reaper)
    pids = job.job_pids()
    job.wait_for(r'^\[worker 1\] training ')
    target = pids['workers'][1] if victim == 'worker' else pids[victim]
    os.kill(target, signal.SIGKILL)
    killed = time.monotonic()
    assert job.wait(timeout=40) == 137, job.output()
    assert time.monotonic() - killed < 30
    label = r'worker \d' if victim == 'worker' else {'server': 'server 0'}.get(victim, victim)
    assert re.search(rf'^{re.escape(launch.PROG)}: error: {label} \(pid {target}\) was killed by '
                     r'SIGKILL; stopped the other 3 process\(es\)$', job.output(),
                     re.MULTILINE), job.output()
    for pid in [pids['scheduler'], pids['server'], *pids['workers']]:
        assert not alive(pid), pid


def test_dist_async_servers_add_our_sums_and_follow_the_schedule():
    """What a dist_async server does with the optimizer the workers send it
    (pickled): it adds what is pushed to our keys, and descends the others at
    the learning rate of global step (update - 1) // num_workers."""
    schedule = functools.partial(learning_rate, num_steps=10, lr=0.1, schedule='step')
    optimizer = pickle.loads(pickle.dumps(_ServerSGD(
        lr_scheduler=_ServerSchedule(schedule, num_workers=2), momentum=0.0, wd=0.0)))
    updater = mx.optimizer.get_updater(optimizer)
    total = mx.nd.zeros(3)
    for _ in range(2):
        updater(_SUMS_KEY, mx.nd.array([1, 2, 3]), total)
    assert total.asnumpy().tolist() == [2, 4, 6]
    weight = mx.nd.ones(1)
    for _ in range(12):  # 2 workers x 6 steps: lr 0.1 for steps 0-4, 0.01 for step 5
        updater(0, mx.nd.ones(1), weight)
    assert weight.asscalar() == pytest.approx(1 - 10 * 0.1 - 2 * 0.01, abs=1e-6)


def test_dist_async_job(tmp_path, reaper):
    """Two dist_async workers: the servers run SGD and the schedule; the epochs
    are summed over the workers, and the net learns (measured: test acc
    0.81 after 2 epochs, 0.91 after 3; asserted: > 0.5, chance 0.1)."""
    job = Job(['--workers', '2', '--', *JOB, '--kvstore', 'dist_async', '--epochs', '2',
               '--out', 'async'], tmp_path, reaper)
    job.job_pids()
    assert job.wait() == 0, job.output()
    assert [epoch for epoch, in metrics(tmp_path / 'async', 'epoch')] == [1, 2]
    assert metrics(tmp_path / 'async', 'test_acc')[-1][0] > 0.5
    assert json.loads((tmp_path / 'async' / 'config.json').read_text())['args']['kvstore'] == \
        'dist_async'


# Bad input: one line, exit code 2, nothing started

def check_error(tool, argv, message, capsys, monkeypatch):
    """``tool.main(argv)`` exits with code 2 and one error line matching ``message``,
    without starting a process."""
    monkeypatch.setattr(subprocess, 'Popen', lambda *a, **k: pytest.fail('a process started'))
    with pytest.raises(SystemExit) as exit_info:
        run(lambda: tool.main(argv), tool.PROG)
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith('using ')]
    assert len(lines) == 1 and 'error: ' in lines[0], lines
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize('argv, message', [
    (['--workers', '0', '--', *JOB], r"argument --workers: expected a positive integer, got '0'"),
    (['--workers', '2', '--', '--kvstore', 'dist_bogus'],
     r"train: error: argument --kvstore: invalid choice: 'dist_bogus'"),
    (['--workers', '2', '--', '--model', 'cifar_resnet20_v1'],
     r'the workers need a distributed kvstore, got --kvstore device: add --kvstore dist_sync'),
    (['--workers', '3', '--', *JOB], r'--batch-size 64 cannot be split evenly over --workers 3'),
    (['--workers', '2', '--port', '70000', '--', *JOB],
     r"argument --port: expected an integer from 1 to 65535, got '70000'"),
])
def test_bad_launch(argv, message, capsys, monkeypatch):
    check_error(launch, argv, message, capsys, monkeypatch)


def test_port_in_use(capsys, monkeypatch):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        check_error(launch, ['--workers', '2', '--port', str(port), '--', *JOB],
                    rf'--port {port} is in use .*: choose another, or leave --port out',
                    capsys, monkeypatch)


def test_resume_needs_the_same_workers(straight, capsys, monkeypatch):
    job, one, _ = straight
    check_error(launch, ['--workers', '4', '--', '--resume', str(job)],
                rf'{job} was trained by 2 worker\(s\), not --workers 4: resume it with '
                r'--workers 2', capsys, monkeypatch)
    check_error(launch, ['--workers', '2', '--', '--resume', str(one)],
                rf'{one} is a run of one process \(--kvstore device\): resume it with '
                rf'{re.escape(train.PROG)} --resume {one}', capsys, monkeypatch)


def test_distributed_kvstore_outside_a_job(capsys, monkeypatch):
    for name in ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_SERVER',
                 'DMLC_NUM_WORKER'):
        monkeypatch.delenv(name, raising=False)
    check_error(train, ['--kvstore', 'dist_sync', '--out', 'x'],
                r'kvstore dist_sync trains in a job of a scheduler, servers and workers, and '
                r'DMLC_ROLE, .* are not set: start it with python -m gluon_resnet.launch '
                r'--workers N', capsys, monkeypatch)
    with pytest.raises(ValueError, match='kvstore dist_async trains in a job'):
        fit(None, [1], [1], 1, 0.1, 'cpu', kvstore='dist_async')


def test_the_launcher_applies_a_recipe_as_train_does(capsys, monkeypatch):
    """``-- --recipe fmnist-fast``: the workers' run is named after the
    recipe's model and data, and the batch split is checked with its batch."""
    monkeypatch.setattr(time, 'strftime', lambda format: '20260101-000000')
    argv = ['--recipe', 'fmnist-fast', '--kvstore', 'dist_sync']
    recipe = train.RECIPES['fmnist-fast']
    out = os.path.join('runs', f'{recipe["model"]}-{recipe["data"]}-20260101-000000')
    assert launch.check_train_arguments(argv, 2) == ([*argv, '--out', out], out)
    check_error(launch, ['--workers', '3', '--', *argv],
                rf'--batch-size {recipe["batch_size"]} cannot be split evenly over --workers 3',
                capsys, monkeypatch)
