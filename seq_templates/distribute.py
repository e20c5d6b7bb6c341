"""Distribution: the ``tf.distribute`` strategy a run trains under, who writes, and two Keras corrections.

``train.strategy`` names the strategy (:data:`STRATEGIES`):

- ``one_device``: one process on one device, as Keras trains without a strategy (the default
  strategy: the first GPU when there is one, else the CPU). Single-process runs are unchanged.
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over this machine's GPUs (one replica per GPU).
- ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` over the processes ``TF_CONFIG``
  describes (``seq-templates launch`` writes it for local workers; docs/scaling.md for clusters).
- ``auto``: ``multi_worker`` when ``TF_CONFIG`` describes several workers, else ``mirrored`` when
  several GPUs are visible, else ``one_device``.

``train.batch_size`` is the global batch: ``tf.distribute`` splits every batch among the replicas
(:func:`shard_by_data` asks for sharding by data: each worker runs the whole input pipeline and
keeps its part of every batch). Only the chief (``TF_CONFIG``'s ``chief``, else worker 0) writes
the run directory; :func:`setup` says which process this is.

**Keras corrections.** ``MultiWorkerMirroredStrategy`` with ``model.fit`` fails in Keras 3.15 at two
places (keras-team/keras#20585, tensorflow/tensorflow#72388), corrected by :func:`keras_corrections`
only while a multi-worker ``fit`` runs and only for :data:`CORRECTED_KERAS_VERSIONS`:

1. ``TensorFlowTrainer._maybe_symbolic_build`` reduces the first batch, a ``PerReplica`` of token
   ids, with ``strategy.reduce("MEAN", ...)`` across workers ("Attempt to convert a value
   (PerReplica...) to a Tensor"): the correction builds the model from one replica's batch shapes
   (the distributed dataset's element spec), drawing no batch, so every epoch sees the order a
   one-process run sees.
2. ``reduce_per_replica`` reduces the step's scalar metrics with ``strategy.reduce("MEAN", v,
   axis=0)`` ("Invalid reduction dimension 0 for input with 0 dimensions"): the correction reduces
   scalars with ``axis=None`` (the mean over replicas, the same on every worker).

tests/test_distribute.py fails, saying "remove the correction", the day the installed Keras no longer
has either fault.
"""

import contextlib
import dataclasses
import json
import os
import typing

from seq_templates import errors

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
# Keras versions (major.minor) whose TensorFlow trainer has the two faults corrected here (measured
# on 3.15.1). Another version runs uncorrected, with a warning: check it, then extend this or drop it.
CORRECTED_KERAS_VERSIONS = ("3.15",)
WORKER_TYPES = ("chief", "worker")


@dataclasses.dataclass(frozen=True)
class ClusterTask:
    """This process's place in the cluster ``TF_CONFIG`` describes.

    Attributes:
        cluster: ``{"chief": [address], "worker": [address, ...]}`` as in ``TF_CONFIG``.
        task_type: ``chief`` or ``worker``.
        task_index: The index among the addresses of ``task_type``.
    """

    cluster: dict
    task_type: str
    task_index: int

    @property
    def num_workers(self):
        """Training processes in the cluster (the chief, if any, and the workers)."""
        return sum(len(self.cluster.get(task_type, [])) for task_type in WORKER_TYPES)

    @property
    def is_chief(self):
        """The chief writes the run directory: task ``chief``, or worker 0 when the cluster has no chief."""
        if self.cluster.get("chief"):
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0


def read_tf_config(environ=None):
    """Reads ``TF_CONFIG`` (``{"cluster": {...}, "task": {"type": ..., "index": ...}}``).

    Args:
        environ: The environment (default ``os.environ``).

    Returns:
        A :class:`ClusterTask`, or None when ``TF_CONFIG`` is unset or empty.

    Raises:
        SeqTemplatesError: ``TF_CONFIG`` is not JSON, has no cluster of workers, names a task type
            other than chief or worker (parameter servers and evaluators are not supported), or an
            index outside its list.
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return None
    fix = ('set TF_CONFIG to {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
           '"index": i}} (docs/scaling.md), or unset it to train in one process.')
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise errors.SeqTemplatesError(f"TF_CONFIG is not valid JSON ({error.msg}); {fix}") from None
    cluster = document.get("cluster") if isinstance(document, dict) else None
    task = document.get("task") if isinstance(document, dict) else None
    if not isinstance(cluster, dict) or not any(isinstance(cluster.get(name), list) and cluster.get(name)
                                                for name in WORKER_TYPES):
        raise errors.SeqTemplatesError(f"TF_CONFIG has no cluster with chief or worker addresses, received "
                                       f"{text!r}; {fix}")
    others = sorted(set(cluster) - set(WORKER_TYPES))
    if others:
        raise errors.SeqTemplatesError(f"TF_CONFIG's cluster has {', '.join(others)} tasks; only chief and worker "
                                       f"tasks are supported (MultiWorkerMirroredStrategy); {fix}")
    if not isinstance(task, dict) or task.get("type") not in WORKER_TYPES:
        raise errors.SeqTemplatesError(f"TF_CONFIG's task must have type chief or worker, received "
                                       f"{task!r}; {fix}")
    index = task.get("index", 0)
    addresses = cluster.get(task["type"]) or []
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(addresses):
        raise errors.SeqTemplatesError(f"TF_CONFIG's task index {index!r} is not one of the {len(addresses)} "
                                       f"{task['type']} addresses; {fix}")
    return ClusterTask(cluster=cluster, task_type=task["type"], task_index=index)


def choose(requested, num_gpus, cluster_task):
    """The strategy a run uses: ``requested``, or for ``auto`` what the machine and cluster offer.

    Args:
        requested: ``train.strategy``, one of :data:`STRATEGIES`.
        num_gpus: GPUs visible to this process.
        cluster_task: :func:`read_tf_config`'s answer (None without ``TF_CONFIG``).

    Returns:
        ``one_device``, ``mirrored`` or ``multi_worker``.

    Raises:
        SeqTemplatesError: ``multi_worker`` without a cluster of several workers, or a
            single-process strategy while ``TF_CONFIG`` describes several workers.
    """
    if requested not in STRATEGIES:
        raise errors.SeqTemplatesError(f"train.strategy expects one of {', '.join(STRATEGIES)}, "
                                       f"received {requested!r}.")
    workers = cluster_task.num_workers if cluster_task else 1
    if requested == "auto":
        return "multi_worker" if workers > 1 else "mirrored" if num_gpus > 1 else "one_device"
    if requested == "multi_worker" and workers < 2:
        raise errors.SeqTemplatesError(
            f"train.strategy=multi_worker needs TF_CONFIG describing several workers, found "
            f"{'none' if cluster_task is None else 'one'}; start them with `seq-templates launch --workers 2 "
            "-- train ...` (one machine) or set TF_CONFIG on each (docs/scaling.md).")
    if requested != "multi_worker" and workers > 1:
        raise errors.SeqTemplatesError(
            f"TF_CONFIG describes {workers} workers but train.strategy={requested} trains each process alone; "
            "set train.strategy=multi_worker (or auto), or unset TF_CONFIG.")
    return requested


@dataclasses.dataclass
class Distribution:
    """The strategy a process trains under and its part in the run.

    Attributes:
        name: ``one_device``, ``mirrored`` or ``multi_worker``.
        strategy: The ``tf.distribute.Strategy`` (the default strategy for ``one_device``).
        cluster_task: This process's :class:`ClusterTask`, or None outside a cluster.
    """

    name: str
    strategy: typing.Any
    cluster_task: typing.Optional[ClusterTask] = None

    @property
    def is_chief(self):
        """Whether this process writes the run directory, the export and TensorBoard logs."""
        return self.cluster_task is None or self.name != "multi_worker" or self.cluster_task.is_chief

    @property
    def num_replicas(self):
        """Replicas training in sync, over every worker: each takes its share of the global batch."""
        return self.strategy.num_replicas_in_sync


_distributions = {}  # strategy name -> Distribution: TensorFlow sets a cluster up once per process


def setup(requested, environ=None):
    """Returns this process's :class:`Distribution` for ``train.strategy=requested``, made once.

    Call it before TensorFlow runs any operation: ``MultiWorkerMirroredStrategy`` configures the
    collective operations at program start-up and waits here until every worker has started.

    Raises:
        SeqTemplatesError: As :func:`read_tf_config` and :func:`choose`.
    """
    import tensorflow as tf

    cluster_task = read_tf_config(environ)
    name = choose(requested, len(tf.config.list_physical_devices("GPU")), cluster_task)
    if name not in _distributions:
        if name == "multi_worker":
            print(f"Multi-worker training: {cluster_task.task_type} {cluster_task.task_index} of "
                  f"{cluster_task.num_workers} workers; waiting for all of them to connect.", flush=True)
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        elif name == "mirrored":
            strategy = tf.distribute.MirroredStrategy()
        else:
            strategy = tf.distribute.get_strategy()  # the default strategy: Keras as without one
        _distributions[name] = Distribution(name, strategy, cluster_task if name == "multi_worker" else None)
    return _distributions[name]


def is_multi_worker(strategy):
    """Whether ``strategy`` trains over several worker processes (collective operations across them)."""
    import tensorflow as tf

    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())  # noqa: SLF001 - as Keras tests it


def is_distributed(strategy):
    """Whether ``strategy`` splits batches among several replicas or workers."""
    return strategy.num_replicas_in_sync > 1 or is_multi_worker(strategy)


@contextlib.contextmanager
def building(train_config, strategy=None):
    """The context a model is built in: ``strategy.scope()`` and, with ``train.mixed_precision``,
    the ``mixed_float16`` policy (variables in float32, computation in float16; the previous
    policy comes back afterwards: a saved model records each layer's policy itself).

    Args:
        train_config: The run's ``TrainConfig``.
        strategy: The ``tf.distribute.Strategy`` whose variables the model gets, or None.
    """
    import keras

    previous_policy = keras.mixed_precision.global_policy()
    if getattr(train_config, "mixed_precision", False):
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            yield
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def check_float32_outputs(model):
    """Refuses a model whose outputs are not float32 (a mixed-precision model's last layer must
    compute in float32: ``dtype="float32"`` on its final Dense or an ``Activation("linear",
    dtype="float32")`` after it).

    Raises:
        SeqTemplatesError: Naming the outputs computed in another type.
    """
    import keras

    lower = [f"{tensor.name} ({tensor.dtype})" for tensor in keras.tree.flatten(model.outputs)
             if str(tensor.dtype) != "float32"]
    if lower:
        raise errors.SeqTemplatesError(
            f"Under train.mixed_precision the model's outputs must be float32, received {', '.join(lower)}; "
            "give the app's last layer dtype=\"float32\" (docs/scaling.md, mixed precision).")


def shard_by_data(dataset, num_replicas):
    """``dataset`` for ``num_replicas`` replicas: sharded by data, and no replica's share of a batch empty.

    With ``AutoShardPolicy.DATA`` every worker runs the whole pipeline and keeps its part of each
    (global) batch, so all workers take the same number of steps. A batch with fewer examples
    than replicas (a bucket's last, short one) would leave some replicas an empty batch, which
    not every layer takes (a ``Reshape((-1, filters))`` cannot infer its -1 from no values): it is
    left out, at most ``num_replicas - 1`` examples per bucket and epoch.

    Args:
        dataset: Batches of ``(features, targets[, sample_weights])``.
        num_replicas: Replicas in sync (``strategy.num_replicas_in_sync``).
    """
    import tensorflow as tf

    dataset = dataset.filter(lambda *batch: tf.shape(tf.nest.flatten(batch)[0])[0] >= num_replicas)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def agree(value, strategy, reduction="MEAN"):
    """One number every worker of a multi-worker run holds alike: ``value`` reduced across workers.

    Every worker must call it at the same point (it is a collective operation); outside a
    multi-worker run it returns ``value`` as it is.

    Args:
        value: This worker's number.
        strategy: The model's ``tf.distribute.Strategy``.
        reduction: ``MEAN``, ``MAX`` or ``MIN`` over the replicas.

    Returns:
        A float (``value`` itself outside a multi-worker run).
    """
    import tensorflow as tf

    if strategy is None or not is_multi_worker(strategy):
        return value
    return float(_reducer(strategy, reduction)(tf.constant(value, tf.float64)))


_reducers = {}


def _reducer(strategy, reduction):
    """A ``tf.function`` (eager collectives are slow) gathering a scalar from every replica and reducing it."""
    import tensorflow as tf

    key = (id(strategy), reduction)
    if key not in _reducers:
        reduce = {"MEAN": tf.math.reduce_mean, "MAX": tf.math.reduce_max, "MIN": tf.math.reduce_min}[reduction]

        @tf.function
        def reduce_across_replicas(value):
            def replica_value():
                context = tf.distribute.get_replica_context()
                return reduce(context.all_gather(tf.reshape(value, [1]), axis=0))

            return strategy.experimental_local_results(strategy.run(replica_value))[0]

        _reducers[key] = reduce_across_replicas
    return _reducers[key]


def corrections_apply(version=None):
    """Whether the installed Keras (or ``version``) is one the two corrections are known for."""
    import keras

    major_minor = ".".join((version or keras.__version__).split(".")[:2])
    return major_minor in CORRECTED_KERAS_VERSIONS


def _corrected_maybe_symbolic_build(self, iterator=None, data_batch=None):
    """``TensorFlowTrainer._maybe_symbolic_build`` building from the shapes of one replica's batches.

    The model is built from symbolic tensors (only shapes and dtypes count), so the shapes come
    from the distributed dataset's element spec, one replica's part of it, and no batch is drawn:
    drawing one would start an extra pass over the dataset, and a dataset reshuffled at every pass
    would then give every epoch another order than a one-process run with the same seed.
    """
    import tensorflow as tf

    if self._distribute_strategy is None:
        return
    if iterator is not None:
        dataset = getattr(iterator, "_distributed_dataset", None)
        if dataset is not None:
            data_batch = tf.nest.map_structure(_one_replica_spec, dataset.element_spec)
        else:  # not a TFEpochIterator: this worker's first replica's first batch
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(
                    lambda value: (self.distribute_strategy.experimental_local_results(value)[0]
                                   if isinstance(value, tf.distribute.DistributedValues) else value),
                    next(batches))
                break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _one_replica_spec(spec):
    """The spec of one replica's value in a distributed dataset's element spec (a ``PerReplicaSpec`` or not)."""
    value_specs = getattr(spec, "_value_specs", None)
    return value_specs[0] if value_specs else spec


def _corrected_reduce_per_replica(original):
    """``reduce_per_replica`` whose multi-worker mean reduces scalars over ``axis=None``."""
    import tensorflow as tf
    from keras.src import tree

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not is_multi_worker(strategy):
            return original(values, strategy, reduction)

        def reduce(value):
            local = strategy.experimental_local_results(value)[0] if isinstance(
                value, tf.distribute.DistributedValues) else value
            return strategy.reduce("MEAN", value, axis=0 if local.shape.rank else None)

        return tree.map_structure(reduce, values)

    return reduce_per_replica


@contextlib.contextmanager
def keras_corrections(strategy):
    """Installs the two corrections while a multi-worker ``fit`` runs (nothing for other strategies).

    With a Keras version outside :data:`CORRECTED_KERAS_VERSIONS` it installs nothing and warns.
    """
    if not is_multi_worker(strategy):
        yield
        return
    import keras
    from keras.src.backend.tensorflow import trainer

    if not corrections_apply():
        print(f"WARNING: Keras {keras.__version__} is not one of the versions whose multi-worker faults "
              f"seq_templates corrects ({', '.join(CORRECTED_KERAS_VERSIONS)}); training runs without the "
              "corrections (seq_templates/distribute.py).", flush=True)
        yield
        return
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    original_reduce = trainer.reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = _corrected_maybe_symbolic_build
    trainer.reduce_per_replica = _corrected_reduce_per_replica(original_reduce)
    try:
        yield
    finally:
        trainer.TensorFlowTrainer._maybe_symbolic_build = original_build
        trainer.reduce_per_replica = original_reduce
