"""gluon_resnet: residual networks on MXNet Gluon, for teaching.

Importing the package sets ``OMP_NUM_THREADS`` to the usable cores unless it
is set already (MXNet would use only half of them): see ``_threads``.
"""
import signal
import sys
import warnings

from ._threads import NUM_THREADS  # before mxnet is imported

if sys.argv[:1] == ['-m']:  # imported by `python -m gluon_resnet.<tool>`: Ctrl-C while
    from ._cli import abort_handler  # MXNet loads ends the tool without a traceback
    signal.signal(signal.SIGINT, abort_handler())
    # The package exports the function `predict`, so the module is imported before
    # runpy runs it as __main__; it defines only functions, so that is harmless.
    warnings.filterwarnings('ignore', "'gluon_resnet.predict' found in sys.modules",
                            RuntimeWarning)
from .blocks import Residual, resnet_block, BasicBlock, Bottleneck, ResNeXtBlock, ZeroPadShortcut
from .models import ResNet, get_model, initialize, list_models, model_info, model_infos, resnet18
from .report import count_parameters, layer_report
from .data import DATASETS, load_data, load_dataset
from .devices import get_ctx
from .checkpoint import load_checkpoint
from .training import evaluate_accuracy, fit
from .predict import predict  # the function: the tool stays `python -m gluon_resnet.predict`
from .draw import draw

__version__ = '0.1.0'

__all__ = ['Residual', 'resnet_block', 'BasicBlock', 'Bottleneck', 'ResNeXtBlock', 'ZeroPadShortcut',
           'ResNet', 'draw',
           'get_model', 'initialize', 'list_models', 'model_info', 'model_infos', 'resnet18', 'count_parameters', 'layer_report', 'DATASETS',
           'load_data', 'load_dataset', 'get_ctx', 'evaluate_accuracy', 'fit', 'load_checkpoint',
           'predict', 'NUM_THREADS']
