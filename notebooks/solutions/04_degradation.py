"""Answers to the exercises of notebook 04."""
from mxnet.gluon import nn

from gluon_resnet.models import cifar_resnet


def plain_net(depth):
    """He et al.'s plain CIFAR net of ``depth`` = 6n + 2 layers: the ResNet without shortcuts."""
    return cifar_resnet(depth, shortcut=None)


def residual_net(depth):
    """The CIFAR ResNet of ``depth`` layers, option A shortcuts (He et al.)."""
    return cifar_resnet(depth, shortcut='A')


class MyProjection(nn.HybridBlock):
    """Option B shortcut: a 1x1 conv with ``stride`` and ``channels`` outputs, then BatchNorm."""

    def __init__(self, channels, stride, in_channels, **kwargs):
        super().__init__(**kwargs)
        self.conv = nn.Conv2D(channels, kernel_size=1, strides=stride, use_bias=False,
                              in_channels=in_channels)
        self.bn = nn.BatchNorm()

    def hybrid_forward(self, F, x):
        return self.bn(self.conv(x))
