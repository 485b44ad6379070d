"""Install llmvision: ``pip install -e .`` (add ``[dev]`` for the test tools).

Versions are pinned to a set that installs together without a compile step on current Python
(no mmdet, no compiled mmcv: see the opening section of README.md). ``INSTALL_REQUIRES`` lists what
llmvision and tools/ import; the evaluators' reference implementations (lvis-api, pycocotools,
faster-coco-eval), used only by the parity tests and benchmarks, are in the ``dev`` extra.
"""
from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    'torch==2.14.1',
    'torchvision==0.29.1',
    'mmengine==0.10.7',
    'mmcv-lite==2.2.0',
    'transformers==5.18.0',
    'peft==0.21.0',
    'timm==1.0.31',  # REF-VLM's ConvNeXt visual encoder
    'tokenizers',
    'safetensors',
    'nltk',
    'numpy',
    'scipy',
    'opencv-python-headless',
    'pillow',
    'scikit-image',
    'deepspeed==0.19.8',
    'tqdm',
    'matplotlib',  # tools/analyze_logs.py
]
DEV_REQUIRES = [
    'pytest',
    'pytest-timeout',
    'ruff==0.17.6',
    # reference implementations the evaluator parity tests / benchmarks compare against
    'pycocotools',
    'lvis==0.5.3',
    'faster-coco-eval==1.8.0',
]

setup(
    name='llmvision',
    version='0.1.0',
    description='Config-driven training of LLM-for-vision methods on MMEngine',
    packages=find_packages(include=['llmvision', 'llmvision.*']),
    python_requires='>=3.10',
    install_requires=INSTALL_REQUIRES,
    extras_require={'dev': DEV_REQUIRES},
)
