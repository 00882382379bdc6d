"""Tests of ``gluon_resnet.viz``: what the notebooks draw is what the data say."""
import matplotlib

matplotlib.use('Agg')  # before pyplot is imported: no display in tests

import matplotlib.pyplot as plt  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from mxnet import autograd, gluon, nd  # noqa: E402
from mxnet.gluon import nn  # noqa: E402
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix  # noqa: E402

from gluon_resnet import get_model, layer_report, load_data  # noqa: E402
from gluon_resnet.viz import (classify, confusion_matrix, gradient_norms, layer_outputs,  # noqa: E402
                              plot_confusion_matrix, plot_gradient_norms,
                              show_images, show_misclassified, to_numpy)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close('all')


def drawn(ax):
    """The array an axes shows with ``imshow``, or None."""
    images = ax.get_images()
    return np.asarray(images[0].get_array()) if images else None


# show_images -------------------------------------------------------------------

@pytest.mark.parametrize('shape,drawn_shape', [((5, 4, 6), (4, 6)), ((5, 1, 4, 6), (4, 6)),
                                               ((5, 3, 4, 6), (4, 6, 3))])
def test_show_images_grid_and_stretch(shape, drawn_shape):
    rng = np.random.default_rng(0)
    images = rng.normal(3, 2, size=shape).astype(np.float32)
    axes = show_images(nd.array(images), 2, 3, titles=[f't{i}' for i in range(5)])
    assert len(axes) == 6
    for i, ax in enumerate(axes[:5]):
        shown = drawn(ax)
        assert shown.shape == drawn_shape
        assert shown.min() == pytest.approx(0) and shown.max() == pytest.approx(1)
        assert ax.get_title() == f't{i}'
    expected = (images[1] - images[1].min()) / (images[1].max() - images[1].min())
    if len(shape) == 4:
        expected = expected[0] if shape[1] == 1 else expected.transpose(1, 2, 0)
    np.testing.assert_allclose(drawn(axes[1]), expected, rtol=1e-5, atol=1e-6)
    assert drawn(axes[5]) is None  # the spare cell stays empty


def test_show_images_list_of_sizes_and_constant_image():
    axes = show_images([np.zeros((8, 8)), np.arange(16.0).reshape(4, 4)], 1, 2)
    assert drawn(axes[0]).shape == (8, 8) and drawn(axes[0]).max() == 0
    assert drawn(axes[1]).shape == (4, 4) and drawn(axes[1]).max() == 1


@pytest.mark.parametrize('images,rows,cols,titles,match', [
    (np.zeros((7, 4, 4)), 2, 3, None, 'do not fit'),
    (np.zeros((2, 2, 4, 4)), 1, 2, None, 'C = 1 or 3'),
    (np.zeros((2, 4)), 1, 2, None, 'shape'),
    (np.zeros((2, 4, 4)), 1, 2, ['one'], 'one title per image'),
])
def test_show_images_errors(images, rows, cols, titles, match):
    with pytest.raises(ValueError, match=match):
        show_images(images, rows, cols, titles=titles)


# layer_outputs -----------------------------------------------------------------

@pytest.mark.parametrize('name,shape,features', [('cifar_resnet20_v1', (2, 1, 32, 32), True),
                                                 ('resnet18', (1, 1, 64, 64), False)])
def test_layer_outputs_match_the_report(name, shape, features):
    net = get_model(name)
    net.initialize()
    rows = layer_report(net, shape, depth=1).records
    outputs = layer_outputs(net.features if features else net, nd.random.uniform(shape=shape))
    if features:  # the report also lists the dense layer, outside `features`
        rows = [r for r in rows if r.name.startswith('features/')]
    assert [n for n, _ in outputs] == [r.name.replace('features/', '') for r in rows]
    assert [o.shape for _, o in outputs] == [r.output_shape for r in rows]


def test_layer_outputs_last_is_the_sequence_output():
    net = get_model('cifar_resnet20_v1')
    net.initialize()
    X = nd.random.uniform(shape=(2, 3, 16, 16))
    assert nd.abs(layer_outputs(net.features, X)[-1][1] - net.features(X)).max() == 0


def test_layer_outputs_needs_a_sequence():
    with pytest.raises(ValueError, match='Sequential'):
        layer_outputs(get_model('cifar_resnet20_v1'), nd.zeros((1, 3, 8, 8)))


# classify and confusion matrices -------------------------------------------------

def test_classify_matches_the_net():
    _, test_iter, info = load_data('synthetic', 16, num_train=32, num_test=40,
                                   image_shape=(1, 8, 8), num_classes=3)
    net = nn.HybridSequential()
    net.add(nn.Flatten(), nn.Dense(3))
    net.initialize(mx.init.Normal(1))
    images, labels, predicted = classify(net, test_iter)
    assert images.shape == (40, 1, 8, 8) and labels.shape == predicted.shape == (40,)
    X = np.concatenate([to_numpy(X) for X, _ in test_iter])
    y = np.concatenate([to_numpy(y) for _, y in test_iter])
    np.testing.assert_array_equal(images, X)
    np.testing.assert_array_equal(labels, y)
    np.testing.assert_array_equal(predicted, to_numpy(net(nd.array(X))).argmax(axis=1))
    assert len(set(predicted)) > 1  # not a constant net, or the test would prove little


def test_confusion_matrix_equals_sklearn():
    rng = np.random.default_rng(0)
    labels, predicted = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    matrix = confusion_matrix(nd.array(labels), predicted, 5)
    np.testing.assert_array_equal(matrix, sklearn_confusion_matrix(labels, predicted,
                                                                   labels=range(5)))
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(labels, minlength=5))
    assert confusion_matrix([], [], 3).sum() == 0


@pytest.mark.parametrize('labels,predicted,match', [([0, 1], [0], 'same shape'),
                                                    ([0, 3], [0, 1], 'classes 0..2'),
                                                    ([0, 1], [-1, 1], 'classes 0..2')])
def test_confusion_matrix_errors(labels, predicted, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(np.array(labels), np.array(predicted), 3)


def test_plot_confusion_matrix_writes_the_counts():
    matrix = np.array([[5, 0, 1], [0, 7, 0], [2, 0, 3]])
    ax = plot_confusion_matrix(matrix, ['a', 'b', 'c'])
    texts = {(t.get_position(), t.get_text()) for t in ax.texts}
    assert texts == {((j, i), str(matrix[i, j])) for i in range(3) for j in range(3)
                     if matrix[i, j]}
    assert [t.get_text() for t in ax.get_xticklabels()] == ['a', 'b', 'c']
    np.testing.assert_array_equal(drawn(ax), matrix)
    with pytest.raises(ValueError, match='3 classes'):
        plot_confusion_matrix(np.zeros((2, 2)), ['a', 'b', 'c'])


# gradient norms --------------------------------------------------------------------

def test_gradient_norms_of_every_weight_layer_and_nothing_changes():
    mx.random.seed(0)
    net = get_model('cifar_resnet20_v1')
    net.initialize(mx.init.Xavier())  # deferred: gradient_norms infers the shapes
    X = nd.random.normal(shape=(8, 1, 16, 16))
    y = nd.array([0, 1, 2, 3, 4, 5, 6, 7])
    norms = gradient_norms(net, X, y)
    before = {name: p.data().copy() for name, p in net.collect_params().items()}
    again = gradient_norms(net, X, y)  # no state changed in between
    assert [n for n, _ in again] == [n for n, _ in norms]
    np.testing.assert_allclose([v for _, v in again], [v for _, v in norms], rtol=1e-6)
    for name, p in net.collect_params().items():
        assert nd.abs(p.data() - before[name]).max() == 0, f'{name} changed'
    # 1 stem conv, 9 blocks of 2 convs, 1 dense layer; option A has no weights
    assert len(norms) == 20
    assert norms[0][0] == 'conv0_weight' and norms[-1][0] == 'dense0_weight'
    assert all(np.isfinite(n) and n > 0 for _, n in norms)
    # the first one, recomputed by hand
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(X), y).mean()
    loss.backward()
    stem = net.features[0].weight
    assert norms[0][1] == pytest.approx(float(np.linalg.norm(stem.grad().asnumpy())), rel=1e-5)


def test_plot_gradient_norms_one_line_per_net():
    ax = plot_gradient_norms({'a': [('w0', 1.0), ('w1', 10.0)], 'b': [('w0', 2.0)]})
    assert [line.get_label() for line in ax.get_lines()] == ['a', 'b']
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2])
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [1.0, 10.0])
    assert ax.get_yscale() == 'log'


def test_plot_gradient_norms_styles():
    norms = {'plain': [('w0', 1.0)], 'residual': [('w0', 2.0)], 'other': [('w0', 3.0)]}
    ax = plot_gradient_norms(norms, styles={'plain': ('C0', '--'), 'residual': ('C3', '-')})
    plain, residual, other = ax.get_lines()
    assert (plain.get_color(), plain.get_linestyle()) == ('C0', '--')
    assert (residual.get_color(), residual.get_linestyle()) == ('C3', '-')
    assert other.get_linestyle() == '-'


def test_show_misclassified_titles_and_rows():
    images = np.arange(10 * 4 * 4, dtype=np.float32).reshape(10, 1, 4, 4)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    predicted = np.array([0, 2, 2, 1, 1, 2, 0, 0, 2, 0])  # wrong at 1, 3, 7
    wrong = show_misclassified(images, labels, predicted, ['a', 'b', 'c'], num_cols=2)
    np.testing.assert_array_equal(wrong, [1, 3, 7])
    axes = plt.gcf().axes
    assert len(axes) == 3  # 3 errors in rows of 2: 2 rows, the empty cell removed
    assert [ax.get_title() for ax in axes] == ['b\n→ c', 'a\n→ b', 'b\n→ a']
    np.testing.assert_allclose(drawn(axes[1]), (images[3, 0] - images[3].min()) / 15, rtol=1e-6)
    plt.close('all')
    show_misclassified(images, labels, predicted, ['a', 'b', 'c'])  # rows of 8: one row of 3
    assert len(plt.gcf().axes) == 3
    assert plt.gcf().get_size_inches()[0] == pytest.approx(3 * 1.5)
    plt.close('all')
    assert len(show_misclassified(images, labels, labels, ['a', 'b', 'c'])) == 0
    assert not plt.get_fignums()  # no error, no figure
    with pytest.raises(ValueError, match='as many'):
        show_misclassified(images[:3], labels, predicted, ['a', 'b', 'c'])
