"""llmvision registries: children of mmengine's root registries.

Each child has scope ``'llmvision'`` and ``locations`` that are imported lazily the first
time a registry is searched, so configs that name a type by string (``type='GroundingDINO'``)
still work with ``default_scope='llmvision'``. Pure-Python configs reference classes directly
(``type=GroundingDINO``) and never need the lookup; a name missing here falls back to
mmengine's parent registry (for example ``'IterBasedTrainLoop'``).
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

SCOPE = 'llmvision'


def _child(name, parent, locations):
    return Registry(name, parent=parent, scope=SCOPE, locations=locations)


RUNNERS = _child('runner', MMENGINE_RUNNERS, ['llmvision.engine'])
LOOPS = _child('loop', MMENGINE_LOOPS, ['llmvision.engine'])
HOOKS = _child('hook', MMENGINE_HOOKS, ['llmvision.engine'])
LOG_PROCESSORS = _child('log_processor', MMENGINE_LOG_PROCESSORS, ['llmvision.engine'])
OPTIMIZERS = _child('optimizer', MMENGINE_OPTIMIZERS, ['llmvision.engine'])
OPTIM_WRAPPERS = _child('optim_wrapper', MMENGINE_OPTIM_WRAPPERS, ['llmvision.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, ['llmvision.engine'])
PARAM_SCHEDULERS = _child('parameter scheduler', MMENGINE_PARAM_SCHEDULERS, ['llmvision.engine'])

DATASETS = _child('dataset', MMENGINE_DATASETS, ['llmvision.datasets', 'llmvision.datasets.rec'])
DATA_SAMPLERS = _child('data sampler', MMENGINE_DATA_SAMPLERS, ['llmvision.datasets'])
TRANSFORMS = _child('transform', MMENGINE_TRANSFORMS, ['llmvision.datasets.transforms'])
FUNCTIONS = _child('function', MMENGINE_FUNCTIONS, ['llmvision.datasets'])

MODELS = _child('model', MMENGINE_MODELS, ['llmvision.models'])
MODEL_WRAPPERS = _child('model_wrapper', MMENGINE_MODEL_WRAPPERS, ['llmvision.models'])
WEIGHT_INITIALIZERS = _child('weight initializer', MMENGINE_WEIGHT_INITIALIZERS, ['llmvision.models'])
TASK_UTILS = _child('task util', MMENGINE_TASK_UTILS, ['llmvision.models'])

METRICS = _child('metric', MMENGINE_METRICS, ['llmvision.evaluation', 'llmvision.engine'])
EVALUATOR = _child('evaluator', MMENGINE_EVALUATOR, ['llmvision.evaluation'])

VISUALIZERS = _child('visualizer', MMENGINE_VISUALIZERS, ['llmvision.visualization'])
VISBACKENDS = _child('vis_backend', MMENGINE_VISBACKENDS, ['llmvision.visualization'])
