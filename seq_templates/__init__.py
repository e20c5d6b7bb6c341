"""seq-templates: ready-made Keras 3 / TensorFlow templates for sequence problems.

The package holds the shared, tested plumbing (configuration, data readers and the
dataset registry, preprocessing layers, recurrent layer factories, training,
evaluation and export). The templates themselves are single-file apps under
``apps/`` that import this package; the package never imports an app, it loads
one by path (see :mod:`seq_templates.apps_loader`).

``import seq_templates`` is all a process needs before ``keras.saving.load_model`` of a
run's ``model.keras``: the package's Keras objects (the CRF and its loss, the per-word
character RNN, the pinball loss) register themselves with Keras, under the
``seq_templates>`` prefix, as soon as Keras is imported (at once when it already is).
Importing the package does not import Keras itself, so the command line's quick verbs
(``list``, ``new``, ``--help``) stay quick.
"""

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# The modules that register Keras objects (`keras.saving.register_keras_serializable`).
KERAS_OBJECT_MODULES = ("seq_templates.layers.crf", "seq_templates.layers.char_recurrent",
                        "seq_templates.layers.forecasting")


def register_keras_objects():
    """Imports the modules whose Keras objects ``model.keras`` files name (idempotent)."""
    for module_name in KERAS_OBJECT_MODULES:
        importlib.import_module(module_name)


class _RegisterAfterKerasImport(importlib.abc.MetaPathFinder):
    """Runs :func:`register_keras_objects` right after the ``keras`` package has been imported.

    TensorFlow looks for Keras (``find_spec``) before importing it, so the finder stays in
    place until Keras has really been executed; its own lookup skips itself.
    """

    def __init__(self):
        self._looking = False

    def find_spec(self, name, path=None, target=None):
        if name != "keras" or self._looking:
            return None
        self._looking = True
        try:
            spec = importlib.util.find_spec(name)  # the other finders: the real keras
        finally:
            self._looking = False
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            # A module of KERAS_OBJECT_MODULES that imported keras first is half-initialized
            # here: importing it again returns it as it is, and it finishes on its own.
            register_keras_objects()

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    register_keras_objects()
elif not any(isinstance(finder, _RegisterAfterKerasImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKerasImport())
