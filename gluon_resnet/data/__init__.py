"""Datasets and in-memory batch iterators for training ResNets with Gluon.

``load_data(name, batch_size)`` returns ``(train_iter, test_iter, info)``:
iterators of normalised float32 ``(batch, C, H, W)`` images and int32
``(batch,)`` labels, and a ``DatasetInfo``.

* ``datasets``: one ``DatasetRecord`` per dataset in ``DATASETS_BY_NAME``
  (digits, fashion-mnist, cifar10, synthetic), and the reading, downloading
  and verifying of their files (``load_dataset``).
* ``loader``: ``load_data``, the ``ArrayLoader`` batch iterator and its
  transforms (random crop, random flip, resize).
"""
from .datasets import (DATASETS, DATASETS_BY_NAME, DEBIAN_FASHION_MNIST_DIR, DEFAULT_DATA_DIR,
                       DataFile, Dataset, DatasetInfo, DatasetRecord, channel_mean_std,
                       dataset_record, load_dataset)
from .loader import ArrayLoader, load_data, random_crop, random_flip, resize

__all__ = ['load_data', 'load_dataset', 'DATASETS', 'DATASETS_BY_NAME', 'DatasetRecord',
           'DataFile', 'dataset_record', 'DatasetInfo', 'Dataset', 'ArrayLoader',
           'channel_mean_std', 'random_crop', 'random_flip', 'resize', 'DEFAULT_DATA_DIR',
           'DEBIAN_FASHION_MNIST_DIR']
