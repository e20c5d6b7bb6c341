"""seq-templates: ready-made Keras 3 / TensorFlow templates for sequence problems.

The package holds the shared, tested plumbing (configuration, data readers and the
dataset registry, preprocessing layers, recurrent layer factories, training,
evaluation and export). The templates themselves are single-file apps under
``apps/`` that import this package; the package never imports an app, it loads
one by path (see :mod:`seq_templates.apps_loader`).
"""

__version__ = "0.1.0"
