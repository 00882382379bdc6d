"""d2l's ResNet-18 in MXNet, written as the book writes it (section 8.6,
chapter_convolutional-modern/resnet.md): the independent implementation that
``tests/test_models.py`` checks ``gluon_resnet.resnet18`` against, with the
weights copied, and the net that the benchmark's ``d2l`` rows train with
``d2l.train_ch6``.

It defines no layers: it stacks the book's block, ``d2l.Residual`` from the
``d2l`` package, in ``nn.Sequential``, imperative, never hybridized.
``d2l.Residual`` calls ``npx.relu``, so build and run the net after
``npx.set_np()``.  This module does not import ``gluon_resnet``: the
``d2l-default`` benchmark child must run as a d2l student does.

``x : (N, C, H, W) -> (N, num_classes)``.
"""
from d2l import mxnet as d2l
from mxnet.gluon import nn

__all__ = ['resnet_block', 'd2l_resnet18']


def resnet_block(num_channels, num_residuals, first_block=False):
    """A stage: ``num_residuals`` blocks, the first halving the resolution
    with a 1x1 projection, except in the first stage (after the max pool)."""
    blk = nn.Sequential()
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.add(d2l.Residual(num_channels, use_1x1conv=True, strides=2))
        else:
            blk.add(d2l.Residual(num_channels))
    return blk


def d2l_resnet18(num_classes=10):
    """The book's ResNet-18: 11,178,378 trainable parameters with 1 input
    channel and 10 classes."""
    net = nn.Sequential()
    net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3), nn.BatchNorm(),
            nn.Activation('relu'), nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    net.add(resnet_block(64, 2, first_block=True), resnet_block(128, 2),
            resnet_block(256, 2), resnet_block(512, 2))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    return net
