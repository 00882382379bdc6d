"""Answers to the exercises of notebook 05."""
from mxnet.gluon import nn


class MyResNeXtBlock(nn.HybridBlock):
    """d2l's ResNeXt block, ``groups`` the cardinality (the number of groups)."""

    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(**kwargs)
        bot_channels = int(round(num_channels * bot_mul))
        self.conv1 = nn.Conv2D(bot_channels, kernel_size=1)
        self.conv2 = nn.Conv2D(bot_channels, kernel_size=3, padding=1, strides=strides,
                               groups=groups)
        self.conv3 = nn.Conv2D(num_channels, kernel_size=1)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm(), nn.BatchNorm(), nn.BatchNorm()
        if use_1x1conv:
            self.conv4 = nn.Conv2D(num_channels, kernel_size=1, strides=strides)
            self.bn4 = nn.BatchNorm()
        else:
            self.conv4 = None

    def hybrid_forward(self, F, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)


class MyBottleneck(MyResNeXtBlock):
    """He et al.'s bottleneck with d2l's arguments: 1x1 to num_channels // 4, 3x3, 1x1 back.

    It is the ResNeXt block of one group with ``bot_mul = 1/4`` (``num_channels``
    a multiple of 4, as in every ResNet), so the stride is on the 3x3 conv, as
    in torchvision's "v1.5" (the notebook's ResNeXt table makes ResNet-50 the
    same way); ``check_bottleneck`` takes it there or on the first 1x1 conv, as
    He et al. put it.
    """

    def __init__(self, num_channels, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(num_channels, 1, 0.25, use_1x1conv=use_1x1conv, strides=strides,
                         **kwargs)


class MyZeroPad(nn.HybridBlock):
    """Option A shortcut: keep every ``stride``-th pixel, append zero channels."""

    def __init__(self, channels, stride, in_channels, **kwargs):
        super().__init__(**kwargs)
        self.extra = channels - in_channels
        self.pool = nn.AvgPool2D(pool_size=1, strides=stride)

    def hybrid_forward(self, F, x):
        x = self.pool(x)
        if not self.extra:
            return x
        zeros = F.zeros_like(F.slice_axis(x, axis=1, begin=0, end=self.extra))
        return F.concat(x, zeros, dim=1)
