"""Which devices to train on: ``--ctx`` strings, and checks that a GPU can run.

``get_ctx('gpu:0,1')`` gives ``[mx.gpu(0), mx.gpu(1)]`` after checking that
this MXNet can run on both; ``get_ctx()`` picks the first GPU if MXNet sees
one, else the CPU.  The checks turn MXNet's late, cryptic failures into one
line at start that says what to install:

* the ``mxnet`` wheel from PyPI is the CPU build: it has no CUDA at all;
* a CUDA build that sees fewer GPUs than asked for (driver, ``CUDA_VISIBLE_DEVICES``);
* a GPU too new for the build.  MXNet 1.9.1's CUDA wheels (``mxnet-cu112``,
  ``mxnet-cu117``) embed machine code for sm_50, 60, 70, 80 and 86 and no
  PTX, so nothing can be compiled for other GPUs at run time.  Machine code
  runs on a GPU of the same major version and an equal or higher minor one:
  a T4 (7.5) or an RTX 4090 (8.9) works, an H100 (9.0) fails every kernel
  with "no kernel image is available for execution on the device".

The device queries are the small functions ``cuda_build``, ``num_gpus`` and
``compute_capability``, so tests can replace them.
"""
import mxnet as mx

__all__ = ['get_ctx', 'parse_ctx', 'default_ctx', 'check_ctx', 'runs_on',
           'cuda_build', 'num_gpus', 'compute_capability', 'WHEEL_ARCHS']

# major * 10 + minor of every architecture the official CUDA wheels carry code for
WHEEL_ARCHS = (50, 60, 70, 80, 86)
INSTALL = ('install mxnet-cu112 (CUDA 11.2) or mxnet-cu117 (CUDA 11.7), version 1.9.1, '
           'with the CUDA 11 and cuDNN 8 libraries')


# Device queries

def cuda_build():
    """Whether this MXNet was compiled with CUDA (the PyPI ``mxnet`` wheel is not)."""
    return mx.runtime.Features().is_enabled('CUDA')


def num_gpus():
    """How many GPUs this MXNet sees (0 for the CPU build)."""
    if not cuda_build():
        return 0
    try:
        return mx.context.num_gpus()
    except mx.MXNetError as error:  # e.g. a driver older than the CUDA runtime
        reason = str(error).strip().splitlines()[0]
        raise ValueError(f'MXNet cannot query the GPUs ({reason}); check nvidia-smi and the '
                         'NVIDIA driver, or train on the CPU (--ctx cpu)') from None


def compute_capability(device_id):
    """Compute capability of GPU ``device_id`` as ``major * 10 + minor`` (75 for a T4)."""
    return mx.util.get_cuda_compute_capability(mx.gpu(device_id))


# Parsing and checks

def runs_on(capability, archs=WHEEL_ARCHS):
    """Whether a GPU of ``capability`` can run machine code built for ``archs``:
    one of them must have the same major version and a minor one not above it."""
    return any(arch // 10 == capability // 10 and arch % 10 <= capability % 10
               for arch in archs)


def parse_ctx(text):
    """``'cpu'``, ``'gpu'``, ``'gpu:0,1'`` or ``'cpu:0,1'`` -> a list of contexts.

    ``cpu:0,1`` runs two data-parallel replicas on the CPU, which tests use to
    check multi-device training without GPUs.  Raises ``ValueError``.
    """
    def error(reason='expected cpu, gpu, or a kind and ids such as gpu:0,1'):
        return ValueError(f'bad device list {text!r}: {reason}')

    if not isinstance(text, str):
        raise error()
    kind, colon, ids = text.strip().lower().partition(':')
    if kind not in ('cpu', 'gpu'):
        raise error()
    try:
        device_ids = [int(i) for i in ids.split(',')] if colon else [0]
    except ValueError:
        raise error() from None
    negative = [i for i in device_ids if i < 0]
    if negative:
        raise error(f'device ids must be 0 or more, got {negative[0]}')
    repeated = _repeated(device_ids)
    if repeated:
        raise error(f'device ids repeat: {", ".join(map(str, repeated))}')
    return [mx.Context(kind, i) for i in device_ids]


def _repeated(items):
    """The items that occur more than once in the list ``items``, in order of first occurrence."""
    return [item for i, item in enumerate(items)
            if items.count(item) > 1 and items.index(item) == i]


def default_ctx():
    """``[mx.gpu(0)]`` if MXNet sees a GPU, else ``[mx.cpu()]``."""
    return [mx.gpu(0)] if num_gpus() else [mx.cpu()]


def check_ctx(ctx):
    """Raise ``ValueError`` (one line, with what to do) unless MXNet can run on
    every GPU of the list ``ctx``; CPU contexts always pass."""
    gpus = [c for c in ctx if c.device_type == 'gpu']
    if not gpus:
        return
    if not cuda_build():
        raise ValueError(f'cannot use {gpus[0]}: this MXNet is the CPU build; {INSTALL}, '
                         'or train on the CPU (--ctx cpu)')
    count = num_gpus()
    for gpu in gpus:
        if gpu.device_id >= count:
            seen = f'sees only {count} GPU{"s" * (count != 1)}' if count else 'sees no GPU'
            raise ValueError(f'cannot use {gpu}: MXNet {seen}; check nvidia-smi, the NVIDIA '
                             'driver and CUDA_VISIBLE_DEVICES, or train on the CPU (--ctx cpu)')
        capability = compute_capability(gpu.device_id)
        if not runs_on(capability):
            archs = ', '.join(f'sm_{a}' for a in WHEEL_ARCHS)
            raise ValueError(
                f'cannot use {gpu}: its compute capability {capability // 10}.{capability % 10} '
                f'has no code in MXNet 1.9.1 ({archs}, no PTX: "no kernel image is available"); '
                f'use a GPU of those generations, build MXNet from source for '
                f'sm_{capability}, or train on the CPU (--ctx cpu)')


def get_ctx(ctx=None):
    """The contexts to train on, checked: from ``None`` (default device), a
    ``parse_ctx`` string, one ``mx.Context`` or a list or tuple of them.
    Anything else, or a device twice, raises ``ValueError``."""
    expected = ("None, a device string such as 'cpu' or 'gpu:0,1', an mx.Context, "
                "or a list or tuple of mx.Context")
    if ctx is None:
        ctx = default_ctx()
    elif isinstance(ctx, str):
        ctx = parse_ctx(ctx)
    elif isinstance(ctx, mx.Context):
        ctx = [ctx]
    elif isinstance(ctx, (list, tuple)):
        others = [c for c in ctx if not isinstance(c, mx.Context)]
        if others:
            raise ValueError(f'ctx must be {expected}; got a {type(ctx).__name__} holding '
                             f'{others[0]!r}')
    else:
        raise ValueError(f'ctx must be {expected}; got {ctx!r}')
    ctx = list(ctx)
    if not ctx:
        raise ValueError('expected at least one device, got an empty list')
    repeated = _repeated(ctx)
    if repeated:
        raise ValueError(f'devices repeat: {", ".join(map(str, repeated))}')
    check_ctx(ctx)
    return ctx
