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
