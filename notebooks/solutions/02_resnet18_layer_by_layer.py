"""Answers to the exercises of notebook 02: d2l's ResNet-18 (1 input channel,
10 classes) counted by hand, layer by layer."""

STAGES = [(64, 1), (128, 2), (256, 2), (512, 2)]  # (channels, stride of the first block)


def conv_side(side, kernel, stride, padding):
    return (side + 2 * padding - kernel) // stride + 1


def resnet18_parameters(in_channels=1, num_classes=10):
    """Weights, biases and BatchNorm scales and shifts (not the running statistics)."""
    count = 64 * in_channels * 7 * 7 + 64 + 2 * 64  # stem conv with bias, BatchNorm
    c_in = 64
    for c, stride in STAGES:
        for i in range(2):
            count += c_in * c * 9 + c + c * c * 9 + c + 2 * 2 * c  # two 3x3 convs, two BatchNorms
            if i == 0 and (stride != 1 or c_in != c):
                count += c_in * c + c  # the 1x1 projection
            c_in = c
    return count + 512 * num_classes + num_classes  # the dense layer


def resnet18_macs(side, in_channels=1, num_classes=10):
    """Multiply-accumulates of the convs and the dense layer for one side x side image:
    output positions x output channels x input channels x kernel area."""
    side = conv_side(side, 7, 2, 3)
    macs = side * side * 64 * in_channels * 49
    side = conv_side(side, 3, 2, 1)  # the max pool
    c_in = 64
    for c, stride in STAGES:
        for i in range(2):
            s = stride if i == 0 else 1
            out = conv_side(side, 3, s, 1)
            macs += out * out * c * c_in * 9 + out * out * c * c * 9
            if i == 0 and (s != 1 or c_in != c):
                macs += out * out * c * c_in  # the 1x1 projection
            side, c_in = out, c
    return macs + 512 * num_classes
