"""The measurements of ``python -m benchmarks.run``: one function per kind of
variant, each run in a child process of its own, and the table of variants.

Each function takes a ``Setting`` (model, image side, batch), the warm-up and
timed step counts and the device (``'cpu'`` or ``'gpu'``), and returns a dict
with ``img_per_s`` and whatever else it learnt.  As nanoGPT's bench.py: burn
in, then time after a sync.  MXNet runs asynchronously, so a timed stretch
starts and ends with ``mx.nd.waitall()``; PyTorch on the CPU is synchronous,
on a GPU it ends with ``torch.cuda.synchronize()``.

Inputs are seeded random batches made before timing, the same two batches in
turn, except for ``fit`` and ``loader``, which draw from ``load_data``'s
synthetic set with the training transforms.  Every net has 1 input channel
and 10 classes, as Fashion-MNIST.

Nothing here imports ``gluon_resnet`` (or MXNet) at module level: the
``d2l-default`` child must run as a d2l student does, and importing
``gluon_resnet`` sets ``OMP_NUM_THREADS``.
"""
import math
import os
import resource
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ['Setting', 'SETTINGS', 'Variant', 'VARIANTS', 'variants_for', 'peak_gflops',
           'max_rss_mb', 'FASHION_MNIST_TRAIN', 'FASHION_MNIST_TEST']

NUM_CLASSES = 10
FASHION_MNIST_TRAIN, FASHION_MNIST_TEST = 60000, 10000
SGD = dict(learning_rate=0.05, momentum=0.9, wd=5e-4)  # the same update in every loop


@dataclass(frozen=True)
class Setting:
    model: str       # a gluon_resnet model name
    image_size: int  # images are (1, image_size, image_size)
    batch_size: int


SETTINGS = {
    'resnet18-28': Setting('resnet18', 28, 256),
    'resnet18-96': Setting('resnet18', 96, 128),  # d2l's Fashion-MNIST recipe resolution
    'resnet20-28': Setting('cifar_resnet20_v1', 28, 128),
}


# Helpers

def max_rss_mb():
    """Peak resident memory of this process so far, in MB (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(step, warmup, steps, sync):
    """Run ``step(i)`` for ``warmup`` steps, sync, then time ``steps`` steps up to a sync."""
    start = time.perf_counter()
    for i in range(warmup):
        step(i)
    sync()
    middle = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    sync()
    return dict(warmup_s=middle - start, seconds=time.perf_counter() - middle)


def _throughput(timing, steps, batch_size, **extra):
    return dict(img_per_s=steps * batch_size / timing['seconds'], **timing, **extra)


def _random_batches(setting, count=2):
    """``count`` seeded float32 batches ``(N, 1, H, W)`` and int32 labels ``(N,)`` (numpy)."""
    rng = np.random.default_rng(0)
    shape = (setting.batch_size, 1, setting.image_size, setting.image_size)
    return [(rng.standard_normal(shape, dtype=np.float32),
             rng.integers(0, NUM_CLASSES, setting.batch_size, dtype=np.int32))
            for _ in range(count)]


def _mx_batches(setting, ctx, module):
    """The random batches as arrays of ``module`` (``mx.nd`` or ``mx.np``) on ``ctx``."""
    return [(module.array(X, dtype=X.dtype, ctx=ctx), module.array(y, dtype=y.dtype, ctx=ctx))
            for X, y in _random_batches(setting)]


def _mx_ctx(device):
    import mxnet as mx
    return mx.gpu(0) if device == 'gpu' else mx.cpu()


def _mx_sync():
    import mxnet as mx
    mx.nd.waitall()


def _synthetic(setting, num_batches):
    """``load_data``'s synthetic set: 28x28 uint8 images as Fashion-MNIST's,
    resized to the setting's side, with the training transforms."""
    from gluon_resnet import load_data
    return load_data('synthetic', setting.batch_size, image_size=setting.image_size,
                     num_train=setting.batch_size * num_batches, num_test=setting.batch_size,
                     image_shape=(1, 28, 28), num_classes=NUM_CLASSES)


# MXNet

def mxnet_train(setting, warmup, steps, device, amp=False):
    """A bare training loop: the net hybridized with ``static_alloc`` and
    ``static_shape``, SGD, no per-step read-back."""
    import gluon_resnet as gr
    import mxnet as mx
    from mxnet import autograd, gluon
    from mxnet.contrib import amp as mx_amp
    if amp:
        mx_amp.init()  # before the net is built
    ctx = _mx_ctx(device)
    net = gr.initialize(gr.get_model(setting.model, num_classes=NUM_CLASSES), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', SGD)
    if amp:
        mx_amp.init_trainer(trainer)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    batches = _mx_batches(setting, ctx, mx.nd)

    def step(i):
        X, y = batches[i % len(batches)]
        with autograd.record():
            loss = loss_fn(net(X), y)
            if amp:
                with mx_amp.scale_loss(loss, trainer) as scaled:
                    autograd.backward(scaled)
        if not amp:
            loss.backward()
        trainer.step(setting.batch_size)

    return _throughput(_timed(step, warmup, steps, _mx_sync), steps, setting.batch_size)


def fit_train(setting, warmup, steps, device, amp=False):
    """Our ``fit`` for two epochs of ``steps`` batches of the synthetic set;
    its own images/s of the second (it times every training step, data
    included, not the end-of-epoch evaluation).  The first epoch is the
    burn-in, so ``warmup`` is not used."""
    import gluon_resnet as gr
    train_iter, test_iter, _ = _synthetic(setting, steps)
    net = gr.get_model(setting.model, num_classes=NUM_CLASSES)
    start = time.perf_counter()
    history = gr.fit(net, train_iter, test_iter, num_epochs=2, lr=SGD['learning_rate'],
                     ctx=device, momentum=SGD['momentum'], wd=SGD['wd'], amp=amp)
    return dict(img_per_s=history['img_per_s'][-1], total_s=time.perf_counter() - start,
                first_epoch_img_per_s=history['img_per_s'][0])


def mxnet_infer(setting, warmup, steps, device, backend=None):
    """Forward passes in predict mode of the net hybridized with
    ``static_alloc`` and ``static_shape``, or partitioned with
    ``optimize_for(X, backend=...)`` (oneDNN: convs fused with their
    BatchNorm, ReLU and additions) and ``static_alloc``."""
    import gluon_resnet as gr
    import mxnet as mx
    ctx = _mx_ctx(device)
    net = gr.initialize(gr.get_model(setting.model, num_classes=NUM_CLASSES), ctx=ctx)
    X, _ = _mx_batches(setting, ctx, mx.nd)[0]
    extra = {}
    if backend:
        # Not static_shape: with it MXNet 1.9.1 fails at the second call of the
        # partitioned resnet18 ("We can't generate TBlob for MKLDNN data").
        net.optimize_for(X, backend=backend, static_alloc=True)
        # An unknown backend only logs an error: count the fused oneDNN operators.
        graph = net._cached_graph[1].tojson()
        extra['fused_ops'] = graph.count('"op": "_sg_mkldnn')
    else:
        net.hybridize(static_alloc=True, static_shape=True)
    return _throughput(_timed(lambda i: net(X), warmup, steps, _mx_sync), steps,
                       setting.batch_size, **extra)


def loader(setting, warmup, steps, device):
    """``load_data``'s training iterator alone: gather, random crop, flip,
    normalise, resize, copy into MXNet arrays."""
    train_iter, _, _ = _synthetic(setting, warmup + steps)
    batches = iter(train_iter)
    for _ in range(warmup):
        next(batches)
    start = time.perf_counter()
    for X, y in batches:
        pass
    X.wait_to_read()
    return dict(img_per_s=steps * setting.batch_size / (time.perf_counter() - start))


# d2l

class _TimedBatches:
    """The batches ``train_ch6`` trains on: ``warmup + steps`` of them.

    ``train_ch6`` reads every step's loss back (``Accumulator.add`` calls
    ``float``), so when batch ``warmup`` is asked for, the earlier steps are
    done: the clock starts then and stops when the batches run out.  ``len``
    is that of a Fashion-MNIST epoch, so that ``train_ch6`` plots as often as
    in the book (5 times an epoch: not during these few steps).
    """

    def __init__(self, batches, warmup, steps, batch_size):
        self.batches, self.warmup, self.steps = batches, warmup, steps
        self.num_batches = math.ceil(FASHION_MNIST_TRAIN / batch_size)
        self.start = self.end = None

    def __len__(self):
        return self.num_batches

    def __iter__(self):
        for i in range(self.warmup + self.steps):
            if i == self.warmup:
                self.start = time.perf_counter()
            yield self.batches[i % len(self.batches)]
        self.end = time.perf_counter()


def d2l_train(setting, warmup, steps, device):
    """``d2l.train_ch6`` itself, one epoch of ``warmup + steps`` batches (see
    ``_TimedBatches``), then the test pass it runs after every epoch
    (``d2l.evaluate_accuracy_gpu``, imperative forward) timed on ``steps``
    batches after one."""
    import mxnet as mx
    from d2l import mxnet as d2l
    from mxnet import npx

    from .d2l_nets import d2l_resnet18
    npx.set_np()  # as every d2l 1.0 notebook starts
    # Choose matplotlib's backend now, before d2l's Animator creates an IPython
    # shell: matplotlib 3.7 then imports IPython's backend2gui, gone in IPython 9.
    d2l.plt.switch_backend('Agg')
    ctx = d2l.try_gpu() if device == 'gpu' else mx.cpu()
    net = d2l_resnet18(NUM_CLASSES)
    batches = _mx_batches(setting, ctx, mx.np)
    train_iter = _TimedBatches(batches, warmup, steps, setting.batch_size)
    d2l.train_ch6(net, train_iter, batches[:1], 1, SGD['learning_rate'], ctx)
    seconds = train_iter.end - train_iter.start
    d2l.evaluate_accuracy_gpu(net, batches[:1])
    start = time.perf_counter()
    d2l.evaluate_accuracy_gpu(net, [batches[i % 2] for i in range(steps)])
    eval_seconds = time.perf_counter() - start
    return dict(img_per_s=steps * setting.batch_size / seconds, seconds=seconds,
                eval_img_per_s=steps * setting.batch_size / eval_seconds,
                omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
                gluon_resnet_imported='gluon_resnet' in sys.modules)


# PyTorch

def _torch_setup(setting, device, channels_last):
    """The PyTorch twin of the setting's net, its batches and a sync function."""
    import torch
    from .torch_nets import count_parameters, torch_net
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS') or os.cpu_count()))
    dev = torch.device('cuda' if device == 'gpu' else 'cpu')
    net = torch_net(setting.model, 1, NUM_CLASSES).to(dev)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=layout)
    batches = [(torch.from_numpy(X).to(dev).contiguous(memory_format=layout),
                torch.from_numpy(y).long().to(dev)) for X, y in _random_batches(setting)]
    sync = torch.cuda.synchronize if device == 'gpu' else (lambda: None)
    return net, batches, sync, dict(params=count_parameters(net), torch=torch.__version__,
                                    torch_threads=torch.get_num_threads())


def torch_train(setting, warmup, steps, device, channels_last=False, compile=False, amp=False):
    """Training steps of the PyTorch twin: eager, channels-last or
    ``torch.compile``d (the first step compiles: ``first_step_s``); ``amp``:
    float16 autocast with a gradient scaler (GPU)."""
    import torch
    net, batches, sync, extra = _torch_setup(setting, device, channels_last)
    model = torch.compile(net) if compile else net
    optimizer = torch.optim.SGD(net.parameters(), lr=SGD['learning_rate'],
                                momentum=SGD['momentum'], weight_decay=SGD['wd'])
    scaler = torch.amp.GradScaler('cuda', enabled=amp)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(i):
        X, y = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast('cuda', dtype=torch.float16, enabled=amp):
            loss = loss_fn(model(X), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    start = time.perf_counter()
    step(0)
    sync()
    extra['first_step_s'] = time.perf_counter() - start
    return _throughput(_timed(step, warmup, steps, sync), steps, setting.batch_size, **extra)


def torch_infer(setting, warmup, steps, device):
    """Forward passes of the PyTorch twin in eval mode, channels-last, under
    ``torch.inference_mode()``."""
    import torch
    net, batches, sync, extra = _torch_setup(setting, device, channels_last=True)
    net.eval()
    X, _ = batches[0]

    def step(i):
        with torch.inference_mode():
            net(X)

    return _throughput(_timed(step, warmup, steps, sync), steps, setting.batch_size, **extra)


# The machine's matrix-multiply peak

def peak_gflops(size, device, repeats=3):
    """Best float32 GFLOP/s of a ``size`` x ``size`` matrix product, by numpy
    (its OpenBLAS) and by ``mx.nd.dot`` (MXNet's), each the best of ``repeats``
    after one warm-up; ``2 * size**3`` FLOPs a product."""
    import mxnet as mx
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    ctx = _mx_ctx(device)
    a_mx, b_mx = mx.nd.array(a, ctx=ctx), mx.nd.array(b, ctx=ctx)
    products = {'numpy': lambda: a @ b, 'mxnet': lambda: mx.nd.dot(a_mx, b_mx)}
    if device == 'gpu':
        del products['numpy']
    result = {}
    for name, product in products.items():
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            product()
            mx.nd.waitall()
            times.append(time.perf_counter() - start)
        result[f'{name}_gflops'] = 2 * size ** 3 / min(times[1:]) / 1e9
    return dict(gflops=max(result.values()), size=size, **result)


# Variants

@dataclass(frozen=True)
class Variant:
    """One row of the table at each setting.

    ``kind``: 'train', 'infer' or 'data'; ``framework``: 'mxnet', 'd2l' or
    'torch'; ``default_threads``: run with ``OMP_NUM_THREADS`` unset (MXNet's
    own choice, half the cores on x86), else it is the number of cores;
    ``devices``: where it runs.
    """
    name: str
    kind: str
    framework: str
    what: str
    measure: Callable
    kwargs: tuple = ()
    default_threads: bool = False
    devices: tuple = ('cpu', 'gpu')
    models: tuple = None  # None: every model

    def __call__(self, setting, warmup, steps, device):
        return self.measure(setting, warmup, steps, device, **dict(self.kwargs))


VARIANTS = [
    Variant('mxnet-bare', 'train', 'mxnet', 'hybridized loop, static_alloc + static_shape',
            mxnet_train),
    Variant('mxnet-bare-amp', 'train', 'mxnet', 'the same with float16 AMP', mxnet_train,
            (('amp', True),), devices=('gpu',)),
    Variant('fit', 'train', 'mxnet', 'gluon_resnet.fit, synthetic data, training transforms',
            fit_train),
    Variant('fit-amp', 'train', 'mxnet', 'fit(amp=True)', fit_train, (('amp', True),),
            devices=('gpu',)),
    Variant('d2l-default', 'train', 'd2l',
            "d2l.train_ch6, d2l's imperative ResNet-18, MXNet's default threads",
            d2l_train, default_threads=True, models=('resnet18',)),
    Variant('d2l-threads', 'train', 'd2l', 'the same with OMP_NUM_THREADS = cores', d2l_train,
            models=('resnet18',)),
    Variant('torch-eager', 'train', 'torch', 'PyTorch eager, NCHW', torch_train),
    Variant('torch-channels-last', 'train', 'torch', 'PyTorch eager, channels-last',
            torch_train, (('channels_last', True),)),
    Variant('torch-compile', 'train', 'torch', 'PyTorch torch.compile (inductor), NCHW',
            torch_train, (('compile', True),)),
    Variant('torch-amp', 'train', 'torch', 'PyTorch eager, float16 autocast', torch_train,
            (('amp', True),), devices=('gpu',)),
    Variant('mxnet-infer', 'infer', 'mxnet', 'hybridized, static_alloc + static_shape',
            mxnet_infer),
    Variant('mxnet-onednn', 'infer', 'mxnet', "optimize_for(X, backend='MKLDNN'), static_alloc",
            mxnet_infer, (('backend', 'MKLDNN'),), devices=('cpu',)),
    Variant('torch-infer', 'infer', 'torch', 'PyTorch eager, channels-last, inference_mode',
            torch_infer),
    Variant('loader', 'data', 'mxnet', 'load_data: crop, flip, normalise, resize', loader),
]
VARIANTS_BY_NAME = {variant.name: variant for variant in VARIANTS}


def variants_for(device):
    """The variants measured on ``device`` ('cpu' or 'gpu'), in table order."""
    return [variant for variant in VARIANTS if device in variant.devices]
