"""The real Fashion-MNIST images the tests train on, shipped with them.

``tests/fixtures/datasets/fashion-mnist/`` holds the four official files cut
to the images the tests use, so the suite needs neither Debian's package nor
the internet (``README.md`` there gives the source, licence and checksums):

* train: the first 2,048 images and the first 200 of every class,
* test: the first 1,000 images and the first 100 of every class,

in their official order.  Each class keeps a prefix of its images, so
``load_data``'s class-balanced ``train_subset``/``test_subset`` and "the
first N" pick the same images from these files as from the full set, and
the learning tests' measured margins (``learning.py``) still hold.

    python tests/fashion_subset.py OFFICIAL_DIR    # rebuild from the official .gz files
"""
import contextlib
import gzip
import hashlib
import os
import struct
import sys
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from gluon_resnet import data
from gluon_resnet.data import datasets

DATA_DIR = Path(__file__).parent / 'fixtures' / 'datasets'  # a --data-dir, as load_data takes
FOLDER = DATA_DIR / 'fashion-mnist'
CHECKSUMS = FOLDER / 'SHA256SUMS'  # of the decompressed IDX bytes, as the dataset record's
KEEP = {'train': (2048, 200), 't10k': (1000, 100)}  # (first images, first of every class)


def kept(labels, first, per_class):
    """Indices, in order, of the first ``first`` images and the first
    ``per_class`` of every class."""
    rank = np.zeros(len(labels), np.int64)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        rank[where] = np.arange(len(where))
    return np.flatnonzero((np.arange(len(labels)) < first) | (rank < per_class))


def checksums():
    """``{file name: sha256}`` of the shipped files, from ``SHA256SUMS``."""
    lines = CHECKSUMS.read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


@contextlib.contextmanager
def fashion_mnist_subset():
    """Inside ``with``, ``load_data('fashion-mnist', ..., data_dir=DATA_DIR)``
    reads the shipped subset, verified against its own checksums; yields
    ``DATA_DIR``."""
    record = data.DATASETS_BY_NAME['fashion-mnist']
    sums = checksums()
    subset = replace(record, files=tuple(replace(file, checksum=sums[file.name], url='')
                                         for file in record.files))
    with mock.patch.dict(data.DATASETS_BY_NAME, {'fashion-mnist': subset}):
        yield DATA_DIR


def full_fashion_mnist():
    """The whole official Fashion-MNIST, where ``load_dataset`` finds it without
    a download (the data dir or Debian's package).  Elsewhere the test is
    skipped, saying how to install it, except in CI (``CI`` set), whose
    ``.ci/run`` installs Debian's package: there it fails."""
    names = [file.name for file in data.DATASETS_BY_NAME['fashion-mnist'].files]
    folders = [Path(datasets.DEFAULT_DATA_DIR).expanduser() / 'fashion-mnist',
               Path(datasets.DEBIAN_FASHION_MNIST_DIR)]
    if not any(all((folder / name).is_file() for name in names) for folder in folders):
        message = (f'the full Fashion-MNIST is in none of {", ".join(map(str, folders))}: '
                   'apt-get install dataset-fashion-mnist')
        if os.environ.get('CI'):
            pytest.fail(f'{message} (.ci/run installs it)')
        pytest.skip(message)
    return data.load_dataset('fashion-mnist')


def build(official_dir):
    """Write the subset files and ``SHA256SUMS`` from the official files in ``official_dir``."""
    dataset = data.load_dataset('fashion-mnist', data_dir=official_dir)
    splits = {'train': (dataset.train_images[:, 0], dataset.train_labels),
              't10k': (dataset.test_images[:, 0], dataset.test_labels)}
    FOLDER.mkdir(parents=True, exist_ok=True)
    sums = []
    for prefix, (images, labels) in splits.items():
        index = kept(labels, *KEEP[prefix])
        for kind, array, magic in (('images-idx3', images[index], 2051),
                                   ('labels-idx1', labels[index].astype(np.uint8), 2049)):
            content = struct.pack(f'>{1 + array.ndim}I', magic, *array.shape) + array.tobytes()
            name = f'{prefix}-{kind}-ubyte.gz'
            # mtime=0: the same official files give the same bytes
            (FOLDER / name).write_bytes(gzip.compress(content, compresslevel=9, mtime=0))
            sums.append(f'{hashlib.sha256(content).hexdigest()}  {name}\n')
        print(f'{prefix}: {len(index)} of {len(labels)} images', file=sys.stderr)
    CHECKSUMS.write_text(''.join(sums))


if __name__ == '__main__':
    build(sys.argv[1])
