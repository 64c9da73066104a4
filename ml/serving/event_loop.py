"""The one asyncio event loop of the model server, on its own thread.

gRPC (grpc.aio), REST (aiohttp) and the delivery of finished batches all run on this loop, so
a batched request from either front end waits for its batch without parking a thread, and the
threaded lifecycle of ModelServer (start/stop from any thread) drives it through run().
"""
import asyncio
import concurrent.futures
import threading
from typing import Awaitable, Optional, TypeVar

T = TypeVar("T")


class EventLoopThread:
    """An event loop running forever on a daemon thread until stop()."""

    def __init__(self, name: str = "serving-loop"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def submit(self, coroutine: Awaitable[T]) -> "concurrent.futures.Future[T]":
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Awaitable[T], timeout: Optional[float] = None) -> T:
        """Runs a coroutine on the loop from another thread and returns its result."""
        return self.submit(coroutine).result(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
