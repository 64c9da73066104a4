"""The batch scheduler merges concurrent requests, pads to allowed sizes and isolates bad ones."""
import threading
import time

import grpc
import numpy as np
import pytest

from ml.serving.batching import BatchingOptions, BatchScheduler
from ml.serving.errors import ServingError, invalid_argument


class _Model:
    """Doubles its input; rejects the value -1 the way a model rejects a bad example."""

    def __init__(self):
        self.batch_sizes = []
        self.lock = threading.Lock()

    def __call__(self, inputs):
        values = inputs["x"]
        with self.lock:
            self.batch_sizes.append(len(values))
        if (values == -1).any():
            raise invalid_argument("value -1 is not allowed")
        return {"y": values * 2}


def _submit_concurrently(scheduler, model, values):
    results, barrier = {}, threading.Barrier(len(values))

    def call(value):
        barrier.wait()
        try:
            results[value] = scheduler.submit(("m", 1, "sig"), model,
                                               {"x": np.array([value])}, 1)["y"].tolist()
        except ServingError as error:
            results[value] = error
    threads = [threading.Thread(target=call, args=(value,)) for value in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_requests_run_as_one_padded_batch():
    model = _Model()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=8, batch_timeout_micros=200000,
                                               num_batch_threads=1, allowed_batch_sizes=(4, 8)))
    try:
        results = _submit_concurrently(scheduler, model, [1, 2, 3, 4, 5])
    finally:
        scheduler.stop()
    assert results == {value: [value * 2] for value in [1, 2, 3, 4, 5]}
    assert model.batch_sizes == [8], "five requests should form one batch padded to 8"


def test_a_bad_request_does_not_fail_its_batch_mates():
    model = _Model()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, batch_timeout_micros=200000,
                                               num_batch_threads=1))
    try:
        results = _submit_concurrently(scheduler, model, [1, -1, 3, 4])
    finally:
        scheduler.stop()
    assert isinstance(results[-1], ServingError) and "-1" in results[-1].message
    assert results[1] == [2] and results[3] == [6] and results[4] == [8]


def test_full_queue_is_unavailable_and_oversized_tasks_are_rejected():
    release = threading.Event()

    def slow(inputs):
        release.wait(10)
        return {"y": inputs["x"]}
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=1, batch_timeout_micros=0,
                                               max_enqueued_batches=1, num_batch_threads=1))
    try:
        with pytest.raises(ServingError, match="larger than maximum batch size") as raised:
            scheduler.submit("k", slow, {"x": np.zeros(2)}, 2)
        assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
        running = threading.Event()

        def slow_and_signalling(inputs):
            running.set()
            return slow(inputs)
        threading.Thread(target=scheduler.submit,
                         args=("k", slow_and_signalling, {"x": np.zeros(1)}, 1)).start()
        assert running.wait(10)
        threading.Thread(target=scheduler.submit, args=("k", slow, {"x": np.zeros(1)}, 1)).start()
        deadline = time.monotonic() + 10
        while scheduler.pending_rows() != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(ServingError, match="queue .* is full") as raised:
            scheduler.submit("k", slow, {"x": np.zeros(1)}, 1)
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        release.set()
        scheduler.stop()


def test_enqueue_reports_each_request_through_its_callback():
    model = _Model()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, batch_timeout_micros=200000,
                                               num_batch_threads=1))
    results, finished = {}, threading.Event()

    def on_done(value):
        def record(outputs, error):
            results[value] = error if error is not None else outputs["y"].tolist()
            if len(results) == 4:
                finished.set()
        return record
    try:
        for value in [1, -1, 3, 4]:
            scheduler.enqueue(("m", 1, "sig"), model, {"x": np.array([value])}, 1, on_done(value))
        assert finished.wait(10)
    finally:
        scheduler.stop()
    assert results[1] == [2] and results[3] == [6] and results[4] == [8]
    assert isinstance(results[-1], ServingError) and "-1" in results[-1].message
    assert model.batch_sizes[0] == 4, "a full queue runs at once, without waiting for the timeout"


def _enqueue_and_wait(scheduler, model, value, timeout=20):
    done, result = threading.Event(), []

    def on_done(outputs, error):
        result.extend((outputs, error))
        done.set()
    scheduler.enqueue(("m", 1, "sig"), model, {"x": np.array([value])}, 1, on_done)
    assert done.wait(timeout), "the batch thread never answered"
    return result


def test_the_batch_thread_survives_any_exception_of_a_run():
    """A MemoryError in a model call used to kill the only batch thread: later requests hung."""
    calls = []

    def model(inputs):
        calls.append(len(inputs["x"]))
        if len(calls) == 1:
            raise MemoryError("cannot allocate the batch")
        if len(calls) == 2:
            raise RuntimeError("a bug in a model call")
        return {"y": inputs["x"] * 2}
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, num_batch_threads=1))
    try:
        for expected in ("MemoryError: cannot allocate the batch", "RuntimeError: a bug"):
            outputs, error = _enqueue_and_wait(scheduler, model, 1)
            assert outputs is None and isinstance(error, ServingError)
            assert error.code == grpc.StatusCode.INTERNAL and expected in error.message
        outputs = scheduler.submit(("m", 1, "sig"), model, {"x": np.array([5])}, 1)
        assert outputs["y"].tolist() == [10]
    finally:
        scheduler.stop()


def test_a_failing_concatenation_or_metrics_callback_fails_only_its_batch(monkeypatch):
    import ml.serving.batching as batching

    real = batching._concatenate
    failures = iter([MemoryError()])

    def concatenate(inputs, padding):
        for failure in failures:
            raise failure
        return real(inputs, padding)
    monkeypatch.setattr(batching, "_concatenate", concatenate)
    metrics_calls = []

    def on_batch(key, rows, padded):
        metrics_calls.append(rows)
        raise ValueError("metrics backend down")
    model = _Model()
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, num_batch_threads=1), on_batch)
    try:
        outputs, error = _enqueue_and_wait(scheduler, model, 1)
        assert error.code == grpc.StatusCode.INTERNAL
        assert error.message == "Batch failed: MemoryError"
        assert _enqueue_and_wait(scheduler, model, 2)[0]["y"].tolist() == [4]
        assert _enqueue_and_wait(scheduler, model, 3)[0]["y"].tolist() == [6]
    finally:
        scheduler.stop()
    assert metrics_calls == [1, 1]


def test_submit_gives_up_with_deadline_exceeded_and_withdraws_its_task():
    release, started = threading.Event(), threading.Event()

    def stuck_model(inputs):
        started.set()
        release.wait(60)
        return {"y": inputs["x"]}
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, num_batch_threads=1))
    try:
        with pytest.raises(ServingError, match="did not run within 0.2 seconds") as running:
            scheduler.submit(("m", 1, "sig"), stuck_model, {"x": np.array([1])}, 1, timeout=0.2)
        assert running.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and started.is_set()
        with pytest.raises(ServingError) as queued:
            scheduler.submit(("m", 1, "sig"), stuck_model, {"x": np.array([2])}, 1, timeout=0.2)
        assert queued.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert scheduler.pending_rows() == 0, "a timed-out request must leave its queue"
    finally:
        release.set()
        scheduler.stop()
