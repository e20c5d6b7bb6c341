"""Server-side batching: concurrent predict requests merged into one model call, answers split back.

Works like TF Serving's shared batch scheduler with its ``BatchingParameters``:
requests that can share a call join an open batch; a batch runs when it holds
``max_batch_size`` rows, or ``batch_timeout_micros`` after its first request
arrived, on one of ``num_batch_threads`` workers. While every worker is busy,
open batches keep filling, so even a timeout of 0 merges requests under load.

Which requests can share a call: the same loaded signature; the same value for
every input without a batch dimension (a ``seed`` or ``temperature`` given once
per request: requests giving different values never merge); and the same shape
after the batch dimension for every batched input (a ``[batch]`` string input
always merges; numeric windows merge only with windows of the same length, as
padding numbers would change the answer).

Splitting the answer back: every output is cut along its batch dimension. When
the signature has a ``length`` output, sequence outputs (dynamic second axis)
were padded to the longest row of the merged batch; each caller's part is cut
back to the width its own rows need, so it gets the answer it would have got
alone. A signature whose outputs lack a batch dimension is not merged again; a
merged call that fails is retried request by request, so only the request that
causes the failure gets the error.

Each signature's first merged call is checked against the same requests run one
by one; a signature whose answers depend on the rest of the batch (sampling
seeded once per call, say) is from then on served without merging.
"""

import asyncio
import dataclasses
import logging
import typing

import numpy as np

from seq_templates.serving import error_codes

LOGGER = logging.getLogger("seq_templates.serving")


@dataclasses.dataclass
class _Task:
    inputs: dict
    rows: int
    future: asyncio.Future


@dataclasses.dataclass
class _Batch:
    key: tuple
    signature: typing.Any
    deadline: float
    tasks: list = dataclasses.field(default_factory=list)
    rows: int = 0
    full: bool = False


def batch_key(signature, inputs, rows):
    """What requests must share to be merged; None when this request runs alone."""
    if rows is None or not signature.batchable:
        return None
    parts = [id(signature)]
    for name in sorted(inputs):
        array = inputs[name]
        if array.ndim == 0:
            parts.append((name, array.dtype.str, repr(array.item())))
        elif array.shape[0] != rows:
            return None
        else:
            parts.append((name, array.dtype.str, array.shape[1:]))
    return tuple(parts)


def _same_outputs(first, second):
    """Whether two answers agree: equal shapes, equal strings and integers, floats within rounding."""
    if set(first) != set(second):
        return False
    for name, array in first.items():
        other = second[name]
        if np.shape(array) != np.shape(other):
            return False
        if np.asarray(array).dtype.kind == "f":
            if not np.allclose(array, other, rtol=1e-4, atol=1e-5, equal_nan=True):
                return False
        elif not np.array_equal(array, other):
            return False
    return True


def _padding(array):
    return b"" if array.dtype.kind in ("O", "S") else 0


class Batcher:
    """Merges concurrent calls of the same signature (see the module docstring).

    Args:
        parameters: :class:`config_files.BatchingParameters`.
        executor: The thread pool model calls run in.

    Attributes:
        statistics: Counts of ``requests``, ``model_calls`` and ``merged_calls``
            (calls that served more than one request).
    """

    def __init__(self, parameters, executor):
        self.parameters = parameters
        self.executor = executor
        self.statistics = {"requests": 0, "model_calls": 0, "merged_calls": 0}
        self._loop = None

    def _start(self, loop):
        """Binds to the running event loop (again, if a test starts a new one) and starts the workers."""
        self._loop = loop
        self._queue = []
        self._open = {}
        self._wakeup = asyncio.Event()
        self._workers = [loop.create_task(self._work()) for _ in range(self.parameters.num_batch_threads)]

    async def call(self, signature, inputs, rows):
        """Runs ``signature`` on this request's inputs, merged with others when it can be.

        Returns:
            ``{output name: numpy array}`` holding this request's rows only.

        Raises:
            ServingError: From the model call, or RESOURCE_EXHAUSTED when the queue is full.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._start(loop)
        self.statistics["requests"] += 1
        key = batch_key(signature, inputs, rows)
        if key is None or rows > self.parameters.max_batch_size:
            self.statistics["model_calls"] += 1
            return await loop.run_in_executor(self.executor, signature.call, inputs)
        batch = self._open.get(key)
        if batch is None or batch.rows + rows > self.parameters.max_batch_size:
            if batch is not None:
                batch.full = True
                del self._open[key]
            if len(self._queue) >= self.parameters.max_enqueued_batches:
                raise error_codes.ServingError(error_codes.RESOURCE_EXHAUSTED,
                                               "The batch scheduling queue to which this task was submitted is full")
            batch = _Batch(key, signature, loop.time() + self.parameters.batch_timeout_micros / 1e6)
            self._queue.append(batch)
            self._open[key] = batch
            if self.parameters.batch_timeout_micros:
                loop.call_at(batch.deadline, self._wakeup.set)  # its deadline wakes a worker
        task = _Task(inputs, rows, loop.create_future())
        batch.tasks.append(task)
        batch.rows += rows
        if batch.rows >= self.parameters.max_batch_size:
            batch.full = True
            del self._open[key]
        self._wakeup.set()
        return await task.future

    def _take(self):
        """Removes and returns the oldest batch that is full or past its deadline, or None."""
        now = self._loop.time()
        for batch in self._queue:
            if batch.full or batch.deadline <= now:
                self._queue.remove(batch)
                if self._open.get(batch.key) is batch:
                    del self._open[batch.key]
                return batch
        return None

    async def _work(self):
        while True:
            batch = self._take()
            if batch is None:
                self._wakeup.clear()
                if self._queue:  # a timer may fire a little early (the loop's clock resolution): look again
                    earliest = min(waiting.deadline for waiting in self._queue)
                    self._loop.call_at(max(earliest, self._loop.time()) + 0.0005, self._wakeup.set)
                await self._wakeup.wait()  # set by a new request, a full batch or a batch's deadline
                continue
            try:
                await self._run(batch)
            except Exception as error:  # noqa: BLE001 - never lose a worker; the callers get the error
                for task in batch.tasks:
                    if not task.future.done():
                        task.future.set_exception(error)

    async def _run(self, batch):
        tasks = [task for task in batch.tasks if not task.future.cancelled()]
        if not tasks:
            return
        loop = self._loop
        if len(tasks) == 1:
            await self._run_alone(tasks[0], batch.signature)
            return
        merged = {name: (tasks[0].inputs[name] if array.ndim == 0
                         else np.concatenate([task.inputs[name] for task in tasks]))
                  for name, array in tasks[0].inputs.items()}
        self.statistics["model_calls"] += 1
        self.statistics["merged_calls"] += 1
        try:
            outputs = await loop.run_in_executor(self.executor, batch.signature.call, merged)
        except Exception:  # noqa: BLE001 - find the request that fails: each runs alone
            for task in tasks:
                await self._run_alone(task, batch.signature)
            return
        parts = self._split(batch.signature, outputs, [task.rows for task in tasks])
        if parts is None:
            for task in tasks:
                await self._run_alone(task, batch.signature)
            return
        if not batch.signature.merging_verified:
            parts = await self._verify(batch.signature, tasks, parts)
        for task, part in zip(tasks, parts):
            if not task.future.done():
                task.future.set_result(part)

    async def _verify(self, signature, tasks, parts):
        """Checks a signature's first merged call against calls made request by request.

        A signature whose answers depend on what else is in the batch (e.g. sampling
        seeded once per call) is not merged again. Returns the answers to give.
        """
        alone = []
        for task in tasks:
            self.statistics["model_calls"] += 1
            try:
                alone.append(await self._loop.run_in_executor(self.executor, signature.call, task.inputs))
            except Exception:  # noqa: BLE001 - it passed merged but fails alone: do not merge it again
                signature.batchable = False
                return parts
        if all(_same_outputs(part, single) for part, single in zip(parts, alone)):
            signature.merging_verified = True
            return parts
        signature.batchable = False
        LOGGER.warning("Signature %s answers differently when requests are merged; it is served without merging.",
                       signature.name)
        return alone

    async def _run_alone(self, task, signature):
        self.statistics["model_calls"] += 1
        try:
            result = await self._loop.run_in_executor(self.executor, signature.call, task.inputs)
        except Exception as error:  # noqa: BLE001 - handed to the caller
            if not task.future.done():
                task.future.set_exception(error)
            return
        if not task.future.done():
            task.future.set_result(result)

    def _split(self, signature, outputs, row_counts):
        """Each request's rows of a merged call's outputs; None when they cannot be split."""
        total = sum(row_counts)
        if any(np.ndim(array) == 0 or np.shape(array)[0] != total for array in outputs.values()):
            signature.batchable = False  # e.g. an output without a batch dimension: never merge again
            return None
        lengths = outputs.get("length")
        sequence_names = []
        if lengths is not None and lengths.ndim == 1 and lengths.dtype.kind in ("i", "u") and total:
            for name, array in outputs.items():
                spec = signature.output_specs.get(name)
                if (array.ndim >= 2 and spec is not None and spec.shape.rank is not None and spec.shape.rank >= 2
                        and spec.shape[1] is None):
                    sequence_names.append(name)
        extra = {}
        for name in sequence_names:  # how much wider than the longest row the padding makes each output
            extra[name] = outputs[name].shape[1] - int(lengths.max())
        parts = []
        start = 0
        for rows in row_counts:
            part = {name: array[start:start + rows] for name, array in outputs.items()}
            for name in sequence_names:
                width = int(lengths[start:start + rows].max()) + extra[name]
                array = part[name]
                if extra[name] >= 0 and width < array.shape[1]:
                    cut = array[:, width:]
                    if np.all(cut == _padding(array)):
                        part[name] = array[:, :width]
            parts.append(part)
            start += rows
        return parts

    async def close(self):
        """Stops the workers; requests still waiting get UNAVAILABLE."""
        if self._loop is None:
            return
        for worker in self._workers:
            worker.cancel()
        for batch in self._queue:
            for task in batch.tasks:
                if not task.future.done():
                    task.future.set_exception(error_codes.ServingError(error_codes.UNAVAILABLE,
                                                                       "The server is shutting down"))
        self._queue.clear()
        self._open.clear()
        self._loop = None
