"""Batch scoring on Apache Beam: files of raw inputs through a run's SavedModel with RunInference.

Usage::

    python -m seq_templates.beam --run RUN --input F --output G [--signature NAME] [--param NAME=VALUE]
        [--batch-size N] [--num-shards N] [--runner DirectRunner] [other pipeline options]

Every non-blank line of F (a file pattern: ``gs://bucket/texts-*.txt`` on a runner that reads it) is
one input, given as ``seq-templates predict`` takes it (the text itself for a one-input model, a JSON
object keyed by input name otherwise); every answer is one JSON line of G, as ``predict`` writes it
(``{"input": ..., output name: value, ...}``), in no particular order. ``RunInference`` batches the
lines and :class:`SavedModelHandler` answers each batch through the signature with
``batch_predict.Scorer``, loaded once per worker process. RUN may be a remote path (``gs://...``):
each worker copies the run's newest export (and ``run.json``, ``config.yaml``) to a local folder first.
An input the model cannot take fails the pipeline, as ``predict`` refuses the file. Options other than
the ones above go to Beam (``--runner``, ``--project``, ``--direct_num_workers``, ...; the default
runner is DirectRunner). See docs/scaling.md, "Batch scoring", for Dataflow, Flink and Spark.

``apache-beam`` is an optional extra (``pip install 'seq-templates[beam]'``); without it this module
still imports, and :func:`main` says how to install it.
"""

import argparse
import pathlib
import sys
import tempfile

from seq_templates import batch_predict
from seq_templates import errors

try:
    import apache_beam
    from apache_beam.ml.inference import base as inference_base
except ImportError:  # the optional extra is not installed
    apache_beam = None
    inference_base = None

INSTALL_HINT = "apache-beam is not installed; install the extra: pip install 'seq-templates[beam]'."
RUN_FILES = ("run.json", "config.yaml")  # what the app's describe_prediction needs beside the export


def require_beam():
    """Raises a one-line error when apache-beam is not installed."""
    if apache_beam is None:
        raise errors.SeqTemplatesError(INSTALL_HINT)


def is_remote(path):
    """Whether ``path`` is a URI of a file system TensorFlow reads (``gs://``, ``s3://``, ``file://``)."""
    return "://" in str(path)


def local_copy(model, folder=None):
    """A local copy of a remote run or export: its newest version, ``run.json`` and ``config.yaml``.

    Args:
        model: A run directory, export folder or version folder, as a URI ``tf.io.gfile`` reads.
        folder: Where to copy (a new temporary folder by default).

    Returns:
        The local path to give :class:`batch_predict.Scorer` (``model`` itself when it is local).

    Raises:
        SeqTemplatesError: No SavedModel at ``model``.
    """
    if not is_remote(model):
        return model
    import tensorflow as tf

    model = str(model).rstrip("/")
    gfile = tf.io.gfile
    folder = pathlib.Path(folder or tempfile.mkdtemp(prefix="seq_templates_model_"))
    if gfile.exists(f"{model}/saved_model.pb"):
        _copy_tree(model, folder / "export" / "1")
        return folder
    for root in (f"{model}/export", model):
        versions = sorted(int(name.rstrip("/")) for name in (gfile.listdir(root) if gfile.isdir(root) else [])
                          if name.rstrip("/").isdigit() and gfile.exists(f"{root}/{name.rstrip('/')}/saved_model.pb"))
        if versions:
            _copy_tree(f"{root}/{versions[-1]}", folder / "export" / str(versions[-1]))
            for name in RUN_FILES if root != model else ():
                if gfile.exists(f"{model}/{name}"):
                    gfile.copy(f"{model}/{name}", str(folder / name), overwrite=True)
            return folder
    raise errors.SeqTemplatesError(
        f"No SavedModel found at '{model}'; pass a run directory, its export/ folder or a version folder "
        "holding saved_model.pb.")


def _copy_tree(source, destination):
    import tensorflow as tf

    for directory, _, files in tf.io.gfile.walk(source):
        relative = directory[len(source):].lstrip("/")
        target = pathlib.Path(destination) / relative
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            tf.io.gfile.copy(f"{directory.rstrip('/')}/{name}", str(target / name), overwrite=True)


class SavedModelHandler(inference_base.ModelHandler if inference_base else object):
    """A RunInference model handler for one signature of a seq-templates export.

    Examples are raw input lines (strings); each prediction is the answer record ``predict`` prints.

    Args:
        model: A run directory, export folder or version folder (local, or a URI ``tf.io.gfile`` reads).
        signature: The signature to call.
        parameters: ``NAME=VALUE`` strings: one value of an input for every example.
        batch_size: The most inputs per call of the signature.
    """

    def __init__(self, model, signature="serving_default", parameters=(), batch_size=batch_predict.DEFAULT_BATCH_SIZE):
        require_beam()
        super().__init__(min_batch_size=1, max_batch_size=batch_size)
        self.model = str(model)
        self.signature = signature
        self.parameters = list(parameters)
        self.batch_size = batch_size

    def load_model(self):
        """Loads the export once per worker process (copied to local disk first when remote)."""
        scorer = batch_predict.Scorer(local_copy(self.model), self.signature, self.parameters, self.batch_size)
        scorer.load()
        return scorer

    def run_inference(self, batch, model, inference_args=None):
        """Answers a batch of input lines: one ``PredictionResult(line, record)`` each."""
        records = model.score([("input line", line) for line in batch])
        return [inference_base.PredictionResult(line, record) for line, record in zip(batch, records)]

    def get_metrics_namespace(self):
        return "seq_templates"


def _is_input(line):
    return bool(line.strip())


def _without_byte_order_mark(line):
    return line[1:] if line.startswith("\ufeff") else line


def _json_line(result):
    return batch_predict.json_line(result.inference)


def build_pipeline(pipeline, input_pattern, output, handler, num_shards=1):
    """Adds read → RunInference → write to ``pipeline``.

    Args:
        pipeline: An ``apache_beam.Pipeline``.
        input_pattern: Text files of inputs, one a line (a glob or URI Beam reads).
        output: The output file (``num_shards`` 1) or the prefix of its shards.
        handler: A :class:`SavedModelHandler`.
        num_shards: Output files; 1 writes exactly ``output``, 0 lets the runner choose
            (``output-SSSSS-of-NNNNN``).

    Returns:
        The write's result.
    """
    shard_options = {"num_shards": 1, "shard_name_template": ""} if num_shards == 1 else {"num_shards": num_shards}
    return (pipeline
            | "Read inputs" >> apache_beam.io.ReadFromText(input_pattern)
            | "Drop byte-order mark" >> apache_beam.Map(_without_byte_order_mark)
            | "Drop blank lines" >> apache_beam.Filter(_is_input)
            | "Score" >> inference_base.RunInference(handler)
            | "To JSON lines" >> apache_beam.Map(_json_line)
            | "Write answers" >> apache_beam.io.WriteToText(output, **shard_options))


def build_parser():
    """The pipeline's own arguments (the rest are Beam's pipeline options)."""
    parser = argparse.ArgumentParser(
        prog="python -m seq_templates.beam", description=__doc__.splitlines()[0],
        epilog="Other options go to Beam: --runner (default DirectRunner), --direct_num_workers, --project, "
               "--region, --temp_location, --flink_master, --spark_master_url, ... See docs/scaling.md.")
    parser.add_argument("--run", required=True, metavar="RUN|EXPORT", help="a run directory or export folder")
    parser.add_argument("--input", required=True, metavar="FILES", help="text files of inputs, one a line")
    parser.add_argument("--output", required=True, metavar="FILE",
                        help="the JSON-lines file of answers (the prefix of its shards with --num-shards != 1)")
    parser.add_argument("--signature", default="serving_default", help="the signature to call")
    parser.add_argument("--param", metavar="NAME=VALUE", action="append", default=[],
                        help="a value for the signature's input NAME, the same for every example")
    parser.add_argument("--batch-size", metavar="N", type=int, default=batch_predict.DEFAULT_BATCH_SIZE,
                        help="the most inputs per call of the export (default 512)")
    parser.add_argument("--num-shards", metavar="N", type=int, default=1,
                        help="output files: 1 (default) writes exactly --output; 0 lets the runner choose")
    return parser


def main(argv=None):
    """Runs the scoring pipeline; returns 0 when it finished."""
    arguments, pipeline_arguments = build_parser().parse_known_args(argv)
    require_beam()
    from apache_beam.options import pipeline_options

    if arguments.batch_size < 1:
        raise errors.SeqTemplatesError(f"--batch-size {arguments.batch_size}: expected at least 1.")
    if arguments.num_shards < 0:
        raise errors.SeqTemplatesError(f"--num-shards {arguments.num_shards}: expected 0 (the runner's choice) "
                                       "or more.")
    if not is_remote(arguments.output):
        output_folder = pathlib.Path(arguments.output).parent
        if not output_folder.is_dir():
            raise errors.SeqTemplatesError(
                f"--output '{arguments.output}': the folder '{output_folder}' does not exist; create it first.")
    if not is_remote(arguments.run):  # no export, no such signature, a bad --param: say so now, not from a worker
        batch_predict.Scorer(arguments.run, arguments.signature, arguments.param, arguments.batch_size).load()
    if not any(item == "--runner" or item.startswith("--runner=") for item in pipeline_arguments):
        pipeline_arguments = [*pipeline_arguments, "--runner=DirectRunner"]
    options = pipeline_options.PipelineOptions(pipeline_arguments)
    handler = SavedModelHandler(arguments.run, arguments.signature, arguments.param, arguments.batch_size)
    with apache_beam.Pipeline(options=options) as pipeline:
        build_pipeline(pipeline, arguments.input, arguments.output, handler, arguments.num_shards)
    print(f"Wrote {arguments.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from seq_templates import cli

    cli._import_tensorflow_quietly()  # this is an entry point too: no C++ start-up lines over the answer
    sys.exit(cli.run_main(main))
