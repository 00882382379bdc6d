"""Tests of gluon_resnet.training: schedules, the fit loop, checkpoints, resumption.

Small on purpose: CIFAR ResNet-20 on 8x8 images, a few batches per epoch.
"""
import json
import shutil
import math
import re
import signal
import zipfile
from pathlib import Path

import IPython.display
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from conftest import max_difference, trained_params
import conftest
from gluon_resnet import get_model, plotting, progress
from gluon_resnet.checkpoint import (HISTORY_KEYS, RunDir, load_checkpoint, read_checkpoint,
                                     read_config)
from gluon_resnet.checks import check_settings
from gluon_resnet.data import load_data
from gluon_resnet.models import initialize
from gluon_resnet.schedules import learning_rate
from gluon_resnet.training import Interrupted, NonFiniteLoss, evaluate_accuracy, fit
from learning import learn_digits, learn_fashion_mnist, learn_with_d2l_loader

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


# Helpers

def tiny_data(batch_size=16, num_train=128, seed=0):
    """Synthetic 1x8x8 images with random labels: loaders of ``gluon_resnet.data``."""
    return load_data('synthetic', batch_size, seed=seed, num_train=num_train, num_test=32,
                     image_shape=(1, 8, 8))


def tiny_net():
    return get_model('cifar_resnet20_v1', num_classes=10)


def quiet_fit(net, train_iter, test_iter, num_epochs, lr=0.1, **kwargs):
    return fit(net, train_iter, test_iter, num_epochs, lr, 'cpu', **kwargs)


class SignalAt:
    """A training loader that sends ``signum`` to this process just before
    it yields batch ``batch`` of epoch ``epoch`` (both from 0)."""

    def __init__(self, loader, epoch, batch, signum=signal.SIGINT):
        self.loader, self.at, self.signum = loader, (epoch, batch), signum

    def __len__(self):
        return len(self.loader)

    def epoch(self, epoch, start_batch=0):
        for batch, (X, y) in enumerate(self.loader.epoch(epoch, start_batch), start_batch):
            if (epoch, batch) == self.at:
                signal.raise_signal(self.signum)
            yield X, y


class PoisonAt(SignalAt):
    """A training loader that sets the bias of ``net``'s output layer to NaN
    just before it yields batch ``batch`` of epoch ``epoch``.  (NaN images
    would not do: ReLU turns NaN into 0.)"""

    def __init__(self, loader, epoch, batch, net):
        super().__init__(loader, epoch, batch)
        self.net = net

    def epoch(self, epoch, start_batch=0):
        for batch, (X, y) in enumerate(self.loader.epoch(epoch, start_batch), start_batch):
            if (epoch, batch) == self.at:
                bias = self.net.output.bias
                bias.set_data(bias.data() * np.nan)
            yield X, y


# Schedules and settings

@pytest.mark.parametrize('schedule, warmup, step, expected', [
    ('constant', 0, 0, 0.1), ('constant', 0, 99, 0.1),
    # step: /10 at 50% and 75% of the 100 steps
    ('step', 0, 0, 0.1), ('step', 0, 49, 0.1), ('step', 0, 50, 0.01), ('step', 0, 74, 0.01),
    ('step', 0, 75, 0.001), ('step', 0, 99, 0.001),
    # cosine: 0.1 * (1 + cos(pi * step / 100)) / 2
    ('cosine', 0, 0, 0.1), ('cosine', 0, 25, 0.05 * (1 + math.sqrt(0.5))), ('cosine', 0, 50, 0.05),
    ('cosine', 0, 99, 0.05 * (1 + math.cos(math.pi * 0.99))),
    # warmup over 10 steps: (step + 1) / 10 of the rate, then the schedule
    ('constant', 10, 0, 0.01), ('constant', 10, 4, 0.05), ('constant', 10, 9, 0.1),
    ('cosine', 10, 9, 0.1), ('cosine', 10, 10, 0.1), ('cosine', 10, 55, 0.05),
    ('step', 10, 4, 0.05), ('step', 10, 50, 0.01),
])
def test_learning_rate(schedule, warmup, step, expected):
    assert learning_rate(step, 100, 0.1, schedule, warmup) == pytest.approx(expected, rel=1e-12)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="schedule must be one of .*'linear'"):
        learning_rate(0, 100, 0.1, 'linear')


@pytest.mark.parametrize('setting, value, message', [
    ('num_epochs', 0, 'num_epochs must be a positive integer, got 0'),
    ('num_epochs', 1.5, 'num_epochs must be a positive integer'),
    ('num_epochs', True, 'num_epochs must be a positive integer'),
    ('lr', 0, 'lr must be a positive number, got 0'),
    ('lr', -0.1, 'lr must be a positive number'),
    ('lr', float('nan'), 'lr must be a positive number, got nan'),
    ('lr', float('inf'), 'lr must be a positive number, got inf'),
    ('schedule', 'linear', "schedule must be one of"),
    ('warmup_epochs', 3, r'warmup_epochs must be less than num_epochs \(3\), got 3'),
    ('warmup_epochs', -1, 'warmup_epochs must be a non-negative integer, got -1'),
    ('wd', -1e-4, 'wd must be a number >= 0'),
    ('momentum', 1.0, r'momentum must be a number in \[0, 1\), got 1.0'),
    ('label_smoothing', 1, r'label_smoothing must be a number in \[0, 1\)'),
    ('seed', -1, 'seed must be a non-negative integer, got -1'),
])
def test_bad_settings(setting, value, message):
    settings = dict(num_epochs=3, lr=0.1)
    settings[setting] = value
    with pytest.raises(ValueError, match=message):
        check_settings(**settings)
    with pytest.raises(ValueError, match=message):  # fit checks before any work
        fit(None, None, None, **{**dict(ctx='cpu'), **settings})


def test_amp_refused_on_cpu():
    train_iter, test_iter, _ = tiny_data()
    with pytest.raises(ValueError, match=r'amp \(float16 mixed precision\) needs GPUs'):
        quiet_fit(tiny_net(), train_iter, test_iter, 1, amp=True)


# The loop

def test_fit_learns_digits_hybridized_or_not():
    """The history has one entry per epoch; hybridizing changes nothing on one
    machine; the net learns on any.  Measured (``measure_margins.py``, see
    ``learning.py``) over seeds 0-4, hybridized and imperative, 1 and 2
    threads, oneDNN on, and seed 0 also with oneDNN off: final test accuracy
    0.892 at worst (range 0.892-0.972), last/first loss 0.074 at worst.
    Asserted: test accuracy > 0.75 (chance 0.1; 14 points below the worst)
    and last/first loss < 0.3 (4x the worst)."""
    hybrid, imperative = learn_digits(hybridize=True), learn_digits(hybridize=False)
    assert list(hybrid) == list(HISTORY_KEYS)
    assert hybrid['epoch'] == [1, 2, 3, 4]
    assert all(len(values) == 4 for values in hybrid.values())
    assert hybrid['lr'] == pytest.approx(
        [learning_rate(22 * e - 1, 88, 0.05, warmup_steps=22) for e in (1, 2, 3, 4)])
    assert min(hybrid['img_per_s']) > 0
    assert hybrid['loss'][-1] < 0.3 * hybrid['loss'][0]
    assert hybrid['test_acc'][-1] > 0.75
    for key in ('loss', 'train_acc', 'test_acc'):
        np.testing.assert_allclose(imperative[key], hybrid[key], rtol=1e-4)


def test_fit_initializes_only_an_uninitialized_net():
    train_iter, test_iter, _ = tiny_data()
    net = tiny_net()
    net.initialize(mx.init.Constant(0.01))
    quiet_fit(net, train_iter, test_iter, 1, lr=1e-12)  # too small to move the weights
    weight = net.features[0].weight.data().asnumpy()
    np.testing.assert_allclose(weight, 0.01, rtol=1e-6)
    # an uninitialized one is drawn from the seed: same seed, same net
    nets = [tiny_net(), tiny_net()]
    for net in nets:
        quiet_fit(net, train_iter, test_iter, 1, seed=7)
    assert max_difference(*map(trained_params, nets)) == 0


def test_fit_takes_d2l_fashion_mnist_loader_in_numpy_mode():
    """d2l 1.0's own loader (a gluon DataLoader of mx.np arrays, labels int32)
    on real Fashion-MNIST images.  Measured (see ``learning.py``) over seeds
    0-4 hybridized with oneDNN at 1 and 2 threads, and seed 0 in all eight
    variations: final test accuracy 0.768 at worst (range 0.768-0.795),
    last/first loss 0.373 at worst.  Asserted: > 0.6 (chance 0.1; 17 points
    below the worst) and < 0.7."""
    history, net, test_iter = learn_with_d2l_loader()
    assert history['epoch'] == [1, 2, 3]
    assert history['loss'][-1] < 0.7 * history['loss'][0]
    assert history['test_acc'][-1] > 0.6
    with conftest.numpy_mode():  # d2l's loader and the net were made in it
        X, y = next(iter(test_iter))
        assert isinstance(X, mx.np.ndarray) and X.shape == (32, 1, 28, 28)
        assert y.dtype == np.int32
        assert history['test_acc'][-1] == evaluate_accuracy(net, test_iter)


def test_fashion_mnist_subset_accuracy():
    """Real data, 2,000 training images at 28x28, well above chance in 3
    epochs.  Measured (see ``learning.py``) over seeds 0-4 hybridized with
    oneDNN at 1 and 2 threads, and seed 0 in all eight variations: final test
    accuracy 0.771 at worst (range 0.771-0.802).  Asserted: > 0.6 (chance
    0.1; 17 points below the worst)."""
    history = learn_fashion_mnist()
    assert history['test_acc'][-1] > 0.6


def test_two_contexts_equal_one_context_on_the_same_slices(tmp_path):
    """Data parallel over cpu(0) and cpu(1) == one device that runs the two
    halves of every batch separately and sums their gradients.

    BatchNorm normalises each device's slice with that slice's statistics, so
    one device on the whole batch is *not* comparable; a net whose BN sees
    the same slices is, and does exactly the same arithmetic except the order
    of a few float sums (the kvstore's sum of the two gradients, the loss
    sums on the host).  Measured difference: 0; tolerance: 1e-6 absolute on
    the weights (values of order 1: a few float32 ulps) and 1e-6 relative on
    the loss.  The BatchNorm running statistics are left out: each device
    updates its own copy from its slice, the reference updates one copy twice.
    Two epochs: the running statistics are averaged between them, which must
    not reset the momentum (``Parameter.set_data`` did, by resetting the
    Trainer's kvstore: a weight difference of 1e-2).
    """
    train_iter, test_iter, _ = tiny_data(batch_size=16, num_train=64)
    parallel, reference = tiny_net(), tiny_net()
    initialize(parallel, seed=0)
    parallel(mx.nd.zeros((1, 1, 8, 8)))  # finish the deferred initialization
    parallel.save_parameters(str(tmp_path / 'init.params'))
    reference.load_parameters(str(tmp_path / 'init.params'))
    history = fit(parallel, train_iter, test_iter, 2, 0.1, [mx.cpu(0), mx.cpu(1)],
                  schedule='constant')

    trainer = gluon.Trainer(reference.collect_params(), 'sgd',
                            {'learning_rate': 0.1, 'momentum': 0.9, 'wd': 5e-4})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for epoch in range(2):
        loss_sum = correct = 0
        mx.random.seed(0)
        for X, y in train_iter.epoch(epoch):
            halves = [(X[:8], y[:8]), (X[8:], y[8:])]
            with autograd.record():
                outputs = [reference(X_) for X_, _ in halves]
                losses = [loss_fn(y_hat, y_) for y_hat, (_, y_) in zip(outputs, halves)]
            autograd.backward(losses)
            trainer.step(16)
            loss_sum += sum(l.sum().asscalar() for l in losses)
            correct += sum((y_hat.argmax(axis=1) == y_.astype('float32')).sum().asscalar()
                           for y_hat, (_, y_) in zip(outputs, halves))
        assert history['loss'][epoch] == pytest.approx(loss_sum / 64, rel=1e-6)
        assert history['train_acc'][epoch] == correct / 64
    expected = trained_params(reference, trainable_only=True)
    for name, param in parallel.collect_params().items():
        if param.grad_req != 'null':
            copies = param.list_data()
            assert [c.ctx for c in copies] == [mx.cpu(0), mx.cpu(1)]
            for copy in copies:
                difference = np.abs(copy.asnumpy() - expected[name[len(parallel.prefix):]]).max()
                assert difference < 1e-6, name


def test_live_plot_in_a_notebook(monkeypatch):
    """In Jupyter, fit redraws one image in place: after every batch here (8
    per epoch, at most ``PLOTS_PER_EPOCH`` apart) and after every test."""
    shown = []

    class Handle:
        def update(self, image):
            shown.append(image)

    def display(image, display_id):
        assert display_id is True
        shown.append(image)
        return Handle()

    monkeypatch.setattr(progress, 'in_notebook', lambda: True)
    monkeypatch.setattr(IPython.display, 'display', display)
    train_iter, test_iter, _ = tiny_data()
    history = quiet_fit(tiny_net(), train_iter, test_iter, 2)
    assert len(shown) == 2 * (8 + 1)
    assert all(image.data.startswith(PNG_SIGNATURE) for image in shown)
    assert not plotting.in_notebook()  # pytest is no Jupyter kernel
    series = {'train loss': ([1, 2], history['loss']),
              'train acc': ([1, 2], history['train_acc']),
              'test acc': ([1, 2], history['test_acc'])}
    axes = plotting.curves_figure(series, 2).axes
    assert [line.get_label() for ax in axes for line in ax.lines] == [
        'train loss', 'train acc', 'test acc']
    np.testing.assert_array_equal(axes[1].lines[1].get_ydata(), history['test_acc'])


# Run directory, checkpoints, resumption

def test_run_directory(tmp_path):
    train_iter, test_iter, _ = tiny_data()
    out = tmp_path / 'run'
    history = quiet_fit(tiny_net(), train_iter, test_iter, 2,
                        out=RunDir(out, args={'model': 'cifar_resnet20_v1', 'data': 'synthetic'}))
    assert sorted(p.name for p in out.iterdir()) == [
        'best.ckpt', 'config.json', 'curves.png', 'last.ckpt', 'metrics.jsonl']
    lines = (out / 'metrics.jsonl').read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {key: history[key][i] for key in HISTORY_KEYS} for i in range(2)]
    config = read_config(str(out))
    assert config['args'] == {'model': 'cifar_resnet20_v1', 'data': 'synthetic'}
    assert config['versions']['mxnet'] == mx.__version__
    assert config['versions']['numpy'] == np.__version__
    assert config['versions']['python'].count('.') == 2
    curves = (out / 'curves.png').read_bytes()
    assert curves.startswith(PNG_SIGNATURE) and len(curves) > 10_000
    with zipfile.ZipFile(out / 'last.ckpt') as archive:
        assert archive.namelist() == ['model.params', 'trainer.states', 'state.json',
                                      'manifest.json']
    files = read_checkpoint(str(out / 'last.ckpt'))  # checks the sha256 of each
    state = json.loads(files['state.json'])
    assert (state['epoch'], state['batch'], state['num_batches']) == (2, 0, 8)
    assert state['history'] == history
    assert state['best_test_acc'] == max(history['test_acc'])
    best = load_checkpoint(str(out / 'best.ckpt'), tiny_net())
    assert best['history']['test_acc'][-1] == max(history['test_acc'])
    # fit's own settings are the default config
    other = tmp_path / 'other'
    quiet_fit(tiny_net(), train_iter, test_iter, 1, out=str(other), warmup_epochs=0)
    assert read_config(str(other))['settings'] == dict(
        num_epochs=1, lr=0.1, schedule='cosine', warmup_epochs=0, wd=5e-4, momentum=0.9,
        label_smoothing=0.0, seed=0, num_batches=8, num_workers=1)
    assert read_config(str(other))['args'] == dict(ctx=['cpu(0)'], hybridize=True, amp=False)


def test_new_run_refuses_a_used_directory(tmp_path):
    train_iter, test_iter, _ = tiny_data()
    quiet_fit(tiny_net(), train_iter, test_iter, 1, out=str(tmp_path))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match='already holds a run .*last.ckpt.*resume it'):
        quiet_fit(tiny_net(), train_iter, test_iter, 1, out=str(tmp_path))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize('signum, epoch, batch, where, position', [
    (signal.SIGINT, 1, 3, 'after batch 4 of 8 of epoch 2', (1, 4)),
    (signal.SIGTERM, 0, 7, 'after epoch 1', (1, 0)),  # in the last step: the epoch completes
])
def test_interrupted_run_resumes_exactly(tmp_path, signum, epoch, batch, where, position):
    """A 2-epoch run stopped by a signal and resumed ends with the parameters
    and metrics of the unbroken run."""
    train_iter, test_iter, _ = tiny_data()
    settings = dict(warmup_epochs=1, label_smoothing=0.1)
    straight_net = tiny_net()
    straight = quiet_fit(straight_net, train_iter, test_iter, 2, out=str(tmp_path / 'straight'),
                         **settings)

    out = str(tmp_path / 'broken')
    name = signal.Signals(signum).name
    with pytest.raises(Interrupted, match=re.escape(f'{name} {where}; saved {out}/last.ckpt')):
        quiet_fit(tiny_net(), SignalAt(train_iter, epoch, batch, signum), test_iter, 2, out=out,
                  **settings)
    assert signal.getsignal(signum) in (signal.default_int_handler, signal.SIG_DFL)  # restored
    state = load_checkpoint(f'{out}/last.ckpt', tiny_net())
    assert (state['epoch'], state['batch']) == position
    assert len((tmp_path / 'broken' / 'metrics.jsonl').read_text().splitlines()) == 1

    resumed_net = tiny_net()
    resumed = quiet_fit(resumed_net, train_iter, test_iter, 2, out=out, resume=True, **settings)
    assert max_difference(trained_params(straight_net), trained_params(resumed_net)) < 1e-6
    for key in ('epoch', 'loss', 'train_acc', 'test_acc', 'lr'):
        assert resumed[key] == straight[key], key
    metrics = [[{**json.loads(line), 'img_per_s': 0} for line in
                (tmp_path / run / 'metrics.jsonl').read_text().splitlines()]
               for run in ('straight', 'broken')]
    assert metrics[0] == metrics[1] and len(metrics[0]) == 2


def test_numpy_mode_imperative_run_resumes_exactly(numpy_mode, tmp_path):
    train_iter, test_iter, _ = tiny_data()
    X, y = next(iter(train_iter))
    assert isinstance(X, mx.np.ndarray) and isinstance(y, mx.np.ndarray)
    straight_net = tiny_net()
    straight = quiet_fit(straight_net, train_iter, test_iter, 2, hybridize=False)
    out = str(tmp_path / 'broken')
    with pytest.raises(Interrupted, match='SIGINT after batch 6 of 8 of epoch 2'):
        quiet_fit(tiny_net(), SignalAt(train_iter, 1, 5), test_iter, 2, hybridize=False, out=out)
    resumed_net = tiny_net()
    resumed = quiet_fit(resumed_net, train_iter, test_iter, 2, hybridize=False, out=out,
                        resume=True)
    assert max_difference(trained_params(straight_net), trained_params(resumed_net)) < 1e-6
    assert resumed['loss'] == straight['loss'] and resumed['test_acc'] == straight['test_acc']


def test_interrupted_without_run_directory():
    train_iter, test_iter, _ = tiny_data()
    with pytest.raises(Interrupted, match='SIGINT after batch 2 of 8 of epoch 1; no run '
                                          'directory: nothing saved') as stopped:
        quiet_fit(tiny_net(), SignalAt(train_iter, 0, 1), test_iter, 1)
    assert stopped.value.checkpoint is None
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_resume_needs_the_same_settings(tmp_path):
    train_iter, test_iter, _ = tiny_data()
    quiet_fit(tiny_net(), train_iter, test_iter, 1, out=str(tmp_path))
    with pytest.raises(ValueError, match=r'last.ckpt was trained with lr=0.1, not 0.05'):
        quiet_fit(tiny_net(), train_iter, test_iter, 1, lr=0.05, out=str(tmp_path), resume=True)
    other_batches, _, _ = tiny_data(batch_size=32)
    with pytest.raises(ValueError, match='8 batches per epoch, train_iter has 4'):
        quiet_fit(tiny_net(), other_batches, test_iter, 1, out=str(tmp_path), resume=True)
    with pytest.raises(ValueError, match='does not fit this net'):
        quiet_fit(get_model('cifar_resnet32_v1'), train_iter, test_iter, 1, out=str(tmp_path),
                  resume=True)
    with pytest.raises(FileNotFoundError, match='no checkpoint .*nothing/last.ckpt'):
        quiet_fit(tiny_net(), train_iter, test_iter, 1, out=str(tmp_path / 'nothing'),
                  resume=True)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    train_iter, test_iter, _ = tiny_data()
    net = tiny_net()
    with pytest.raises(NonFiniteLoss) as error:
        quiet_fit(net, PoisonAt(train_iter, 1, 2, net), test_iter, 2, out=str(tmp_path))
    lr = learning_rate(8 + 2, 16, 0.1)
    assert (error.value.epoch, error.value.batch, error.value.lr) == (2, 3, lr)
    assert str(error.value) == (f'the loss became nan at epoch 2, batch 3 of 8, learning rate '
                                f'{lr:g}: training diverged (try a smaller learning rate); '
                                f'the last checkpoint, {tmp_path}/last.ckpt, is kept')
    net = tiny_net()
    state = load_checkpoint(str(tmp_path / 'last.ckpt'), net)  # still verifies
    assert (state['epoch'], state['batch']) == (1, 0)
    assert all(np.isfinite(v).all() for v in trained_params(net).values())
    assert len((tmp_path / 'metrics.jsonl').read_text().splitlines()) == 1


def test_huge_learning_rate_diverges():
    train_iter, test_iter, _ = tiny_data()
    with pytest.raises(NonFiniteLoss, match=r'the loss became (nan|inf) at epoch 1, batch \d '
                                            r'of 8, learning rate 1e\+10: .*no checkpoint'):
        quiet_fit(tiny_net(), train_iter, test_iter, 1, lr=1e10, schedule='constant')


def corrupt(path, how):
    data = path.read_bytes()
    if how == 'flipped byte':  # inside model.params, the first member
        middle = len(data) // 4
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:])
    elif how == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    else:  # a consistent zip whose member does not match the manifest
        with zipfile.ZipFile(path) as archive:
            files = {name: archive.read(name) for name in archive.namelist()}
        files['state.json'] = files['state.json'].replace(b'"batch": 0', b'"batch": 5')
        with zipfile.ZipFile(path, 'w') as archive:
            for name, content in files.items():
                archive.writestr(name, content)


@pytest.mark.parametrize('how, message', [
    ('flipped byte', r' is truncated or corrupted \(Bad CRC-32'),
    ('truncated', r' is truncated or corrupted'),
    ('edited', r' is corrupted: state.json has sha256 [0-9a-f]{64}, its manifest says'),
])
def test_corrupted_checkpoint_is_detected_and_nothing_overwritten(tmp_path, how, message):
    train_iter, test_iter, _ = tiny_data()
    quiet_fit(tiny_net(), train_iter, test_iter, 1, out=str(tmp_path))
    corrupt(tmp_path / 'last.ckpt', how)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=re.escape(f'checkpoint {tmp_path}/last.ckpt') + message):
        quiet_fit(tiny_net(), train_iter, test_iter, 1, out=str(tmp_path), resume=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# What a new user of the Python API runs into: a ValueError before any update

def test_bad_data_is_refused_before_any_update():
    train_iter, test_iter, _ = tiny_data()
    X, y = next(train_iter.epoch(0))
    cases = [
        (train_iter, [], 'test_iter has no batches: expected at least one'),
        ((batch for batch in train_iter.epoch(0)), test_iter,
         'train_iter must be a sized iterable that can be iterated again every epoch'),
        ([(X, y + 10)], test_iter, r'labels must be class indices 0..9 \(the net has 10 '
                                   r'outputs\), got values from 1\d to 1\d'),
        ([(X, mx.nd.one_hot(y, 10))], test_iter, r'labels y must have shape \(N,\), one class '
                                                 r'index per image, got \(16, 10\) \(one-hot'),
        ([(X, y[:8])], test_iter, 'a batch has 16 images but 8 labels: expected as many'),
        ([(X,)], test_iter, r'train_iter must yield pairs \(X, y\), got a tuple of length 1'),
        ([(X[0], y)], test_iter, r'images X must have shape \(N, C, H, W\), got \(1, 8, 8\)'),
    ]
    for train_data, test_data, message in cases:
        net = tiny_net()
        initialize(net)
        net(X)
        before = trained_params(net)
        with pytest.raises(ValueError, match=message):
            quiet_fit(net, train_data, test_data, 1)
        assert max_difference(before, trained_params(net)) == 0


def test_run_directory_without_checkpoint_is_reused_or_resumed_from_the_start(tmp_path):
    """A run that stopped before its first checkpoint left only config.json:
    a new run may take the folder, and resuming it starts anew and equals an
    unbroken run."""
    train_iter, test_iter, _ = tiny_data()
    straight_net = tiny_net()
    straight = quiet_fit(straight_net, train_iter, test_iter, 2, out=str(tmp_path / 'straight'))
    out = tmp_path / 'stopped'
    with pytest.raises(NonFiniteLoss, match='no checkpoint was written'):
        quiet_fit(tiny_net(), train_iter, test_iter, 2, lr=1e10, schedule='constant',
                  out=str(out))
    assert [p.name for p in out.iterdir()] == ['config.json']
    resumed_net = tiny_net()
    resumed = quiet_fit(resumed_net, train_iter, test_iter, 2, out=str(out), resume=True)
    assert resumed == {**straight, 'img_per_s': resumed['img_per_s']}
    assert max_difference(trained_params(straight_net), trained_params(resumed_net)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        'best.ckpt', 'config.json', 'curves.png', 'last.ckpt', 'metrics.jsonl']


def test_best_checkpoint_is_a_link_not_a_copy(tmp_path):
    train_iter, test_iter, _ = tiny_data()
    quiet_fit(tiny_net(), train_iter, test_iter, 1, out=str(tmp_path))
    assert (tmp_path / 'best.ckpt').samefile(tmp_path / 'last.ckpt')


def copy_fixture_run(name, out):
    """Copy the run directory ``tests/fixtures/<name>`` to ``out``, its checkpoint
    (stored as ``last-ckpt.zip``, so that no ``*.ckpt`` is committed) as last.ckpt;
    returns the fixture's folder."""
    fixture = Path(__file__).parent / 'fixtures' / name
    out.mkdir()
    for name in ('config.json', 'metrics.jsonl'):
        shutil.copy(fixture / name, out / name)
    shutil.copy(fixture / 'last-ckpt.zip', out / 'last.ckpt')
    return fixture


def test_a_checkpoint_of_version_0_1_0_resumes_exactly(tmp_path):
    """tests/fixtures/run-0.1.0: a run directory written by the code before the
    run directory moved to ``checkpoint.RunDir`` (commit 3ee8c1f), stopped by
    SIGINT after batch 3 of 4 of epoch 2 (``tiny_data(num_train=64)``, 2
    epochs, lr 0.1).  (The checkpoint is stored as ``last-ckpt.zip`` so that no
    ``*.ckpt`` file is committed.)  Today's code reads it, keeps its history
    and resumes it to the end.  On the fixture's machine the result equals
    today's unbroken run exactly (measured: 0 difference, 1 and 2 threads);
    other kernels change the last digits of the fixture's 7 steps and an
    unstable run amplifies them (``MXNET_MKLDNN_ENABLED=0``: 0.011 on the
    weights), so the weights are asserted within 0.1 of each other."""
    out = tmp_path / 'old'
    fixture = copy_fixture_run('run-0.1.0', out)
    train_iter, test_iter, _ = tiny_data(num_train=64)
    state = load_checkpoint(str(out / 'last.ckpt'), tiny_net())
    assert (state['epoch'], state['batch'], state['num_batches']) == (1, 3, 4)
    resumed_net, straight_net = tiny_net(), tiny_net()
    resumed = quiet_fit(resumed_net, train_iter, test_iter, 2, out=str(out), resume=True)
    straight = quiet_fit(straight_net, train_iter, test_iter, 2)
    first_epoch = json.loads((fixture / 'metrics.jsonl').read_text())
    assert {key: resumed[key][0] for key in first_epoch} == first_epoch  # kept, not redone
    assert resumed['epoch'] == [1, 2] and resumed['lr'] == straight['lr']
    assert max_difference(trained_params(straight_net), trained_params(resumed_net)) < 0.1


def test_a_run_directory_of_da35038_loads_predicts_and_resumes(tmp_path, capsys):
    """tests/fixtures/run-da35038: ``python -m gluon_resnet.train --model
    cifar_resnet20_v1 --image-size 16 --epochs 2`` as commit da35038 wrote it
    (its best.ckpt was a hard link to last.ckpt: one file is stored).  Today's
    code reads it, predicts as that commit did (probabilities measured then,
    within float32 kernel differences) and resumes it: the CLI finds it
    complete, ``fit`` loads its parameters and trainer and returns its history."""
    from gluon_resnet import predict
    from gluon_resnet.data import load_dataset
    from gluon_resnet.predict import to_8bit
    from gluon_resnet.train import main
    out = tmp_path / 'run'
    fixture = copy_fixture_run('run-da35038', out)
    shutil.copy(out / 'last.ckpt', out / 'best.ckpt')
    state = load_checkpoint(str(out / 'last.ckpt'), tiny_net())
    assert (state['epoch'], state['batch']) == (2, 0)
    images = load_dataset('digits').test_images[:4, 0]
    predictions = predict(str(out), [to_8bit(image, 'digits') for image in images], top_k=2)
    assert [p.classes for p in predictions] == [(1, 8), (4, 9), (8, 0), (6, 1)]
    np.testing.assert_allclose([p.probabilities for p in predictions],
                               [(0.93118046, 0.03072084), (0.42620144, 0.15616174),
                                (0.54459276, 0.43275728), (0.77386510, 0.07698977)], atol=1e-4)
    main(['--resume', str(out)])
    assert f'{out} is complete: 2 of 2 epochs trained' in capsys.readouterr().out
    train_iter, test_iter, _ = load_data('digits', 64, image_size=16, seed=0)
    history = fit(get_model('cifar_resnet20_v1', num_classes=10), train_iter, test_iter, 2,
                  0.02, 'cpu', out=str(out), resume=True)
    rows = [json.loads(line) for line in (fixture / 'metrics.jsonl').read_text().splitlines()]
    assert history == {key: [row[key] for row in rows] for key in HISTORY_KEYS}
