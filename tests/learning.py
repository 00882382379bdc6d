"""The training runs whose outcomes tests assert, shared with ``measure_margins.py``.

An outcome of training (accuracy, loss) depends on the last digits of the
arithmetic, and those differ between machines: oneDNN picks other kernels on
other CPUs, and at another thread count sums in another order.  A short run
at a high learning rate amplifies them: the old digits test reached 0.66 test
accuracy on one 2-core machine and 0.34 on another.  So each run here is set
up to be stable (warmup, enough steps for BatchNorm's running statistics to
settle, enough test images) and each threshold sits far below the worst value
measured over the variations of ``measure_margins.py``: seeds 0-4, hybridized
and imperative, oneDNN on and off (``MXNET_MKLDNN_ENABLED=0``: other kernels,
as on another machine), 1 and 2 threads.  Each test's docstring gives the
worst value and the margin; ``python tests/measure_margins.py`` measures
them again.
"""
import contextlib
from unittest import mock

import mxnet as mx
import numpy as np
from mxnet import gluon

from gluon_resnet import fit, get_model
from gluon_resnet.data import load_data, load_dataset

from fashion_subset import fashion_mnist_subset


def small_resnet():
    return get_model('cifar_resnet20_v1', num_classes=10)


def learn_digits(seed=0, hybridize=True):
    """CIFAR ResNet-20 on all 1,437 training digits at 16x16, 4 epochs
    (88 steps) with a warmup epoch; tested on the 360 test digits."""
    train_iter, test_iter, _ = load_data('digits', 64, image_size=16, seed=seed)
    return fit(small_resnet(), train_iter, test_iter, 4, 0.05, 'cpu', warmup_epochs=1,
               seed=seed, hybridize=hybridize)


def learn_fashion_mnist(seed=0, hybridize=True):
    """CIFAR ResNet-20 on 2,000 real Fashion-MNIST images at 28x28 (the
    shipped subset: ``fashion_subset.py``), without augmentation, 3 epochs
    with a warmup epoch; tested on 1,000 test images."""
    with fashion_mnist_subset() as data_dir:
        train_iter, test_iter, _ = load_data('fashion-mnist', 32, data_dir=data_dir,
                                             train_subset=2000, test_subset=1000,
                                             augment=False, seed=seed)
    return fit(small_resnet(), train_iter, test_iter, 3, 0.05, 'cpu', warmup_epochs=1,
               seed=seed, hybridize=hybridize)


@contextlib.contextmanager
def d2l_fashion_mnist(num_train, num_test):
    """d2l 1.0's ``load_data_fashion_mnist`` reading the first images of the
    shipped Fashion-MNIST subset instead of downloading them (gluon's
    ``FashionMNIST`` would), without worker processes; yields the ``d2l`` module."""
    from d2l import mxnet as d2l
    with fashion_mnist_subset() as data_dir:
        data = load_dataset('fashion-mnist', data_dir)
    splits = {True: (data.train_images[:num_train], data.train_labels[:num_train]),
              False: (data.test_images[:num_test], data.test_labels[:num_test])}

    def fashion_mnist(train=True):  # what gluon's dataset holds: (H, W, 1) uint8, int32
        images, labels = splits[train]
        return gluon.data.ArrayDataset(mx.np.array(images.transpose(0, 2, 3, 1), dtype='uint8'),
                                       labels)

    with mock.patch.object(gluon.data.vision, 'FashionMNIST', fashion_mnist), \
            mock.patch.object(d2l, 'get_dataloader_workers', lambda: 0):
        yield d2l


def learn_with_d2l_loader(seed=0, hybridize=True):
    """``fit`` in numpy mode on d2l's own loader (a gluon ``DataLoader`` of
    ``mx.np`` arrays): 2,048 Fashion-MNIST images, 3 epochs with a warmup
    epoch; tested on 1,000.  Returns ``(history, net, test_iter)``."""
    mx.npx.set_np()
    try:
        with d2l_fashion_mnist(2048, 1000) as d2l:
            np.random.seed(seed)  # gluon's RandomSampler shuffles with numpy's global generator
            train_iter, test_iter = d2l.load_data_fashion_mnist(32)
            net = small_resnet()
            history = fit(net, train_iter, test_iter, 3, 0.05, 'cpu', warmup_epochs=1,
                          seed=seed, hybridize=hybridize)
            return history, net, test_iter
    finally:
        mx.npx.reset_np()


RUNS = {'digits': learn_digits, 'fashion-mnist': learn_fashion_mnist,
        'd2l-loader': lambda seed, hybridize: learn_with_d2l_loader(seed, hybridize)[0]}
