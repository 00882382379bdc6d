"""Tests of gluon_resnet.devices: --ctx parsing and the GPU checks, with the
device queries stubbed (this machine has the CPU build of MXNet and no GPU)."""
import mxnet as mx
import pytest

from gluon_resnet import devices


def stub_gpus(monkeypatch, count, capability=75, cuda=True):
    """Pretend MXNet is a CUDA build seeing ``count`` GPUs of ``capability``."""
    monkeypatch.setattr(devices, 'cuda_build', lambda: cuda)
    monkeypatch.setattr(devices.mx.context, 'num_gpus', lambda: count)
    monkeypatch.setattr(devices, 'compute_capability', lambda device_id: capability)


@pytest.mark.parametrize('text, expected', [
    ('cpu', [mx.cpu(0)]),
    ('gpu', [mx.gpu(0)]),
    ('gpu:0,1', [mx.gpu(0), mx.gpu(1)]),
    ('cpu:0,1', [mx.cpu(0), mx.cpu(1)]),
    (' GPU:2 ', [mx.gpu(2)]),
])
def test_parse_ctx(text, expected):
    assert devices.parse_ctx(text) == expected


@pytest.mark.parametrize('text', ['tpu', 'gpu:', 'gpu:a', 'gpu:0,0', 'gpu:-1', 'cpu;1', ''])
def test_parse_ctx_rejects(text):
    with pytest.raises(ValueError, match='bad device list'):
        devices.parse_ctx(text)


@pytest.mark.parametrize('text, reason', [
    ('cpu:0,0', 'device ids repeat: 0'),
    ('gpu:1,2,1,2', 'device ids repeat: 1, 2'),
    ('gpu:0,-1', 'device ids must be 0 or more, got -1'),
    ('tpu', 'expected cpu, gpu, or a kind and ids such as gpu:0,1'),
])
def test_parse_ctx_says_why(text, reason):
    with pytest.raises(ValueError) as error:
        devices.get_ctx(text)
    assert str(error.value) == f'bad device list {text!r}: {reason}'


@pytest.mark.parametrize('ctx, got', [
    (5, 'got 5'),
    (1.5, 'got 1.5'),
    (True, 'got True'),
    (b'cpu', "got b'cpu'"),
    ({mx.cpu()}, r'got \{cpu\(0\)\}'),
    ([mx.cpu(), 'gpu'], "got a list holding 'gpu'"),
    ((mx.cpu(), 0), 'got a tuple holding 0'),
])
def test_get_ctx_rejects_other_types(ctx, got):
    with pytest.raises(ValueError, match=r"^ctx must be None, a device string such as 'cpu' or "
                                         r"'gpu:0,1', an mx.Context, or a list or tuple of "
                                         r'mx.Context; ' + got + '$'):
        devices.get_ctx(ctx)


def test_get_ctx_takes_a_tuple_and_refuses_repeats():
    assert devices.get_ctx((mx.cpu(0), mx.cpu(1))) == [mx.cpu(0), mx.cpu(1)]
    with pytest.raises(ValueError, match=r'^devices repeat: cpu\(1\)$'):
        devices.get_ctx([mx.cpu(1), mx.cpu(0), mx.cpu(1)])


def test_this_machine_is_the_cpu_build():
    assert not devices.cuda_build()
    assert devices.num_gpus() == 0
    assert devices.get_ctx() == [mx.cpu()]
    with pytest.raises(ValueError, match='CPU build.*mxnet-cu112.*mxnet-cu117.*cuDNN 8'):
        devices.get_ctx('gpu')


def test_default_is_first_gpu_if_any(monkeypatch):
    stub_gpus(monkeypatch, 2)
    assert devices.get_ctx() == [mx.gpu(0)]
    stub_gpus(monkeypatch, 0)
    assert devices.get_ctx() == [mx.cpu()]


def test_cpu_contexts_need_no_gpu(monkeypatch):
    stub_gpus(monkeypatch, 0, cuda=False)
    assert devices.get_ctx('cpu:0,1') == [mx.cpu(0), mx.cpu(1)]
    assert devices.get_ctx(mx.cpu(1)) == [mx.cpu(1)]


def test_cuda_build_without_gpu(monkeypatch):
    stub_gpus(monkeypatch, 0)
    with pytest.raises(ValueError, match=r'gpu\(0\): MXNet sees no GPU; check nvidia-smi'):
        devices.get_ctx('gpu')


def test_more_gpus_than_seen(monkeypatch):
    stub_gpus(monkeypatch, 2)
    assert devices.get_ctx('gpu:0,1') == [mx.gpu(0), mx.gpu(1)]
    with pytest.raises(ValueError, match=r'gpu\(2\): MXNet sees only 2 GPUs'):
        devices.get_ctx('gpu:1,2')


def test_gpu_query_failure_is_one_line(monkeypatch):
    def fail():
        raise mx.MXNetError('CUDA: CUDA driver version is insufficient\nStack trace: ...')
    monkeypatch.setattr(devices, 'cuda_build', lambda: True)
    monkeypatch.setattr(devices.mx.context, 'num_gpus', fail)
    with pytest.raises(ValueError, match=r'cannot query the GPUs \(CUDA: CUDA driver version '
                                         r'is insufficient\); check nvidia-smi') as error:
        devices.get_ctx('gpu')
    assert '\n' not in str(error.value)


@pytest.mark.parametrize('capability, runs', [
    (50, True), (52, True), (53, True),  # Maxwell
    (60, True), (61, True),              # Pascal: P100, GTX 10x0
    (70, True), (75, True),              # V100, T4 (runs sm_70 code)
    (80, True), (86, True), (89, True),  # A100, RTX 30x0, RTX 40x0 (runs sm_86 code)
    (37, False), (35, False),            # Kepler: K80
    (90, False), (100, False), (120, False),  # Hopper, Blackwell: no kernel image
])
def test_runs_on(capability, runs):
    assert devices.runs_on(capability) is runs


def test_gpu_too_new(monkeypatch):
    stub_gpus(monkeypatch, 1, capability=90)
    with pytest.raises(ValueError) as error:
        devices.get_ctx('gpu')
    message = str(error.value)
    assert message.startswith('cannot use gpu(0): its compute capability 9.0 has no code')
    assert 'sm_50, sm_60, sm_70, sm_80, sm_86' in message
    assert 'no kernel image is available' in message and 'build MXNet from source' in message
    assert '\n' not in message


def test_supported_gpu_passes(monkeypatch):
    stub_gpus(monkeypatch, 4, capability=89)
    assert devices.get_ctx([mx.gpu(3)]) == [mx.gpu(3)]


def test_empty_list():
    with pytest.raises(ValueError, match='at least one device'):
        devices.get_ctx([])
