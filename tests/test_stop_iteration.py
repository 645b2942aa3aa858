"""A StopIteration raised by blocking code a capability runs in a thread fails the call at once.

asyncio cannot raise StopIteration into a future: handed over as it was, it became a TypeError in
an event-loop callback (a traceback on stderr) and the step waited until its deadline, then was
retried and ended `max_retries` as a timeout. It is delivered as a RuntimeError now, as a coroutine's
own StopIteration is (PEP 479).
"""

from __future__ import annotations

import asyncio

import pytest

from graph.capability.base import DAEMON_THREADS, run_blocking


def stops() -> None:
    raise StopIteration("the iterator was empty")


def test_the_default_executor_delivers_it_as_a_runtime_error() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(RuntimeError, match="stops raised StopIteration"):
            await asyncio.wait_for(loop.run_in_executor(DAEMON_THREADS, stops), 10)

    loop = asyncio.new_event_loop()
    loop.set_default_executor(DAEMON_THREADS)
    try:
        loop.run_until_complete(main())
        # asyncio.to_thread wraps the call in a partial: the message names the function.
        with pytest.raises(RuntimeError, match="stops raised StopIteration"):
            loop.run_until_complete(asyncio.wait_for(asyncio.to_thread(stops), 10))
    finally:
        loop.close()


def test_run_blocking_delivers_it_as_a_runtime_error() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="stops raised StopIteration") as caught:
            await asyncio.wait_for(run_blocking(stops), 10)
        assert isinstance(caught.value.__cause__, StopIteration)

    asyncio.run(main())


def test_other_errors_are_delivered_as_they_are() -> None:
    def fails() -> None:
        raise KeyError("x")

    async def main() -> None:
        with pytest.raises(KeyError):
            await asyncio.wait_for(run_blocking(fails), 10)

    asyncio.run(main())
