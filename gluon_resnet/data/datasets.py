"""Datasets: one record each, and the reading, downloading and verifying of their files.

``DATASETS_BY_NAME`` (at the end) holds one ``DatasetRecord`` per dataset:
its reader, classes, default image size, whether mirroring is valid and the
files it may download, with their URLs and checksums. Adding a dataset is one
entry there. ``load_dataset(name)`` decodes one into a ``Dataset``.

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

Images are decoded once and kept as uint8 ``(N, C, H, W)``, labels as int32
``(N,)``. A download goes to ``<file>.part`` (resumed with an HTTP Range
request after an interruption), is verified, then renamed into place with
``files.commit``.
"""
import difflib
import gzip
import hashlib
import struct
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np
from tqdm import tqdm

from .. import files
from ..checks import check_int

__all__ = ['DATASETS', 'DATASETS_BY_NAME', 'DEFAULT_DATA_DIR', 'DEBIAN_FASHION_MNIST_DIR',
           'DatasetInfo', 'Dataset', 'DataFile', 'DatasetRecord', 'load_dataset',
           'dataset_record', 'channel_mean_std']

DEFAULT_DATA_DIR = '~/.gluon_resnet/datasets'
DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
DIGITS_SPLIT_SEED = 0  # fixed, so the test set never depends on a training seed
DOWNLOAD_TIMEOUT = 30  # seconds without data before a download gives up

FASHION_MNIST_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'
CIFAR10_ARCHIVE = 'cifar-10-binary.tar.gz'
CIFAR10_FOLDER = 'cifar-10-batches-bin'  # the archive's top folder
CIFAR10_TRAIN_FILES = tuple(f'data_batch_{i}.bin' for i in range(1, 6))
CIFAR10_FILES = CIFAR10_TRAIN_FILES + ('test_batch.bin', 'batches.meta.txt')
CIFAR10_IMAGES_PER_FILE = 10_000
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32  # label byte, then R, G, B planes


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
class DataFile:
    """A file a dataset may download: its name in the dataset's folder, its
    URL and the hex digest that proves it official (which digest, of what,
    the dataset's record says)."""
    name: str
    url: str
    checksum: str


@dataclass(frozen=True)
class DatasetRecord:
    """Everything known about a dataset before reading it.

    ``read(record, folder, **options)`` returns ``(train_images, train_labels,
    test_images, test_labels, classes)``: uint8 ``(N, C, H, W)`` images and
    int32 ``(N,)`` labels, from ``folder`` (``<data_dir>/<name>``) or
    downloaded into it. ``classes``: the class names, ``None`` where they
    depend on the options. ``image_size``: the side ``load_data`` resizes to
    by default, ``None`` for the native size. ``flip``: whether a mirrored
    image still shows its class. ``files``: what ``read`` may download, a
    tuple of ``DataFile``.  ``native_size``: ``(H, W)`` of its images
    (``None``: any); ``pixel_max``: a raw pixel's largest value, which an
    8-bit image's 255 stands for when a photo is classified (``predict``).
    """
    name: str
    read: Callable
    classes: Optional[tuple]
    image_size: Optional[int]
    flip: bool
    files: tuple = ()
    native_size: Optional[tuple] = None
    pixel_max: int = 255

    def file(self, name):
        """The ``DataFile`` called ``name``."""
        return next(file for file in self.files if file.name == name)


# ---------------------------------------------------------------- public API

def load_dataset(name, data_dir=None, **synthetic_kwargs):
    """Decode dataset ``name`` into a ``Dataset`` (a tuple of uint8 images
    ``(N, C, H, W)``, int32 labels ``(N,)`` for train and test, and info).

    ``data_dir`` defaults to ``~/.gluon_resnet/datasets``. ``synthetic_kwargs``
    (synthetic only): ``num_train``, ``num_test``, ``image_shape``,
    ``num_classes``, ``data_seed``.
    """
    record = dataset_record(name)
    if synthetic_kwargs and name != 'synthetic':
        raise ValueError(f'{sorted(synthetic_kwargs)} apply only to the synthetic dataset, '
                         f'not {name!r}')
    folder = Path(data_dir or DEFAULT_DATA_DIR).expanduser() / name
    train_images, train_labels, test_images, test_labels, classes = record.read(
        record, folder, **synthetic_kwargs)
    mean, std = channel_mean_std(train_images)
    info = DatasetInfo(name, len(classes), tuple(classes), train_images.shape[1:],
                       len(train_labels), len(test_labels), mean, std)
    return Dataset(train_images, train_labels, test_images, test_labels, info)


def dataset_record(name):
    """The ``DatasetRecord`` of dataset ``name``; an unknown name raises
    ``ValueError`` listing the known ones and the closest."""
    if isinstance(name, str) and name in DATASETS_BY_NAME:
        return DATASETS_BY_NAME[name]
    names = list(DATASETS_BY_NAME)
    closest = difflib.get_close_matches(str(name).lower(), names, n=1)
    hint = f'; did you mean {closest[0]!r}?' if closest else ''
    raise ValueError(f'unknown dataset {name!r}: expected one of {", ".join(names)}{hint}')


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


# ---------------------------------------------------------------- readers

def _read_digits(record, folder):
    """Bundled with scikit-learn: nothing is read from ``folder``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = digits.images.astype(np.uint8)[:, None]  # (1797, 1, 8, 8), values 0..16
    labels = digits.target.astype(np.int32)
    train, test = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels,
                                   random_state=DIGITS_SPLIT_SEED)
    train, test = np.sort(train), np.sort(test)
    return images[train], labels[train], images[test], labels[test], record.classes


def _make_synthetic(record, folder, num_train=1024, num_test=256, image_shape=(3, 32, 32),
                    num_classes=10, data_seed=0):
    """Random images and labels from ``data_seed``: nothing touches ``folder``."""
    image_shape = tuple(image_shape)
    if len(image_shape) != 3:
        raise ValueError(f'image_shape={image_shape}: expected (C, H, W)')
    for value, what in [(num_train, 'num_train'), (num_test, 'num_test'),
                        (num_classes, 'num_classes'), *zip(image_shape, ('C', 'H', 'W'))]:
        check_int(value, what, minimum=1)
    rng = np.random.default_rng(data_seed)
    images = rng.integers(0, 256, size=(num_train + num_test, *image_shape), dtype=np.uint8)
    labels = rng.integers(0, num_classes, size=num_train + num_test).astype(np.int32)
    return (images[:num_train], labels[:num_train], images[num_train:], labels[num_train:],
            tuple(str(c) for c in range(num_classes)))


def _read_fashion_mnist(record, folder):
    paths = _fashion_mnist_paths(record, folder)
    train_images, train_labels = _read_idx_pair(record, paths['train-images-idx3-ubyte.gz'],
                                                paths['train-labels-idx1-ubyte.gz'])
    test_images, test_labels = _read_idx_pair(record, paths['t10k-images-idx3-ubyte.gz'],
                                              paths['t10k-labels-idx1-ubyte.gz'])
    return train_images, train_labels, test_images, test_labels, record.classes


def _fashion_mnist_paths(record, folder):
    """``{file name: path}``: from ``folder``, else Debian's package, else
    downloaded into ``folder``."""
    paths = {}
    for name in (file.name for file in record.files):
        for candidate in (folder / name, Path(DEBIAN_FASHION_MNIST_DIR) / name):
            if candidate.is_file():
                paths[name] = candidate
                break
    missing = [file for file in record.files if file.name not in paths]
    for file in missing:
        try:
            _download(file.url, folder / file.name, lambda part: _read_gzip(part, file.checksum))
        except OSError as error:
            raise FileNotFoundError(
                'Fashion-MNIST files not found: '
                f'{", ".join(str(folder / m.name) for m in missing)}. '
                'Put the official files there, or install them with '
                f'`apt-get install dataset-fashion-mnist` (into {DEBIAN_FASHION_MNIST_DIR}). '
                f'Downloading {file.url} failed: {error}') from error
        paths[file.name] = folder / file.name
    return paths


def _read_idx_pair(record, image_file, label_file):
    """Images ``(N, 1, 28, 28)`` and int32 labels ``(N,)`` from two IDX files."""
    images = _parse_idx(_read_gzip(image_file, record.file(image_file.name).checksum),
                        image_file, magic=2051, item_shape=(28, 28))[:, None]
    labels = _parse_idx(_read_gzip(label_file, record.file(label_file.name).checksum),
                        label_file, magic=2049, item_shape=()).astype(np.int32)
    _check_labels(labels, len(record.classes), label_file)
    if len(images) != len(labels):
        raise ValueError(f'{image_file} holds {len(images)} images but {label_file} '
                         f'{len(labels)} labels: expected as many of each')
    return images, labels


def _read_gzip(path, sha256):
    """The decompressed bytes of ``path``, checked against their sha256."""
    try:
        with gzip.open(path, 'rb') as file:
            content = file.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(f'{path} is corrupted or truncated: expected a complete gzip file '
                         f'({error})') from error
    digest = hashlib.sha256(content).hexdigest()
    if digest != sha256:
        raise ValueError(f'{path} is corrupted or not the official file: the sha256 of its '
                         f'decompressed content is {digest}, expected {sha256}')
    return content


def _parse_idx(content, path, magic, item_shape):
    """An IDX array: big-endian magic and dimensions, then uint8 values."""
    header_size = 4 * (2 + len(item_shape))
    if len(content) < header_size:
        raise ValueError(f'{path}: {len(content)} bytes, expected an IDX header of {header_size}')
    found_magic, *dims = struct.unpack(f'>{2 + len(item_shape)}I', content[:header_size])
    if found_magic != magic:
        raise ValueError(f'{path}: IDX magic number {found_magic}, expected {magic}')
    if tuple(dims[1:]) != item_shape:
        raise ValueError(f'{path}: items of shape {tuple(dims[1:])}, expected {item_shape}')
    if len(content) != header_size + int(np.prod(dims)):
        raise ValueError(f'{path}: {len(content)} bytes, expected '
                         f'{header_size + int(np.prod(dims))} for {dims[0]} items of shape '
                         f'{item_shape}')
    return np.frombuffer(content, np.uint8, offset=header_size).reshape(dims)


def _read_cifar10(record, folder):
    contents = _cifar10_file_contents(record, folder)  # file name -> (bytes, where it came from)
    num_classes = len(record.classes)
    train = [_parse_cifar10_records(*contents[name], num_classes) for name in CIFAR10_TRAIN_FILES]
    test_images, test_labels = _parse_cifar10_records(*contents['test_batch.bin'], num_classes)
    meta, meta_source = contents['batches.meta.txt']
    lines = meta.decode('ascii', 'replace').splitlines()
    classes = tuple(line.strip() for line in lines if line.strip())
    if len(classes) != num_classes:
        raise ValueError(f'{meta_source}: {len(classes)} class names, expected {num_classes} '
                         '(one per line)')
    train_images, train_labels = (np.concatenate(arrays) for arrays in zip(*train))
    return train_images, train_labels, test_images, test_labels, classes


def _cifar10_file_contents(record, folder):
    archive_file = record.file(CIFAR10_ARCHIVE)
    extracted, archive = folder / CIFAR10_FOLDER, folder / archive_file.name
    if all((extracted / name).is_file() for name in CIFAR10_FILES):
        return {name: ((extracted / name).read_bytes(), extracted / name) for name in CIFAR10_FILES}
    if archive.is_file():
        _check_md5(archive, archive_file.checksum)
    else:
        try:
            _download(archive_file.url, archive,
                      lambda part: _check_md5(part, archive_file.checksum))
        except OSError as error:
            raise FileNotFoundError(
                f'CIFAR-10 (binary version) not found: put {archive}, or its extracted files '
                f'{", ".join(CIFAR10_FILES)} in {extracted}. '
                f'Downloading {archive_file.url} failed: {error}') from error
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


def _parse_cifar10_records(content, source, num_classes):
    """Images ``(N, 3, 32, 32)`` and int32 labels ``(N,)`` of CIFAR-10 binary records."""
    expected = CIFAR10_IMAGES_PER_FILE * CIFAR10_RECORD_BYTES
    if len(content) != expected:
        raise ValueError(f'{source}: {len(content)} bytes, expected {expected} '
                         f'({CIFAR10_IMAGES_PER_FILE} records of {CIFAR10_RECORD_BYTES} bytes)')
    records = np.frombuffer(content, np.uint8).reshape(CIFAR10_IMAGES_PER_FILE,
                                                       CIFAR10_RECORD_BYTES)
    labels = records[:, 0].astype(np.int32)
    _check_labels(labels, num_classes, source)
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
    the ``.part`` is flushed to disk and renamed, atomically, to
    ``destination``. Network errors raise ``OSError`` and keep the ``.part``
    for the next attempt.
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
    files.commit(part, destination)


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


# ---------------------------------------------------------------- records

DATASETS_BY_NAME = {record.name: record for record in (
    DatasetRecord('digits', _read_digits, classes=tuple('0123456789'),
                  image_size=32,  # 8x8 is too small for ResNet-18
                  flip=False,  # a mirrored digit is no longer that digit
                  native_size=(8, 8), pixel_max=16),  # scikit-learn's digits: 0..16
    DatasetRecord(
        'fashion-mnist', _read_fashion_mnist,
        classes=('t-shirt', 'trouser', 'pullover', 'dress', 'coat',
                 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'),
        image_size=28, flip=True, native_size=(28, 28),
        # sha256 of the *decompressed* IDX bytes, because Debian recompresses
        # the official .gz files (same content, different .gz bytes).
        files=tuple(DataFile(name, FASHION_MNIST_URL + name, sha256) for name, sha256 in (
            ('train-images-idx3-ubyte.gz',
             'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888'),
            ('train-labels-idx1-ubyte.gz',
             'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9'),
            ('t10k-images-idx3-ubyte.gz',
             '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b'),
            ('t10k-labels-idx1-ubyte.gz',
             '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34')))),
    DatasetRecord(
        'cifar10', _read_cifar10,
        classes=('airplane', 'automobile', 'bird', 'cat', 'deer',
                 'dog', 'frog', 'horse', 'ship', 'truck'),  # as batches.meta.txt, which is read
        image_size=32, flip=True, native_size=(32, 32),
        # md5 of the archive, the only digest its authors publish.
        files=(DataFile(CIFAR10_ARCHIVE, 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
                        'c32a1d4ab5d03f1284b67883e8d87530'),)),
    DatasetRecord('synthetic', _make_synthetic, classes=None,  # as many as num_classes
                  image_size=None, flip=True),
)}
DATASETS = tuple(DATASETS_BY_NAME)
