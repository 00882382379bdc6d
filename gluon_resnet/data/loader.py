"""In-memory batch iterators: ``load_data`` and ``ArrayLoader``, and their transforms.

``load_data(name, batch_size)`` returns ``(train_iter, test_iter, info)``.
Each iterator yields ``(X, y)``: ``X`` float32 ``(batch, C, H, W)``,
normalised per channel with the training set's mean and std, and ``y`` int32
``(batch,)``; both MXNet arrays on the CPU (``mx.np`` after ``npx.set_np()``,
``mx.nd`` otherwise).

Each batch is gathered from the uint8 ``(N, C, H, W)`` images, augmented
(random crop with zero padding, optional horizontal flip, at the native
resolution), normalised and resized with vectorised numpy. A training batch
of 256 Fashion-MNIST images resized to 96x96 costs about 13 ms on one core
(9 ms of it the resize), far less than a ResNet step on it, so a
``gluon.data.DataLoader`` with worker processes would only add the cost of
shipping batches between processes.

Training randomness comes only from ``np.random.default_rng([seed, epoch])``
(the epoch's order) and ``np.random.default_rng([seed, epoch, batch])`` (that
batch's augmentation): ``train_iter.epoch(e, start_batch=k)`` resumes a run in
the middle of an epoch without replaying batches ``0..k-1``.

Distributed training: ``train_iter.shard(rank, num_workers)`` is worker
``rank``'s part of every batch of the same seeded order (see ``ArrayLoader.shard``).
"""
import copy
from dataclasses import replace

import mxnet as mx
import numpy as np

from ..checks import check_int, is_integer
from .datasets import channel_mean_std, dataset_record, load_dataset

__all__ = ['load_data', 'ArrayLoader', 'random_crop', 'random_flip', 'resize']


# ---------------------------------------------------------------- public API

def load_data(name, batch_size, image_size=None, data_dir=None, seed=0, augment=True,
              train_subset=None, test_subset=None, **synthetic_kwargs):
    """Return ``(train_iter, test_iter, info)`` for dataset ``name``.

    ``image_size``: int or ``(H, W)`` to resize to; ``None`` is the dataset's
    default (digits 32, fashion-mnist 28, cifar10 32, synthetic native).
    ``augment``: random crop (zero padding ~1/8 of the side) and, for
    fashion-mnist/cifar10/synthetic, horizontal flip; training set only.
    ``train_subset``/``test_subset``: keep that many images, balanced over
    classes, deterministically. ``synthetic_kwargs`` go to the synthetic set.
    """
    record = dataset_record(name)
    batch_size = check_int(batch_size, 'batch_size', minimum=1)
    size = _check_image_size(image_size if image_size is not None else record.image_size)
    data = load_dataset(name, data_dir, **synthetic_kwargs)
    train_images, train_labels = _subset(data.train_images, data.train_labels, train_subset,
                                         'train_subset')
    test_images, test_labels = _subset(data.test_images, data.test_labels, test_subset,
                                       'test_subset')
    if batch_size > len(train_labels):
        raise ValueError(f'batch_size={batch_size} is larger than the {len(train_labels)} training '
                         'images: expected at most that, or no batch would be produced')
    mean, std = channel_mean_std(train_images)
    channels, height, width = train_images.shape[1:]
    size = size or (height, width)
    train_iter = ArrayLoader(train_images, train_labels, batch_size, mean, std, size, train=True,
                             pad=max(1, round(height / 8)) if augment else 0,
                             flip=augment and record.flip, seed=seed)
    test_iter = ArrayLoader(test_images, test_labels, batch_size, mean, std, size)
    info = replace(data.info, image_shape=(channels, *size), num_train=len(train_labels),
                   num_test=len(test_labels), mean=mean, std=std)
    return train_iter, test_iter, info


class ArrayLoader:
    """Batches ``(X, y)`` from uint8 images ``(N, C, H, W)`` and labels ``(N,)``.

    ``X``: float32 ``(batch, C, *image_size)``, ``(x - mean) / std`` per
    channel; ``y``: int32 ``(batch,)``. ``len()`` is the number of batches.
    A training loader (``train=True``) shuffles every epoch, drops the last
    partial batch (BatchNorm dislikes tiny batches) and augments: ``pad`` > 0
    crops at a random offset from the image zero-padded by ``pad`` pixels,
    ``flip`` mirrors half of the images; both at the native size, before the
    resize. A test loader keeps the order and every image.
    """

    def __init__(self, images, labels, batch_size, mean, std, image_size=None, train=False,
                 pad=0, flip=False, seed=0):
        if not train and (pad or flip):
            raise ValueError('pad and flip augment a training loader: expected train=True')
        self.images, self.labels = images, np.asarray(labels, dtype=np.int32)
        self.batch_size = check_int(batch_size, 'batch_size', minimum=1)
        self.train, self.pad, self.flip = train, pad, flip
        self.set_seed(seed)
        self.next_epoch = 0  # the epoch that plain iteration runs next
        self.part = (0, 1)  # (rank, num_workers) of a training shard: see ``shard``
        self._mean = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
        self._inv_std = 1 / np.asarray(std, np.float32).reshape(1, -1, 1, 1)
        height, width = images.shape[2:]
        size = _check_image_size(image_size) or (height, width)
        self._resize = None if size == (height, width) else (
            _resize_matrix(height, size[0]), _resize_matrix(width, size[1]))

    def set_seed(self, seed):
        """Seed the order and augmentation of every epoch (a non-negative integer)."""
        self.seed = check_int(seed, 'seed', minimum=0)

    def shard(self, rank, num_workers):
        """Worker ``rank``'s part of this loader, for ``num_workers`` workers
        that train one net together (``training.fit(..., kvstore='dist_sync')``).

        A training loader: epoch e has the same seeded order and augmentation
        as here, and batch k of the shard is slice ``rank`` of batch k here,
        ``batch_size / num_workers`` images (which must divide evenly): the
        shards of an epoch are disjoint, together they are this loader's
        batches, and ``len()`` is the same on every worker (the last partial
        batch is dropped as here), so every worker runs as many steps (in
        ``dist_sync`` a worker with a step less would leave the others
        waiting for it for ever).  A test loader: every ``num_workers``-th
        image from ``rank`` on, in batches of ``batch_size``.
        """
        num_workers = check_int(num_workers, 'num_workers', minimum=1)
        rank = check_int(rank, 'rank', minimum=0, maximum=num_workers - 1)
        if self.part != (0, 1):
            raise ValueError(f'this loader is shard {self.part[0]} of {self.part[1]} already: '
                             'shard the whole loader')
        if self.train and self.batch_size % num_workers:
            raise ValueError(f'a batch of {self.batch_size} images cannot be split evenly over '
                             f'{num_workers} workers: use a batch size that is a multiple of '
                             f'{num_workers}')
        shard = copy.copy(self)
        shard.part = (rank, num_workers)
        if not self.train:
            shard.images, shard.labels = (self.images[rank::num_workers],
                                          self.labels[rank::num_workers])
        return shard

    def __len__(self):
        if self.train:
            return len(self.labels) // self.batch_size
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        """Run epoch ``next_epoch`` (0 first, then 1, 2, ...) from its start,
        so a plain ``for X, y in train_iter`` loop sees a new order each epoch."""
        epoch = self.next_epoch
        self.next_epoch += 1
        return self.epoch(epoch)

    def epoch(self, epoch, start_batch=0):
        """Iterator over the batches ``start_batch, ...`` of epoch ``epoch``;
        the same batches whether or not the earlier ones were drawn."""
        epoch = check_int(epoch, 'epoch', minimum=0)
        start_batch = check_int(start_batch, 'start_batch', minimum=0)
        if start_batch > len(self):
            raise ValueError(f'start_batch={start_batch}: expected at most {len(self)}, '
                             'the batches per epoch')
        return self._batches(epoch, start_batch)

    def _batches(self, epoch, start_batch):
        order = (np.random.default_rng([self.seed, epoch]).permutation(len(self.labels))
                 if self.train else np.arange(len(self.labels)))
        rank, num_workers = self.part if self.train else (0, 1)  # a test shard: its own images
        size = self.batch_size // num_workers
        mine = slice(rank * size, (rank + 1) * size)  # of every batch: all of it on one worker
        for batch in range(start_batch, len(self)):
            indices = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            if self.pad or self.flip:  # the whole batch, so a shard draws what one process draws
                rng = np.random.default_rng([self.seed, epoch, batch])
                images = self.images[indices]
                images = random_crop(images, self.pad, rng) if self.pad else images
                images = random_flip(images, rng) if self.flip else images
                images = images[mine]
            else:
                images = self.images[indices[mine]]
            yield (_to_mxnet(self._normalise_and_resize(images)),
                   _to_mxnet(self.labels[indices[mine]]))

    def _normalise_and_resize(self, images):
        # Normalising first is cheaper (fewer pixels) and equivalent: each row
        # of a resize matrix sums to 1, so resizing commutes with x -> (x-m)/s.
        x = (images.astype(np.float32) - self._mean) * self._inv_std
        return x if self._resize is None else resize(x, *self._resize)


# ---------------------------------------------------------------- transforms

def random_crop(images, pad, rng):
    """Crop each of the images ``(N, C, H, W)``, zero-padded by ``pad`` pixels
    on every side, back to ``(H, W)`` at an offset drawn from ``rng``."""
    n, channels, height, width = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    top, left = rng.integers(0, 2 * pad + 1, size=(2, n))
    rows = (top[:, None] + np.arange(height))[:, None, :, None]
    cols = (left[:, None] + np.arange(width))[:, None, None, :]
    return padded[np.arange(n)[:, None, None, None], np.arange(channels)[None, :, None, None],
                  rows, cols]


def random_flip(images, rng):
    """Mirror left-right each image of ``(N, C, H, W)`` with probability 1/2."""
    mirrored = rng.random(len(images)) < 0.5
    return np.where(mirrored[:, None, None, None], images[..., ::-1], images)


def resize(x, rows, cols):
    """Resize float32 ``(N, C, H, W)`` to ``(N, C, H', W')`` with the
    ``(H', H)`` and ``(W', W)`` matrices of ``_resize_matrix``."""
    n, channels, height, width = x.shape
    # Two large GEMMs rather than N*C small ones; the transposes copy only
    # arrays of the input's width, the output comes out in place.
    x = rows @ x.reshape(n * channels, height, width).transpose(1, 0, 2).reshape(height, -1)
    x = x.reshape(len(rows), n * channels, width).transpose(1, 0, 2).reshape(-1, width)
    return (x @ cols.T).reshape(n, channels, len(rows), len(cols))


def _resize_matrix(size_in, size_out):
    """``(size_out, size_in)`` float32 weights of a bilinear resize with
    half-pixel centres (as PIL and OpenCV); the triangle filter is widened
    when shrinking, so downsampling averages instead of aliasing."""
    scale = max(size_in / size_out, 1.0)
    centres = (np.arange(size_out) + 0.5) * size_in / size_out - 0.5
    weights = np.maximum(0.0, 1 - np.abs(np.arange(size_in) - centres[:, None]) / scale)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _to_mxnet(array):
    """``array`` (a fresh numpy array, made read-only) as an MXNet array sharing its memory.

    Not ``mx.nd.array``: its copy waits until MXNet's engine has run every
    operation queued before it (the whole previous training step), so the
    next step could not be queued while this one computes; ``from_numpy``
    waits for nothing (measured: 198 ms against 0.2 ms behind a busy queue)."""
    shared = mx.nd.from_numpy(np.ascontiguousarray(array), zero_copy=True)
    return shared.as_np_ndarray() if mx.util.is_np_array() else shared


# ---------------------------------------------------------------- validation

def _check_image_size(image_size):
    """``(H, W)`` from an integer or a pair of positive integers; ``None`` stays ``None``."""
    if image_size is None:
        return None
    sizes = (image_size, image_size) if is_integer(image_size) else image_size
    try:
        height, width = sizes
        return check_int(height, 'image_size', minimum=1), check_int(width, 'image_size', minimum=1)
    except (TypeError, ValueError):
        raise ValueError('image_size must be a positive integer or a pair (H, W) of them, '
                         f'got {image_size!r}') from None


def _subset(images, labels, size, what):
    """The first ``size`` images in class-balanced order (ranks 0 of every
    class, then ranks 1, ...), kept in their original order; all if None."""
    if size is None:
        return images, labels
    size = check_int(size, what, minimum=1)
    if size > len(labels):
        raise ValueError(f'{what}={size}: expected at most the {len(labels)} images available')
    by_class = np.argsort(labels, kind='stable')
    rank = np.empty(len(labels), np.int64)
    rank[by_class] = np.arange(len(labels)) - np.searchsorted(labels[by_class], labels[by_class])
    chosen = np.sort(np.lexsort((labels, rank))[:size])
    return images[chosen], labels[chosen]
