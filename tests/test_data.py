"""Tests of gluon_resnet.data: datasets, file formats, downloads, batches."""
import gzip
import hashlib
import http.server
import io
import socket
import struct
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

import fashion_subset
from fashion_subset import fashion_mnist_subset, full_fashion_mnist
from gluon_resnet import data
from gluon_resnet.data import datasets, loader

FASHION_NAMES = tuple(file.name for file in data.DATASETS_BY_NAME['fashion-mnist'].files)
CIFAR_ARCHIVE = datasets.CIFAR10_ARCHIVE


# ---------------------------------------------------------------- helpers

def batches(iterator):
    return [(X.asnumpy(), y.asnumpy()) for X, y in iterator]


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for (x1, y1), (x2, y2) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def patch_files(monkeypatch, name, checksums=(), urls=()):
    """For this test, give the files of dataset ``name`` the ``checksums`` and
    ``urls`` given (``{file name: ...}``) by replacing its record."""
    record = data.DATASETS_BY_NAME[name]
    changed = tuple(replace(file, checksum=dict(checksums).get(file.name, file.checksum),
                            url=dict(urls).get(file.name, file.url)) for file in record.files)
    monkeypatch.setitem(data.DATASETS_BY_NAME, name, replace(record, files=changed))


def idx_bytes(array, magic):
    """An uncompressed IDX file holding uint8 ``array``."""
    header = struct.pack(f'>{1 + array.ndim}I', magic, *array.shape)
    return header + array.astype(np.uint8).tobytes()


def small_fashion_mnist(folder, train=20, test=10):
    """The four Fashion-MNIST files, gzipped IDX, with few images; returns
    the arrays written and the sha256 table of their decompressed bytes."""
    rng = np.random.default_rng(1)
    arrays = {'train': (rng.integers(0, 256, (train, 28, 28)), np.arange(train) % 10),
              'test': (rng.integers(0, 256, (test, 28, 28)), np.arange(test) % 10)}
    folder.mkdir(parents=True, exist_ok=True)
    checksums = {}
    for split, prefix in (('train', 'train'), ('test', 't10k')):
        images, labels = arrays[split]
        for name, content in ((f'{prefix}-images-idx3-ubyte.gz', idx_bytes(images, 2051)),
                              (f'{prefix}-labels-idx1-ubyte.gz', idx_bytes(labels, 2049))):
            (folder / name).write_bytes(gzip.compress(content))
            checksums[name] = hashlib.sha256(content).hexdigest()
    return arrays, checksums


CIFAR_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer',
                 'dog', 'frog', 'horse', 'ship', 'truck')


def small_cifar10_files(records_per_file=4):
    """``{file name: bytes}`` of a CIFAR-10 binary set with few records: record
    i of file f has label (f + i) % 10 and its R, G, B planes filled with
    10f + i, 100 + 10f + i and 200 + i."""
    files = {}
    for f, name in enumerate(datasets.CIFAR10_TRAIN_FILES + ('test_batch.bin',)):
        records = b''
        for i in range(records_per_file):
            planes = [np.full(1024, value, np.uint8)
                      for value in (10 * f + i, 100 + 10 * f + i, 200 + i)]
            records += bytes([(f + i) % 10]) + np.concatenate(planes).tobytes()
        files[name] = records
    files['batches.meta.txt'] = ('\n'.join(CIFAR_CLASSES) + '\n\n').encode()
    return files


def cifar10_archive(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
        for name, content in files.items():
            member = tarfile.TarInfo(f'cifar-10-batches-bin/{name}')
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


@pytest.fixture
def small_cifar10(monkeypatch):
    monkeypatch.setattr(datasets, 'CIFAR10_IMAGES_PER_FILE', 4)
    contents = small_cifar10_files()
    archive = cifar10_archive(contents)
    patch_files(monkeypatch, 'cifar10', checksums={CIFAR_ARCHIVE: hashlib.md5(archive).hexdigest()})
    return contents, archive


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, 'DEBIAN_FASHION_MNIST_DIR', str(tmp_path / 'no-debian-package'))


@pytest.fixture
def server(monkeypatch):
    """A loopback HTTP server of ``server.files`` ({path: bytes}) that honours
    Range requests; ``server.ranges`` records the Range headers received and
    ``server.cut`` makes it send only the first half of the next response."""
    for variable in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY'):
        monkeypatch.delenv(variable, raising=False)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            content = state.files.get(self.path)
            if content is None:
                self.send_error(404)
                return
            requested = self.headers.get('Range')
            state.ranges.append(requested)
            start = int(requested[len('bytes='):-1]) if requested else 0
            if start >= len(content):
                self.send_error(416)
                return
            self.send_response(206 if requested else 200)
            if requested:
                self.send_header('Content-Range',
                                 f'bytes {start}-{len(content) - 1}/{len(content)}')
            self.send_header('Content-Length', str(len(content) - start))
            self.end_headers()
            body = content[start:]
            if state.cut:
                state.cut = False
                body = body[:len(body) // 2]
                self.close_connection = True
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    state = type('Server', (), {'files': {}, 'ranges': [], 'cut': False,
                                'url': f'http://127.0.0.1:{httpd.server_port}'})()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port_url():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    return f'http://127.0.0.1:{port}'  # nothing listens there any more: connection refused


# ---------------------------------------------------------------- digits

def test_digits_split_is_fixed_stratified_and_complete():
    from sklearn.datasets import load_digits
    first, second = data.load_dataset('digits'), data.load_dataset('digits')
    assert first.train_images.shape == (1437, 1, 8, 8) and first.test_images.shape == (360, 1, 8, 8)
    assert first.train_images.dtype == np.uint8
    np.testing.assert_array_equal(first.test_images, second.test_images)
    np.testing.assert_array_equal(first.train_labels, second.train_labels)
    train_counts = np.bincount(first.train_labels, minlength=10)
    test_counts = np.bincount(first.test_labels, minlength=10)
    np.testing.assert_array_equal(train_counts + test_counts, np.bincount(load_digits().target))
    assert np.all(np.abs(test_counts - (train_counts + test_counts) * 360 / 1797) <= 1)
    assert first.info.classes == tuple('0123456789') and first.info.num_classes == 10


def test_digits_batches_are_resized_and_normalised():
    train_iter, test_iter, info = data.load_data('digits', 64, augment=False)
    assert info.image_shape == (1, 32, 32) and (info.num_train, info.num_test) == (1437, 360)
    X, y = next(iter(test_iter))
    assert X.shape == (64, 1, 32, 32) and X.dtype == np.float32 and y.dtype == np.int32
    assert isinstance(X, mx.nd.NDArray) and X.context == mx.cpu()
    native_iter, _, _ = data.load_data('digits', 64, image_size=8, augment=False)
    pixels = np.concatenate([X for X, _ in batches(native_iter.epoch(0))])
    assert abs(pixels.mean()) < 0.03 and abs(pixels.std() - 1) < 0.03


def test_subsets_are_balanced_and_deterministic():
    train_iter, test_iter, info = data.load_data('digits', 10, train_subset=100, test_subset=30)
    assert (info.num_train, info.num_test) == (100, 30)
    np.testing.assert_array_equal(np.bincount(train_iter.labels), [10] * 10)
    np.testing.assert_array_equal(np.bincount(test_iter.labels), [3] * 10)
    again, _, _ = data.load_data('digits', 10, train_subset=100)
    np.testing.assert_array_equal(again.images, train_iter.images)


# ---------------------------------------------------------------- Fashion-MNIST

def idx_checksums(dataset):
    """``{file name: sha256}`` of the decompressed official files, rebuilt from
    the decoded arrays of a Fashion-MNIST ``dataset``."""
    arrays = {'train-images-idx3-ubyte.gz': idx_bytes(dataset.train_images[:, 0], 2051),
              'train-labels-idx1-ubyte.gz': idx_bytes(dataset.train_labels, 2049),
              't10k-images-idx3-ubyte.gz': idx_bytes(dataset.test_images[:, 0], 2051),
              't10k-labels-idx1-ubyte.gz': idx_bytes(dataset.test_labels, 2049)}
    return {name: hashlib.sha256(content).hexdigest() for name, content in arrays.items()}


def test_fashion_mnist_as_the_loader_finds_it():
    """The real Fashion-MNIST wherever ``load_dataset`` finds it by default:
    the data dir, else Debian's package (CI installs it)."""
    dataset = full_fashion_mnist()
    assert dataset.train_images.shape == (60000, 1, 28, 28)
    assert dataset.test_images.shape == (10000, 1, 28, 28)
    assert dataset.train_images.dtype == np.uint8 and dataset.train_labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(dataset.train_labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(dataset.test_labels), [1000] * 10)
    assert dataset.info.classes[0] == 't-shirt' and dataset.info.classes[9] == 'ankle boot'
    # decoded without a byte lost: the arrays are the official files again
    assert idx_checksums(dataset) == {file.name: file.checksum
                                      for file in data.DATASETS_BY_NAME['fashion-mnist'].files}


def test_fashion_mnist_from_debian_package(tmp_path):
    """Debian's ``dataset-fashion-mnist`` holds the official files and is read
    in place. Elsewhere this is skipped: the same data is checked through the
    loader by ``test_fashion_mnist_as_the_loader_finds_it``."""
    debian = Path(datasets.DEBIAN_FASHION_MNIST_DIR)
    if not debian.is_dir():
        full_fashion_mnist()  # skips, or fails in CI, unless the data dir has the files
        pytest.skip(f'{debian} does not exist: the Debian package dataset-fashion-mnist is '
                    'not installed (the data is tested through the loader instead)')
    for expected in data.DATASETS_BY_NAME['fashion-mnist'].files:
        with gzip.open(debian / expected.name) as file:
            assert hashlib.sha256(file.read()).hexdigest() == expected.checksum
    dataset = data.load_dataset('fashion-mnist', data_dir=tmp_path)
    assert idx_checksums(dataset) == {file.name: file.checksum
                                      for file in data.DATASETS_BY_NAME['fashion-mnist'].files}
    assert not any(tmp_path.iterdir())  # nothing downloaded or copied


def test_shipped_subset_is_the_official_images():
    """The tests' Fashion-MNIST subset holds the official images and labels at
    the indices its rule names, and class-balanced subsets of it equal those
    of the full set (so the learning tests train on the same images)."""
    full = full_fashion_mnist()
    with fashion_mnist_subset() as data_dir:
        subset = data.load_dataset('fashion-mnist', data_dir)
        for images, labels, full_images, full_labels, (first, per_class) in (
                (subset.train_images, subset.train_labels, full.train_images,
                 full.train_labels, fashion_subset.KEEP['train']),
                (subset.test_images, subset.test_labels, full.test_images,
                 full.test_labels, fashion_subset.KEEP['t10k'])):
            index = fashion_subset.kept(full_labels, first, per_class)
            assert len(index) == len(labels) and first <= len(index) < first + 10 * per_class
            np.testing.assert_array_equal(images, full_images[index])
            np.testing.assert_array_equal(labels, full_labels[index])
        small = data.load_data('fashion-mnist', 50, data_dir=data_dir, train_subset=2000,
                               test_subset=1000)
    large = data.load_data('fashion-mnist', 50, train_subset=2000, test_subset=1000)
    for ours, theirs in zip(small[:2], large[:2]):
        np.testing.assert_array_equal(ours.images, theirs.images)
        np.testing.assert_array_equal(ours.labels, theirs.labels)
    assert small[2] == large[2]


def test_fashion_mnist_small_files(tmp_path, monkeypatch, no_debian):
    arrays, checksums = small_fashion_mnist(tmp_path / 'fashion-mnist')
    patch_files(monkeypatch, 'fashion-mnist', checksums)
    dataset = data.load_dataset('fashion-mnist', data_dir=tmp_path)
    np.testing.assert_array_equal(dataset.train_images[:, 0], arrays['train'][0])
    np.testing.assert_array_equal(dataset.test_labels, arrays['test'][1])
    train_iter, _, info = data.load_data('fashion-mnist', 8, image_size=96, data_dir=tmp_path)
    assert info.image_shape == (1, 96, 96) and next(iter(train_iter))[0].shape == (8, 1, 96, 96)
    assert (train_iter.pad, train_iter.flip) == (4, True)


def flip_compressed_byte(content):
    middle = len(content) // 2
    return content[:middle] + bytes([content[middle] ^ 0xFF]) + content[middle + 1:]


@pytest.mark.parametrize('damage, message', [
    (flip_compressed_byte, 'corrupted'),
    (lambda content: content[:len(content) // 2], 'truncated'),
    (lambda content: gzip.compress(flip_compressed_byte(gzip.decompress(content))), 'sha256'),
])
def test_fashion_mnist_damaged_file_raises_and_is_kept(tmp_path, monkeypatch, no_debian,
                                                       damage, message):
    _, checksums = small_fashion_mnist(tmp_path / 'fashion-mnist')
    patch_files(monkeypatch, 'fashion-mnist', checksums)
    path = tmp_path / 'fashion-mnist' / 't10k-images-idx3-ubyte.gz'
    damaged = damage(path.read_bytes())
    path.write_bytes(damaged)
    with pytest.raises(ValueError, match=message) as error:
        data.load_dataset('fashion-mnist', data_dir=tmp_path)
    assert str(path) in str(error.value)
    assert path.read_bytes() == damaged


def test_fashion_mnist_wrong_magic_number(tmp_path, monkeypatch, no_debian):
    _, checksums = small_fashion_mnist(tmp_path / 'fashion-mnist')
    path = tmp_path / 'fashion-mnist' / 'train-labels-idx1-ubyte.gz'
    content = struct.pack('>I', 2051) + gzip.decompress(path.read_bytes())[4:]
    path.write_bytes(gzip.compress(content))
    checksums[path.name] = hashlib.sha256(content).hexdigest()
    patch_files(monkeypatch, 'fashion-mnist', checksums)
    with pytest.raises(ValueError, match=f'{path}: IDX magic number 2051, expected 2049'):
        data.load_dataset('fashion-mnist', data_dir=tmp_path)


# ---------------------------------------------------------------- CIFAR-10

def check_small_cifar10(dataset):
    assert dataset.train_images.shape == (20, 3, 32, 32)
    assert dataset.test_images.shape == (4, 3, 32, 32)
    assert dataset.info.classes == CIFAR_CLASSES
    # record 1 of data_batch_3 (f = 2): channel-major planes 21, 121, 201
    planes = dataset.train_images[9].reshape(3, -1)
    np.testing.assert_array_equal(planes, np.array([[21], [121], [201]]).repeat(1024, axis=1))
    np.testing.assert_array_equal(dataset.train_labels[:6], [0, 1, 2, 3, 1, 2])
    np.testing.assert_array_equal(dataset.test_labels, [5, 6, 7, 8])


def test_cifar10_extracted_files(tmp_path, small_cifar10):
    folder = tmp_path / 'cifar10' / 'cifar-10-batches-bin'
    folder.mkdir(parents=True)
    for name, content in small_cifar10[0].items():
        (folder / name).write_bytes(content)
    check_small_cifar10(data.load_dataset('cifar10', data_dir=tmp_path))


def test_cifar10_archive(tmp_path, small_cifar10):
    (tmp_path / 'cifar10').mkdir()
    (tmp_path / 'cifar10' / CIFAR_ARCHIVE).write_bytes(small_cifar10[1])
    check_small_cifar10(data.load_dataset('cifar10', data_dir=tmp_path))
    assert sorted(p.name for p in (tmp_path / 'cifar10').iterdir()) == [CIFAR_ARCHIVE]


@pytest.mark.parametrize('name, damage, message', [
    ('data_batch_2.bin', lambda content: content[:-1], 'expected 12292'),
    ('test_batch.bin', lambda content: bytes([200]) + content[1:], 'label 200'),
    ('batches.meta.txt', lambda content: b'cat\ndog\n', '2 class names, expected 10'),
])
def test_cifar10_damaged_extracted_file_raises_and_is_kept(tmp_path, small_cifar10,
                                                           name, damage, message):
    folder = tmp_path / 'cifar10' / 'cifar-10-batches-bin'
    folder.mkdir(parents=True)
    for file, content in small_cifar10[0].items():
        (folder / file).write_bytes(damage(content) if file == name else content)
    with pytest.raises(ValueError, match=message) as error:
        data.load_dataset('cifar10', data_dir=tmp_path)
    assert str(folder / name) in str(error.value)
    assert (folder / name).read_bytes() == damage(small_cifar10[0][name])


@pytest.mark.parametrize('damage', [flip_compressed_byte,
                                    lambda content: content[:len(content) // 2]])
def test_cifar10_damaged_archive_raises_and_is_kept(tmp_path, small_cifar10, damage):
    path = tmp_path / 'cifar10' / CIFAR_ARCHIVE
    path.parent.mkdir()
    path.write_bytes(damage(small_cifar10[1]))
    with pytest.raises(ValueError, match='md5') as error:
        data.load_dataset('cifar10', data_dir=tmp_path)
    assert str(path) in str(error.value)
    assert path.read_bytes() == damage(small_cifar10[1])


# ---------------------------------------------------------------- downloads

def serve_fashion_mnist(server, monkeypatch, tmp_path):
    arrays, checksums = small_fashion_mnist(tmp_path / 'served')
    patch_files(monkeypatch, 'fashion-mnist', checksums)
    patch_files(monkeypatch, 'fashion-mnist',
                urls={name: f'{server.url}/{name}' for name in FASHION_NAMES})
    for name in FASHION_NAMES:
        server.files[f'/{name}'] = (tmp_path / 'served' / name).read_bytes()
    return arrays


def test_download_fashion_mnist(tmp_path, monkeypatch, no_debian, server):
    arrays = serve_fashion_mnist(server, monkeypatch, tmp_path)
    dataset = data.load_dataset('fashion-mnist', data_dir=tmp_path / 'data')
    np.testing.assert_array_equal(dataset.train_images[:, 0], arrays['train'][0])
    written = (tmp_path / 'data' / 'fashion-mnist').iterdir()
    assert sorted(path.name for path in written) == sorted(FASHION_NAMES)
    assert server.ranges == [None] * 4


def test_download_resumes_a_part_file(tmp_path, monkeypatch, no_debian, server):
    serve_fashion_mnist(server, monkeypatch, tmp_path)
    folder = tmp_path / 'data' / 'fashion-mnist'
    folder.mkdir(parents=True)
    for name in FASHION_NAMES[1:]:
        (folder / name).write_bytes(server.files[f'/{name}'])
    content = server.files[f'/{FASHION_NAMES[0]}']
    (folder / (FASHION_NAMES[0] + '.part')).write_bytes(content[:len(content) // 2])
    data.load_dataset('fashion-mnist', data_dir=tmp_path / 'data')
    assert server.ranges == [f'bytes={len(content) // 2}-']
    assert (folder / FASHION_NAMES[0]).read_bytes() == content
    assert not (folder / (FASHION_NAMES[0] + '.part')).exists()


def test_interrupted_download_keeps_part_and_resumes(tmp_path, monkeypatch, server, small_cifar10):
    archive = small_cifar10[1]
    server.files['/cifar.tar.gz'] = archive
    patch_files(monkeypatch, 'cifar10', urls={CIFAR_ARCHIVE: f'{server.url}/cifar.tar.gz'})
    part = tmp_path / 'cifar10' / (CIFAR_ARCHIVE + '.part')
    server.cut = True
    with pytest.raises(FileNotFoundError, match='connection closed'):
        data.load_dataset('cifar10', data_dir=tmp_path)
    assert part.read_bytes() == archive[:len(archive) // 2]
    check_small_cifar10(data.load_dataset('cifar10', data_dir=tmp_path))
    assert server.ranges == [None, f'bytes={len(archive) // 2}-']
    assert not part.exists()


def test_download_with_bad_checksum_writes_no_file(tmp_path, monkeypatch, server, small_cifar10):
    server.files['/cifar.tar.gz'] = small_cifar10[1]
    patch_files(monkeypatch, 'cifar10', urls={CIFAR_ARCHIVE: f'{server.url}/cifar.tar.gz'})
    patch_files(monkeypatch, 'cifar10', checksums={CIFAR_ARCHIVE: '0' * 32})
    with pytest.raises(ValueError, match='corrupted.*md5'):
        data.load_dataset('cifar10', data_dir=tmp_path)
    assert list((tmp_path / 'cifar10').iterdir()) == []


def test_download_is_renamed_by_files_commit(tmp_path, monkeypatch, server, small_cifar10):
    server.files['/cifar.tar.gz'] = small_cifar10[1]
    patch_files(monkeypatch, 'cifar10', urls={CIFAR_ARCHIVE: f'{server.url}/cifar.tar.gz'})
    committed, commit = [], datasets.files.commit

    def recording_commit(temporary, path):
        committed.append((Path(temporary).name, Path(path).name))
        commit(temporary, path)
    monkeypatch.setattr(datasets.files, 'commit', recording_commit)
    check_small_cifar10(data.load_dataset('cifar10', data_dir=tmp_path))
    assert committed == [(CIFAR_ARCHIVE + '.part', CIFAR_ARCHIVE)]


def test_no_files_and_no_network_fashion_mnist(tmp_path, monkeypatch, no_debian, closed_port_url):
    patch_files(monkeypatch, 'fashion-mnist',
                urls={name: f'{closed_port_url}/{name}' for name in FASHION_NAMES})
    with pytest.raises(FileNotFoundError) as error:
        data.load_dataset('fashion-mnist', data_dir=tmp_path)
    message = str(error.value)
    for name in FASHION_NAMES:
        assert str(tmp_path / 'fashion-mnist' / name) in message
    assert 'apt-get install dataset-fashion-mnist' in message
    assert 'failed' in message and 'refused' in message


def test_no_files_and_no_network_cifar10(tmp_path, monkeypatch, closed_port_url):
    patch_files(monkeypatch, 'cifar10', urls={CIFAR_ARCHIVE: f'{closed_port_url}/cifar.tar.gz'})
    with pytest.raises(FileNotFoundError) as error:
        data.load_dataset('cifar10', data_dir=tmp_path)
    message = str(error.value)
    assert str(tmp_path / 'cifar10' / CIFAR_ARCHIVE) in message
    assert str(tmp_path / 'cifar10' / 'cifar-10-batches-bin') in message
    assert 'test_batch.bin' in message
    assert 'failed' in message and 'refused' in message


# ---------------------------------------------------------------- transforms

def asymmetric_images(n=64, size=8):
    rng = np.random.default_rng(3)
    return rng.integers(1, 256, (n, 2, size, size)).astype(np.uint8)


def test_random_flip_mirrors_about_half():
    images = asymmetric_images()
    flipped = data.random_flip(images, np.random.default_rng(0))
    mirrored = np.all(flipped == images[..., ::-1], axis=(1, 2, 3))
    kept = np.all(flipped == images, axis=(1, 2, 3))
    assert np.all(mirrored ^ kept) and 16 < mirrored.sum() < 48


def test_random_crop_shifts_content_within_padding():
    images, pad = asymmetric_images(), 2
    cropped = data.random_crop(images, pad, np.random.default_rng(0))
    padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    offsets = []
    for image, out in zip(padded, cropped):
        matches = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                   if np.array_equal(image[:, dy:dy + 8, dx:dx + 8], out)]
        assert len(matches) == 1
        offsets.append(matches[0])
    assert len(set(offsets)) > 10  # the content really moves, by various amounts
    np.testing.assert_array_equal(cropped, data.random_crop(images, pad, np.random.default_rng(0)))


def test_resize_sizes_and_values():
    train_iter, _, info = data.load_data('digits', 16, image_size=(20, 12))
    assert info.image_shape == (1, 20, 12) and next(iter(train_iter))[0].shape == (16, 1, 20, 12)
    constant = np.full((2, 3, 8, 8), 5, np.float32)
    bigger = data.resize(constant, loader._resize_matrix(8, 96), loader._resize_matrix(8, 40))
    assert bigger.shape == (2, 3, 96, 40)
    np.testing.assert_allclose(bigger, 5, rtol=1e-6)
    stripes = np.tile(np.array([0, 1], np.float32), 16)[None, None, None, :].repeat(32, axis=2)
    halved = data.resize(stripes, loader._resize_matrix(32, 16), loader._resize_matrix(32, 16))
    assert halved.shape == (1, 1, 16, 16)
    np.testing.assert_allclose(halved[..., 1:-1], 0.5, atol=1e-6)  # averaged, not aliased
    assert np.all(np.abs(halved - 0.5) < 0.1)  # the edges see one neighbour less


def small_loader(**kwargs):
    images = asymmetric_images(50)
    labels = np.arange(50) % 10
    mean, std = data.channel_mean_std(images)
    options = dict(train=True, pad=1, flip=True, seed=7)
    options.update(kwargs)
    return data.ArrayLoader(images, labels, 8, mean, std, image_size=16, **options)


def test_training_batches_depend_only_on_seed_epoch_and_batch():
    loader = small_loader()
    epoch_2 = batches(loader.epoch(2))
    assert_same_batches(epoch_2, batches(small_loader().epoch(2)))
    assert_same_batches(epoch_2[3:], batches(small_loader().epoch(2, start_batch=3)))
    assert not np.array_equal(epoch_2[0][1], batches(loader.epoch(3))[0][1])
    other_seed = small_loader(seed=8)
    assert not np.array_equal(epoch_2[0][0], batches(other_seed.epoch(2))[0][0])


def test_plain_iteration_runs_epoch_0_then_1():
    loader = small_loader()
    assert_same_batches(batches(loader), batches(small_loader().epoch(0)))
    assert_same_batches(batches(loader), batches(small_loader().epoch(1)))


def test_drop_last_and_fixed_test_order():
    train, test = small_loader(), small_loader(train=False, pad=0, flip=False)
    assert len(train) == 6 and len(test) == 7
    assert all(X.shape == (8, 2, 16, 16) for X, _ in batches(train.epoch(0)))
    test_batches = batches(test.epoch(0))
    assert test_batches[-1][0].shape == (2, 2, 16, 16)
    np.testing.assert_array_equal(np.concatenate([y for _, y in test_batches]), np.arange(50) % 10)
    assert_same_batches(test_batches, batches(test.epoch(5)))


def test_flip_and_padding_defaults_per_dataset():
    digits, digits_test, _ = data.load_data('digits', 32)
    assert (digits.pad, digits.flip, digits_test.pad, digits_test.flip) == (1, False, 0, False)
    synthetic, _, _ = data.load_data('synthetic', 32, num_train=64, num_test=8)
    assert (synthetic.pad, synthetic.flip) == (4, True)
    plain, _, _ = data.load_data('synthetic', 32, augment=False, num_train=64, num_test=8)
    assert (plain.pad, plain.flip) == (0, False)


def test_numpy_mode_yields_mx_np_arrays():
    train_iter, _, _ = data.load_data('digits', 32)
    mx.npx.set_np()
    try:
        X, y = next(iter(train_iter))
        assert isinstance(X, mx.np.ndarray) and isinstance(y, mx.np.ndarray)
        assert X.shape == (32, 1, 32, 32)
    finally:
        mx.npx.reset_np()


def test_synthetic_is_deterministic_per_seed():
    sizes = dict(num_train=10, num_test=5, image_shape=(3, 7, 9))
    first = data.load_dataset('synthetic', num_classes=4, **sizes)
    again = data.load_dataset('synthetic', num_classes=4, **sizes)
    other = data.load_dataset('synthetic', num_classes=4, data_seed=1, **sizes)
    assert first.train_images.shape == (10, 3, 7, 9) and first.test_images.shape == (5, 3, 7, 9)
    assert first.info.num_classes == 4 and first.train_labels.max() < 4
    np.testing.assert_array_equal(first.train_images, again.train_images)
    assert not np.array_equal(first.train_images, other.train_images)


# ---------------------------------------------------------------- bad input

def test_unknown_dataset_lists_names_and_suggests():
    expected = ("unknown dataset 'CIFAR-10': expected one of digits, fashion-mnist, cifar10, "
                "synthetic; did you mean 'cifar10'")
    with pytest.raises(ValueError, match=expected):
        data.load_data('CIFAR-10', 32)


@pytest.mark.parametrize('batch_size, message', [
    (0, 'batch_size must be a positive integer, got 0'), (-4, 'positive integer'),
    (2.5, 'positive integer'), (True, 'positive integer, got True'),
    (1438, 'larger than the 1437 training images'),
])
def test_bad_batch_size(batch_size, message):
    with pytest.raises(ValueError, match=message):
        data.load_data('digits', batch_size)


@pytest.mark.parametrize('image_size', [0, -32, 2.5, (32,), 'big', (32, 0), True, (32, True)])
def test_bad_image_size(image_size):
    with pytest.raises(ValueError, match='image_size must be a positive integer or a pair'):
        data.load_data('digits', 32, image_size=image_size)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match='only to the synthetic dataset'):
        data.load_dataset('digits', num_train=10)
    with pytest.raises(ValueError, match='train_subset=5000: expected at most the 1437'):
        data.load_data('digits', 32, train_subset=5000)
    with pytest.raises(ValueError, match='start_batch=99'):
        small_loader().epoch(0, start_batch=99)
    with pytest.raises(ValueError, match='train=True'):
        small_loader(train=False)
    with pytest.raises(ValueError, match='train_subset must be a positive integer, got True'):
        data.load_data('digits', 32, train_subset=True)
    with pytest.raises(ValueError, match='seed must be a non-negative integer, got -1'):
        small_loader(seed=-1)
    with pytest.raises(ValueError, match='seed must be a non-negative integer, got True'):
        small_loader(seed=True)
    with pytest.raises(ValueError, match='epoch must be a non-negative integer, got True'):
        small_loader().epoch(True)
    with pytest.raises(ValueError, match='start_batch must be a non-negative integer, got -1'):
        small_loader().epoch(0, start_batch=-1)
    with pytest.raises(ValueError, match='num_train must be a positive integer, got 0'):
        data.load_dataset('synthetic', num_train=0)


def test_numpy_integers_are_accepted():
    sizes = dict(train_subset=np.int64(100), test_subset=np.int32(30))
    train_iter, test_iter, info = data.load_data('digits', np.int64(8), image_size=np.int64(16),
                                                 seed=np.int64(3), **sizes)
    expected_iter, _, expected_info = data.load_data('digits', 8, image_size=16, seed=3,
                                                     train_subset=100, test_subset=30)
    assert info == expected_info and type(train_iter.batch_size) is int
    assert_same_batches(batches(train_iter.epoch(np.int64(1), start_batch=np.int64(2))),
                        batches(expected_iter.epoch(1, start_batch=2)))
    assert len(test_iter) == 4
    pair_iter, _, pair_info = data.load_data('digits', 8, image_size=(np.int64(20), np.int8(12)))
    assert pair_info.image_shape == (1, 20, 12)
    assert next(iter(pair_iter))[0].shape == (8, 1, 20, 12)


# ---------------------------------------------------------------- dataset records

def test_every_dataset_has_one_record():
    assert tuple(data.DATASETS_BY_NAME) == data.DATASETS
    assert data.DATASETS == ('digits', 'fashion-mnist', 'cifar10', 'synthetic')
    for name, record in data.DATASETS_BY_NAME.items():
        assert record.name == name and callable(record.read)
        assert data.dataset_record(name) is record
        for file in record.files:
            assert file.url.startswith(('http://', 'https://')) and file.url.endswith(file.name)
            assert len(file.checksum) in (32, 64)  # md5 or sha256, hex
    sizes = {name: record.image_size for name, record in data.DATASETS_BY_NAME.items()}
    assert sizes == {'digits': 32, 'fashion-mnist': 28, 'cifar10': 32, 'synthetic': None}
    flips = {name: record.flip for name, record in data.DATASETS_BY_NAME.items()}
    assert flips == {'digits': False, 'fashion-mnist': True, 'cifar10': True, 'synthetic': True}
    assert data.DATASETS_BY_NAME['cifar10'].classes == CIFAR_CLASSES
    assert [f.name for f in data.DATASETS_BY_NAME['cifar10'].files] == [CIFAR_ARCHIVE]


def test_a_new_record_is_a_new_dataset(monkeypatch):
    def read_tiny(record, folder):
        images = np.arange(4 * 3 * 4 * 4, dtype=np.uint8).reshape(4, 3, 4, 4)
        labels = np.array([0, 1, 0, 1], np.int32)
        return images, labels, images[:2], labels[:2], record.classes
    record = data.DatasetRecord('tiny', read_tiny, classes=('a', 'b'), image_size=8, flip=False)
    monkeypatch.setitem(data.DATASETS_BY_NAME, 'tiny', record)
    train_iter, _, info = data.load_data('tiny', 2)
    assert info.classes == ('a', 'b') and info.image_shape == (3, 8, 8)
    assert (train_iter.pad, train_iter.flip) == (1, False)
