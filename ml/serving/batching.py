"""Dynamic batching: concurrent requests to the same signature run as one model call.

Follows TF Serving's shared batch scheduler: a batch closes when it holds max_batch_size rows
or its oldest request has waited batch_timeout_micros; num_batch_threads run batches; a queue
holding max_enqueued_batches batches rejects new work with UNAVAILABLE; a closed batch is
padded (repeating its first row) up to the next allowed_batch_sizes entry.
"""
import collections
import dataclasses
import logging
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import grpc
import numpy as np

from ml.serving.errors import ServingError, invalid_argument, unavailable

LOGGER = logging.getLogger(__name__)
RunFunction = Callable[[Mapping[str, np.ndarray]], Dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """The BatchingParameters fields the scheduler uses, with TF Serving's defaults."""
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = 2
    allowed_batch_sizes: Tuple[int, ...] = ()

    @classmethod
    def from_proto(cls, params) -> "BatchingOptions":
        """Reads a BatchingParameters message (unset wrapper fields keep the defaults)."""
        values = {}
        for field in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                      "num_batch_threads"):
            if params.HasField(field):
                values[field] = int(getattr(params, field).value)
        options = cls(allowed_batch_sizes=tuple(int(size) for size in params.allowed_batch_sizes),
                      **values)
        options.validate()
        return options

    def validate(self) -> None:
        if self.max_batch_size < 1 or self.num_batch_threads < 1 or self.max_enqueued_batches < 1:
            raise ValueError("max_batch_size, num_batch_threads and max_enqueued_batches must be >= 1")
        sizes = list(self.allowed_batch_sizes)
        if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            raise ValueError("allowed_batch_sizes must increase and end with max_batch_size")

    def padded_size(self, size: int) -> int:
        for allowed in self.allowed_batch_sizes:
            if allowed >= size:
                return allowed
        return size


DoneCallback = Callable[[Optional[Dict[str, np.ndarray]], Optional[BaseException]], None]


class _Task:
    __slots__ = ("inputs", "size", "enqueued_at", "on_done", "outputs", "error")

    def __init__(self, inputs: Mapping[str, np.ndarray], size: int, on_done: DoneCallback):
        self.inputs = inputs
        self.size = size
        self.enqueued_at = time.monotonic()
        self.on_done = on_done
        self.outputs: Optional[Dict[str, np.ndarray]] = None
        self.error: Optional[BaseException] = None

    def finish(self) -> None:
        self.on_done(self.outputs, self.error)


class _Queue:
    def __init__(self, key, run: RunFunction):
        self.key = key
        self.run = run
        self.tasks: collections.deque = collections.deque()
        self.rows = 0


class BatchScheduler:
    """Merges concurrent tasks per queue key and runs them on a fixed pool of batch threads."""

    def __init__(self, options: BatchingOptions,
                 on_batch: Optional[Callable[[object, int, int], None]] = None):
        """on_batch(key, rows, padded_rows) is called after each batch ran (for metrics)."""
        options.validate()
        self.options = options
        self._on_batch = on_batch
        self._queues: Dict[object, _Queue] = {}
        self._condition = threading.Condition()
        self._running = True
        self._threads = [threading.Thread(target=self._work, name=f"batch-{index}", daemon=True)
                         for index in range(options.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, key, run: RunFunction, inputs: Mapping[str, np.ndarray],
               size: int, timeout: Optional[float] = 30.0) -> Dict[str, np.ndarray]:
        """Queues one request of `size` rows and blocks until its batch has run.

        Raises DEADLINE_EXCEEDED after `timeout` seconds (None waits without a bound), so a
        stuck model or batch thread never holds a front-end thread forever; a request that
        has not started by then is taken off its queue.
        """
        done = threading.Event()
        result: list = []

        def on_done(outputs, error) -> None:
            result.extend((outputs, error))
            done.set()
        queue, task = self._enqueue(key, run, inputs, size, on_done)
        if not done.wait(timeout):
            self._withdraw(queue, task)
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               f"Batched request did not run within {timeout:g} seconds")
        outputs, error = result
        if error is not None:
            raise error
        return outputs

    def enqueue(self, key, run: RunFunction, inputs: Mapping[str, np.ndarray], size: int,
                on_done: DoneCallback) -> None:
        """Queues one request without blocking; a batch thread calls on_done(outputs, error).

        Batch threads are woken only when a queue gets its first task (its timeout starts) or
        fills up, not on every task: waking a thread per request costs the front end more
        interpreter time than the batch saves.
        """
        self._enqueue(key, run, inputs, size, on_done)

    def _enqueue(self, key, run: RunFunction, inputs: Mapping[str, np.ndarray], size: int,
                 on_done: DoneCallback) -> Tuple[_Queue, _Task]:
        if size > self.options.max_batch_size:
            raise invalid_argument(
                f"Task size {size} is larger than maximum batch size {self.options.max_batch_size}")
        task = _Task(inputs, size, on_done)
        # Only tensors with equal trailing dimensions can be concatenated into one batch.
        key = (key, tuple((alias, value.shape[1:]) for alias, value in sorted(inputs.items())))
        with self._condition:
            if not self._running:
                raise unavailable("The model server is shutting down")
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(key, run)
            queue.run = run
            limit = self.options.max_enqueued_batches * self.options.max_batch_size
            if queue.rows + size > limit:
                raise unavailable("The batch scheduling queue to which this task was submitted is full")
            first = not queue.tasks
            queue.tasks.append(task)
            queue.rows += size
            if first or queue.rows >= self.options.max_batch_size:
                self._condition.notify()
        return queue, task

    def _withdraw(self, queue: _Queue, task: _Task) -> None:
        """Takes a timed-out task off its queue if no batch has taken it yet."""
        with self._condition:
            try:
                queue.tasks.remove(task)
            except ValueError:
                return
            queue.rows -= task.size

    def pending_rows(self) -> int:
        """Rows waiting in queues (not yet running)."""
        with self._condition:
            return sum(queue.rows for queue in self._queues.values())

    def forget(self, matches: Callable[[object], bool]) -> None:
        """Drops idle queues whose submit key matches (their model version was unloaded)."""
        with self._condition:
            for key in [key for key, queue in self._queues.items()
                        if not queue.tasks and matches(key[0])]:
                del self._queues[key]

    def stop(self) -> None:
        """Runs what is queued, then stops the batch threads."""
        with self._condition:
            self._running = False
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    def _take_ready_batch(self) -> Tuple[Optional[Tuple[_Queue, List[_Task]]], Optional[float]]:
        """A batch that is full or timed out, else how long to wait for the next one."""
        now = time.monotonic()
        timeout = self.options.batch_timeout_micros / 1e6
        wait = None
        for queue in self._queues.values():
            if not queue.tasks:
                continue
            age = now - queue.tasks[0].enqueued_at
            if queue.rows >= self.options.max_batch_size or age >= timeout or not self._running:
                batch = self._pop_batch(queue)
                if queue.tasks:
                    self._condition.notify()
                return (queue, batch), None
            remaining = timeout - age
            wait = remaining if wait is None else min(wait, remaining)
        return None, wait

    def _pop_batch(self, queue: _Queue) -> List[_Task]:
        batch, rows = [], 0
        while queue.tasks and rows + queue.tasks[0].size <= self.options.max_batch_size:
            task = queue.tasks.popleft()
            rows += task.size
            batch.append(task)
        queue.rows -= rows
        return batch

    def _work(self) -> None:
        while True:
            with self._condition:
                while True:
                    ready, wait = self._take_ready_batch()
                    if ready is not None:
                        break
                    if not self._running:
                        return
                    self._condition.wait(wait)
            queue, batch = ready
            self._run_batch(queue.key[0], queue.run, batch)

    def _run_batch(self, key, run: RunFunction, batch: Sequence[_Task]) -> None:
        """Runs one batch; whatever it raises fails only its own tasks, never this thread.

        Any exception other than a ServingError (a MemoryError while concatenating, a bug in
        a model call) becomes INTERNAL for the batch's requests, and later batches still run.
        """
        rows = sum(task.size for task in batch)
        padded = self.options.padded_size(rows)
        ran = False
        try:
            outputs = run(_concatenate([task.inputs for task in batch], padded - rows))
            ran = True
            _split(outputs, batch, padded)
        except ServingError as error:
            if error.code == grpc.StatusCode.INVALID_ARGUMENT and len(batch) > 1:
                # One bad request must not fail its batch-mates: rerun each on its own.
                for task in batch:
                    self._run_alone(run, task)
            else:
                for task in batch:
                    task.error = error
        except Exception as error:  # noqa: BLE001 - the batch thread must outlive any failure
            LOGGER.exception("a batch of %d requests failed", len(batch))
            failure = _internal(error)
            for task in batch:
                task.outputs, task.error = None, failure
        finally:
            for task in batch:
                try:
                    task.finish()
                except Exception:  # noqa: BLE001 - a caller's callback must not stop the batch thread
                    LOGGER.exception("a batched request's completion callback failed")
        if ran and self._on_batch is not None:
            try:
                self._on_batch(key, rows, padded)
            except Exception:  # noqa: BLE001 - metrics must not stop the batch thread
                LOGGER.exception("the batch metrics callback failed")

    @staticmethod
    def _run_alone(run: RunFunction, task: _Task) -> None:
        try:
            task.outputs = run(task.inputs)
        except ServingError as error:
            task.error = error
        except Exception as error:  # noqa: BLE001 - see _run_batch
            LOGGER.exception("a batched request failed when run on its own")
            task.error = _internal(error)


def _internal(error: BaseException) -> ServingError:
    return ServingError(grpc.StatusCode.INTERNAL,
                        f"Batch failed: {type(error).__name__}: {error}".rstrip(": "))


def _concatenate(inputs: Sequence[Mapping[str, np.ndarray]], padding: int) -> Dict[str, np.ndarray]:
    merged = {}
    for alias in inputs[0]:
        parts = [task_inputs[alias] for task_inputs in inputs]
        if padding:
            parts.append(np.repeat(parts[0][:1], padding, axis=0))
        merged[alias] = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    return merged


def _split(outputs: Mapping[str, np.ndarray], batch: Sequence[_Task], padded: int) -> None:
    for alias, value in outputs.items():
        if value.ndim == 0 or value.shape[0] != padded:
            raise ServingError(grpc.StatusCode.INTERNAL,
                               f"output {alias!r} is not batch-major; cannot split a batch")
    start = 0
    for task in batch:
        task.outputs = {alias: value[start:start + task.size] for alias, value in outputs.items()}
        start += task.size
