"""Answers to the exercises of notebook 01, the residual block."""
from mxnet.gluon import nn


class MyResidual(nn.HybridBlock):
    """d2l's residual block: conv3x3-BN-ReLU-conv3x3-BN, plus the input (through
    a 1x1 conv with ``strides`` if ``use_1x1conv``), then ReLU."""

    def __init__(self, num_channels, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
        self.conv3 = (nn.Conv2D(num_channels, kernel_size=1, strides=strides)
                      if use_1x1conv else None)
        self.bn1 = nn.BatchNorm()
        self.bn2 = nn.BatchNorm()

    def hybrid_forward(self, F, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return F.relu(Y + X)


def zero_gamma(net):
    """Set gamma of the last BatchNorm (``bn2``) of every ``Residual`` block of
    d2l's ResNet-18 to 0 (Goyal et al. 2017): each block starts as the identity."""
    for stage in list(net)[4:8]:  # after the stem's conv, BatchNorm, ReLU and max pool
        for blk in stage:
            blk.bn2.gamma.set_data(blk.bn2.gamma.data() * 0)
    return net


def zero_gamma_cifar(net):
    """The same for a CIFAR ResNet (``cifar_resnet56_v1``, ...): its blocks are
    ``BasicBlock``s in ``net.features[3:6]``, the last layer of each ``body`` the
    BatchNorm to zero."""
    for stage in net.features[3:6]:
        for blk in stage:
            blk.body[-1].gamma.set_data(blk.body[-1].gamma.data() * 0)
    return net
