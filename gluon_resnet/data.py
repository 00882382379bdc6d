"""Datasets and in-memory batch iterators for training ResNets with Gluon.

``load_data(name, batch_size)`` returns ``(train_iter, test_iter, info)``.
Each iterator yields ``(X, y)``: ``X`` float32 ``(batch, C, H, W)``,
normalised per channel with the training set's mean and std, and ``y`` int32
``(batch,)``; both MXNet arrays on the CPU (``mx.np`` after ``npx.set_np()``,
``mx.nd`` otherwise).

Datasets (``DATASETS``):

* ``digits``: scikit-learn's 1,797 bundled 8x8 digits (pixel values 0..16),
  split 80/20, stratified, with a fixed seed. Needs no files.
* ``fashion-mnist``: the official gzipped IDX files, from
  ``<data_dir>/fashion-mnist/``, then from Debian's ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist``), then downloaded.
* ``cifar10``: the *binary* version, from the extracted
  ``<data_dir>/cifar10/cifar-10-batches-bin/``, then from the archive
  ``<data_dir>/cifar10/cifar-10-binary.tar.gz``, then downloaded.
  Nothing is ever unpickled.
* ``synthetic``: seeded random images of any shape, for benchmarks.

Images are decoded once and kept as uint8 ``(N, C, H, W)``; each batch is
gathered, augmented (random crop with zero padding, optional horizontal flip,
at the native resolution), normalised and resized with vectorised numpy.
A training batch of 256 Fashion-MNIST images resized to 96x96 costs about
13 ms on one core (9 ms of it the resize), far less than a ResNet step on
it, so a ``gluon.data.DataLoader`` with worker processes would only add the
cost of shipping batches between processes.

Training randomness comes only from ``np.random.default_rng([seed, epoch])``
(the epoch's order) and ``np.random.default_rng([seed, epoch, batch])`` (that
batch's augmentation): ``train_iter.epoch(e, start_batch=k)`` resumes a run in
the middle of an epoch without replaying batches ``0..k-1``.
"""
import difflib
import gzip
import hashlib
import os
import struct
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, replace
from http.client import HTTPException
from pathlib import Path
from typing import NamedTuple, Optional

import mxnet as mx
import numpy as np
from tqdm import tqdm

DATASETS = ('digits', 'fashion-mnist', 'cifar10', 'synthetic')
DEFAULT_DATA_DIR = '~/.gluon_resnet/datasets'
DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
DIGITS_SPLIT_SEED = 0  # fixed, so the test set never depends on a training seed
DOWNLOAD_TIMEOUT = 30  # seconds without data before a download gives up

FASHION_MNIST_FILES = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
                       't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
FASHION_MNIST_CLASSES = ('t-shirt', 'trouser', 'pullover', 'dress', 'coat',
                         'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot')
CIFAR10_ARCHIVE = 'cifar-10-binary.tar.gz'
CIFAR10_FOLDER = 'cifar-10-batches-bin'  # the archive's top folder
CIFAR10_TRAIN_FILES = tuple(f'data_batch_{i}.bin' for i in range(1, 6))
CIFAR10_FILES = CIFAR10_TRAIN_FILES + ('test_batch.bin', 'batches.meta.txt')
CIFAR10_IMAGES_PER_FILE = 10_000
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32  # label byte, then R, G, B planes

URLS = {
    'fashion-mnist': {name: 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/' + name
                      for name in FASHION_MNIST_FILES},
    'cifar10': {CIFAR10_ARCHIVE: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'},
}
# Fashion-MNIST: sha256 of the *decompressed* IDX bytes, because Debian
# recompresses the official .gz files (same content, different .gz bytes).
# CIFAR-10: md5 of the archive, the only digest its authors publish.
CHECKSUMS = {
    'fashion-mnist': {
        'train-images-idx3-ubyte.gz': 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
        'train-labels-idx1-ubyte.gz': 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
        't10k-images-idx3-ubyte.gz': '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
        't10k-labels-idx1-ubyte.gz': '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
    },
    'cifar10': {CIFAR10_ARCHIVE: 'c32a1d4ab5d03f1284b67883e8d87530'},
}


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a report need to know about a dataset.

    ``image_shape`` is ``(C, H, W)`` as the iterators yield it; ``mean`` and
    ``std`` are per channel, in raw pixel units, of the training images used.
    """
    name: str
    num_classes: int
    classes: tuple
    image_shape: tuple
    num_train: int
    num_test: int
    mean: tuple
    std: tuple


class Dataset(NamedTuple):
    """Decoded images, uint8 ``(N, C, H, W)``, and int32 labels ``(N,)``."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    info: DatasetInfo


@dataclass(frozen=True)
class _Defaults:
    image_size: Optional[int]  # None: native size
    flip: bool  # mirror images when augmenting: wrong for digits


_DEFAULTS = {
    'digits': _Defaults(image_size=32, flip=False),  # 8x8 is too small for ResNet-18
    'fashion-mnist': _Defaults(image_size=28, flip=True),
    'cifar10': _Defaults(image_size=32, flip=True),
    'synthetic': _Defaults(image_size=None, flip=True),
}


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
    name = _check_name(name)
    batch_size = _check_positive_int(batch_size, 'batch_size')
    size = _check_image_size(image_size if image_size is not None else _DEFAULTS[name].image_size)
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
                             flip=augment and _DEFAULTS[name].flip, seed=seed)
    test_iter = ArrayLoader(test_images, test_labels, batch_size, mean, std, size)
    info = replace(data.info, image_shape=(channels, *size), num_train=len(train_labels),
                   num_test=len(test_labels), mean=mean, std=std)
    return train_iter, test_iter, info


def load_dataset(name, data_dir=None, **synthetic_kwargs):
    """Decode dataset ``name`` into a ``Dataset`` (a tuple of uint8 images
    ``(N, C, H, W)``, int32 labels ``(N,)`` for train and test, and info).

    ``data_dir`` defaults to ``~/.gluon_resnet/datasets``. ``synthetic_kwargs``
    (synthetic only): ``num_train``, ``num_test``, ``image_shape``,
    ``num_classes``, ``data_seed``.
    """
    name = _check_name(name)
    if synthetic_kwargs and name != 'synthetic':
        raise ValueError(f'{sorted(synthetic_kwargs)} apply only to the synthetic dataset, '
                         f'not {name!r}')
    folder = Path(data_dir or DEFAULT_DATA_DIR).expanduser() / name
    if name == 'digits':
        arrays = _read_digits()
    elif name == 'fashion-mnist':
        arrays = _read_fashion_mnist(folder)
    elif name == 'cifar10':
        arrays = _read_cifar10(folder)
    else:
        arrays = _make_synthetic(**synthetic_kwargs)
    train_images, train_labels, test_images, test_labels, classes = arrays
    mean, std = channel_mean_std(train_images)
    info = DatasetInfo(name, len(classes), tuple(classes), train_images.shape[1:],
                       len(train_labels), len(test_labels), mean, std)
    return Dataset(train_images, train_labels, test_images, test_labels, info)


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
        self.batch_size = _check_positive_int(batch_size, 'batch_size')
        self.train, self.pad, self.flip = train, pad, flip
        self.set_seed(seed)
        self.next_epoch = 0  # the epoch that plain iteration runs next
        self._mean = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
        self._inv_std = 1 / np.asarray(std, np.float32).reshape(1, -1, 1, 1)
        height, width = images.shape[2:]
        size = _check_image_size(image_size) or (height, width)
        self._resize = None if size == (height, width) else (
            _resize_matrix(height, size[0]), _resize_matrix(width, size[1]))

    def set_seed(self, seed):
        """Seed the order and augmentation of every epoch (a non-negative int)."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f'seed must be a non-negative int, got {seed!r}')
        self.seed = int(seed)

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
        epoch = _check_non_negative_int(epoch, 'epoch')
        start_batch = _check_non_negative_int(start_batch, 'start_batch')
        if start_batch > len(self):
            raise ValueError(f'start_batch={start_batch}: expected at most {len(self)}, '
                             'the batches per epoch')
        return self._batches(epoch, start_batch)

    def _batches(self, epoch, start_batch):
        order = (np.random.default_rng([self.seed, epoch]).permutation(len(self.labels))
                 if self.train else np.arange(len(self.labels)))
        for batch in range(start_batch, len(self)):
            indices = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            images = self.images[indices]
            if self.pad or self.flip:
                rng = np.random.default_rng([self.seed, epoch, batch])
                images = random_crop(images, self.pad, rng) if self.pad else images
                images = random_flip(images, rng) if self.flip else images
            yield _to_mxnet(self._normalise_and_resize(images)), _to_mxnet(self.labels[indices])

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


def channel_mean_std(images):
    """Per-channel mean and std (tuples of C floats) of uint8 ``(N, C, H, W)``,
    exact, from histograms rather than a float copy of the whole set."""
    counts = np.stack([np.bincount(images[:, c].ravel(), minlength=256)
                       for c in range(images.shape[1])]).astype(np.float64)
    values = np.arange(256, dtype=np.float64)
    mean = counts @ values / counts.sum(axis=1)
    std = np.sqrt(np.maximum(counts @ values ** 2 / counts.sum(axis=1) - mean ** 2, 0))
    std[std == 0] = 1  # a constant channel: leave it centred rather than divide by 0
    return tuple(mean.tolist()), tuple(std.tolist())


def _to_mxnet(array):
    # mx.nd.array with a dtype *string* is 7x slower than with a numpy dtype.
    module = mx.np if mx.util.is_np_array() else mx.nd
    return module.array(array, dtype=array.dtype, ctx=mx.cpu())


# ---------------------------------------------------------------- datasets

def _read_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = digits.images.astype(np.uint8)[:, None]  # (1797, 1, 8, 8), values 0..16
    labels = digits.target.astype(np.int32)
    train, test = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels,
                                   random_state=DIGITS_SPLIT_SEED)
    train, test = np.sort(train), np.sort(test)
    return images[train], labels[train], images[test], labels[test], tuple('0123456789')


def _make_synthetic(num_train=1024, num_test=256, image_shape=(3, 32, 32), num_classes=10,
                    data_seed=0):
    image_shape = tuple(image_shape)
    if len(image_shape) != 3:
        raise ValueError(f'image_shape={image_shape}: expected (C, H, W)')
    for value, what in [(num_train, 'num_train'), (num_test, 'num_test'),
                        (num_classes, 'num_classes'), *zip(image_shape, ('C', 'H', 'W'))]:
        _check_positive_int(value, what)
    rng = np.random.default_rng(data_seed)
    images = rng.integers(0, 256, size=(num_train + num_test, *image_shape), dtype=np.uint8)
    labels = rng.integers(0, num_classes, size=num_train + num_test).astype(np.int32)
    return (images[:num_train], labels[:num_train], images[num_train:], labels[num_train:],
            tuple(str(c) for c in range(num_classes)))


def _read_fashion_mnist(folder):
    paths = _fashion_mnist_paths(folder)
    train_images, train_labels = _read_idx_pair(paths['train-images-idx3-ubyte.gz'],
                                                paths['train-labels-idx1-ubyte.gz'])
    test_images, test_labels = _read_idx_pair(paths['t10k-images-idx3-ubyte.gz'],
                                              paths['t10k-labels-idx1-ubyte.gz'])
    return train_images, train_labels, test_images, test_labels, FASHION_MNIST_CLASSES


def _fashion_mnist_paths(folder):
    """``{file name: path}``: from ``folder``, else Debian's package, else
    downloaded into ``folder``."""
    paths = {}
    for name in FASHION_MNIST_FILES:
        for candidate in (folder / name, Path(DEBIAN_FASHION_MNIST_DIR) / name):
            if candidate.is_file():
                paths[name] = candidate
                break
    missing = [name for name in FASHION_MNIST_FILES if name not in paths]
    for name in missing:
        url, checksum = URLS['fashion-mnist'][name], CHECKSUMS['fashion-mnist'][name]
        try:
            _download(url, folder / name, lambda part: _read_gzip(part, checksum))
        except OSError as error:
            raise FileNotFoundError(
                f'Fashion-MNIST files not found: {", ".join(str(folder / m) for m in missing)}. '
                'Put the official files there, or install them with '
                f'`apt-get install dataset-fashion-mnist` (into {DEBIAN_FASHION_MNIST_DIR}). '
                f'Downloading {url} failed: {error}') from error
        paths[name] = folder / name
    return paths


def _read_idx_pair(image_file, label_file):
    """Images ``(N, 1, 28, 28)`` and int32 labels ``(N,)`` from two IDX files."""
    images = _parse_idx(_read_gzip(image_file, CHECKSUMS['fashion-mnist'][image_file.name]),
                        image_file, magic=2051, item_shape=(28, 28))[:, None]
    labels = _parse_idx(_read_gzip(label_file, CHECKSUMS['fashion-mnist'][label_file.name]),
                        label_file, magic=2049, item_shape=()).astype(np.int32)
    _check_labels(labels, len(FASHION_MNIST_CLASSES), label_file)
    if len(images) != len(labels):
        raise ValueError(f'{image_file} holds {len(images)} images but {label_file} '
                         f'{len(labels)} labels: expected as many of each')
    return images, labels


def _read_gzip(path, sha256):
    """The decompressed bytes of ``path``, checked against their sha256."""
    try:
        with gzip.open(path, 'rb') as file:
            data = file.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(f'{path} is corrupted or truncated: expected a complete gzip file '
                         f'({error})') from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ValueError(f'{path} is corrupted or not the official file: the sha256 of its '
                         f'decompressed content is {digest}, expected {sha256}')
    return data


def _parse_idx(data, path, magic, item_shape):
    """An IDX array: big-endian magic and dimensions, then uint8 values."""
    header_size = 4 * (2 + len(item_shape))
    if len(data) < header_size:
        raise ValueError(f'{path}: {len(data)} bytes, expected an IDX header of {header_size}')
    found_magic, *dims = struct.unpack(f'>{2 + len(item_shape)}I', data[:header_size])
    if found_magic != magic:
        raise ValueError(f'{path}: IDX magic number {found_magic}, expected {magic}')
    if tuple(dims[1:]) != item_shape:
        raise ValueError(f'{path}: items of shape {tuple(dims[1:])}, expected {item_shape}')
    if len(data) != header_size + int(np.prod(dims)):
        raise ValueError(f'{path}: {len(data)} bytes, expected {header_size + int(np.prod(dims))} '
                         f'for {dims[0]} items of shape {item_shape}')
    return np.frombuffer(data, np.uint8, offset=header_size).reshape(dims)


def _read_cifar10(folder):
    contents = _cifar10_file_contents(folder)  # file name -> (bytes, where it came from)
    train = [_parse_cifar10_records(*contents[name]) for name in CIFAR10_TRAIN_FILES]
    test_images, test_labels = _parse_cifar10_records(*contents['test_batch.bin'])
    meta, meta_source = contents['batches.meta.txt']
    lines = meta.decode('ascii', 'replace').splitlines()
    classes = tuple(line.strip() for line in lines if line.strip())
    if len(classes) != 10:
        raise ValueError(f'{meta_source}: {len(classes)} class names, expected 10 (one per line)')
    train_images, train_labels = (np.concatenate(arrays) for arrays in zip(*train))
    return train_images, train_labels, test_images, test_labels, classes


def _cifar10_file_contents(folder):
    extracted, archive = folder / CIFAR10_FOLDER, folder / CIFAR10_ARCHIVE
    if all((extracted / name).is_file() for name in CIFAR10_FILES):
        return {name: ((extracted / name).read_bytes(), extracted / name) for name in CIFAR10_FILES}
    if archive.is_file():
        _check_md5(archive, CHECKSUMS['cifar10'][CIFAR10_ARCHIVE])
    else:
        url, md5 = URLS['cifar10'][CIFAR10_ARCHIVE], CHECKSUMS['cifar10'][CIFAR10_ARCHIVE]
        try:
            _download(url, archive, lambda part: _check_md5(part, md5))
        except OSError as error:
            raise FileNotFoundError(
                f'CIFAR-10 (binary version) not found: put {archive}, or its extracted files '
                f'{", ".join(CIFAR10_FILES)} in {extracted}. '
                f'Downloading {url} failed: {error}') from error
    return _read_tar_members(archive, {f'{CIFAR10_FOLDER}/{name}': name for name in CIFAR10_FILES})


def _read_tar_members(archive, wanted):
    """``{file name: (bytes, source)}`` for the members ``wanted`` (member
    path -> file name), read in one pass without extracting anything."""
    contents = {}
    with tarfile.open(archive, 'r:gz') as tar:
        for member in tar:
            if member.name in wanted and member.isfile():
                content = tar.extractfile(member).read()
                contents[wanted[member.name]] = (content, f'{archive}:{member.name}')
    missing = [path for path, name in wanted.items() if name not in contents]
    if missing:
        raise ValueError(f'{archive} lacks {", ".join(missing)}: '
                         'expected the CIFAR-10 binary archive')
    return contents


def _parse_cifar10_records(data, source):
    """Images ``(N, 3, 32, 32)`` and labels of CIFAR-10 binary records."""
    expected = CIFAR10_IMAGES_PER_FILE * CIFAR10_RECORD_BYTES
    if len(data) != expected:
        raise ValueError(f'{source}: {len(data)} bytes, expected {expected} '
                         f'({CIFAR10_IMAGES_PER_FILE} records of {CIFAR10_RECORD_BYTES} bytes)')
    records = np.frombuffer(data, np.uint8).reshape(CIFAR10_IMAGES_PER_FILE, CIFAR10_RECORD_BYTES)
    labels = records[:, 0].astype(np.int32)
    _check_labels(labels, 10, source)
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _check_labels(labels, num_classes, source):
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f'{source}: label {labels.max()}, expected labels 0..{num_classes - 1}')


def _check_md5(path, md5):
    digest = hashlib.md5()
    with open(path, 'rb') as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != md5:
        raise ValueError(f'{path} is corrupted or truncated: md5 {digest.hexdigest()}, '
                         f'expected {md5}')


# ---------------------------------------------------------------- download

def _download(url, destination, verify):
    """Download ``url`` to ``destination`` through ``destination.part``.

    Resumes an existing ``.part`` with an HTTP Range request; ``verify(part)``
    must pass (else ``ValueError``, and the bad ``.part`` is deleted) before
    the ``.part`` is renamed, atomically, to ``destination``. Network errors
    raise ``OSError`` and keep the ``.part`` for the next attempt.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + '.part')
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={'Range': f'bytes={start}-'} if start else {})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
            _save_response(response, part, start, destination.name)
    except urllib.error.HTTPError as error:
        if error.code != 416:  # 416 Range Not Satisfiable: the .part is already complete
            raise
    except HTTPException as error:  # e.g. IncompleteRead: a network error too
        raise OSError(f'{url}: {error!r}') from error
    try:
        verify(part)
    except ValueError as error:
        part.unlink()
        raise ValueError(f'the download of {url} is corrupted (deleted it): {error}') from error
    os.replace(part, destination)


def _save_response(response, part, start, label):
    content_range = response.headers.get('Content-Range', '')
    resumed = response.status == 206 and content_range.startswith(f'bytes {start}-')
    start = start if resumed else 0  # a server that ignores Range sends everything again
    length = response.headers.get('Content-Length')
    total = start + int(length) if length else None
    received = start
    with open(part, 'ab' if resumed else 'wb') as file, \
            tqdm(total=total, initial=start, unit='B', unit_scale=True, desc=label,
                 file=sys.stderr) as bar:
        while chunk := response.read(1 << 16):
            file.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if total is not None and received < total:
        raise OSError(f'connection closed after {received} of {total} bytes')


# ---------------------------------------------------------------- validation

def _check_name(name):
    if name in DATASETS:
        return name
    closest = difflib.get_close_matches(str(name).lower(), DATASETS, n=1)
    hint = f'; did you mean {closest[0]!r}?' if closest else ''
    raise ValueError(f'unknown dataset {name!r}: expected one of {", ".join(DATASETS)}{hint}')


def _check_positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f'{what} must be a positive int, got {value!r}')
    return int(value)


def _check_non_negative_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f'{what} must be a non-negative int, got {value!r}')
    return int(value)


def _check_image_size(image_size):
    """``(H, W)`` from an int or a pair of positive ints; ``None`` stays ``None``."""
    if image_size is None:
        return None
    sizes = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
    try:
        height, width = sizes
        return _check_positive_int(height, 'image_size'), _check_positive_int(width, 'image_size')
    except (TypeError, ValueError):
        raise ValueError(f'image_size must be a positive int or a pair (H, W) of them, '
                         f'got {image_size!r}') from None


def _subset(images, labels, size, what):
    """The first ``size`` images in class-balanced order (ranks 0 of every
    class, then ranks 1, ...), kept in their original order; all if None."""
    if size is None:
        return images, labels
    size = _check_positive_int(size, what)
    if size > len(labels):
        raise ValueError(f'{what}={size}: expected at most the {len(labels)} images available')
    by_class = np.argsort(labels, kind='stable')
    rank = np.empty(len(labels), np.int64)
    rank[by_class] = np.arange(len(labels)) - np.searchsorted(labels[by_class], labels[by_class])
    chosen = np.sort(np.lexsort((labels, rank))[:size])
    return images[chosen], labels[chosen]
