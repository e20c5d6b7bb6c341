"""Load clients for tests against a server process on loopback (adapted from benchmarks/serving.py).

A well-behaved client keeps one HTTP/1.1 keep-alive connection and sends small row requests
back to back, timing each; an abusive one sends what the server's bounds must refuse or keep
short. Both stop by themselves at a deadline.
"""

import asyncio
import json
import pathlib
import time

import httpx


def percentile(values, fraction):
    """The value at ``fraction`` (0.99: p99) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def peak_rss_megabytes(pid):
    """A process's peak resident memory (``VmHWM`` of ``/proc/PID/status``), in MiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"Expected a VmHWM line in /proc/{pid}/status, received none.")


async def _well_behaved_client(port, path, bodies, offset, stop_at, latencies, errors):
    """Sends ``bodies`` in turn on one keep-alive connection until ``stop_at`` (``time.perf_counter()``).

    Records each answer's latency in milliseconds; an answer that is not 200 with one prediction
    (or a connection that fails) counts in ``errors[0]``.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index = offset
    try:
        while time.perf_counter() < stop_at:
            body = bodies[index % len(bodies)]
            index += 1
            request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            started = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            if not status.startswith(b"HTTP/1.1 200") or len(json.loads(payload)["predictions"]) != 1:
                errors[0] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError, KeyError):
        errors[0] += 1
    finally:
        writer.close()


async def _well_behaved_load(port, path, bodies, clients, seconds):
    latencies, errors = [], [0]
    warm_stop = time.perf_counter() + 0.5  # a short warm-up with the same clients, not recorded
    await asyncio.gather(*(_well_behaved_client(port, path, bodies, index, warm_stop, [], [0])
                           for index in range(clients)))
    started = time.perf_counter()
    await asyncio.gather(*(_well_behaved_client(port, path, bodies, index, started + seconds, latencies, errors)
                           for index in range(clients)))
    return {"requests": len(latencies), "p50_ms": percentile(latencies, 0.5),
            "p99_ms": percentile(latencies, 0.99), "errors": errors[0]}


def well_behaved_load(port, path, bodies, clients, seconds):
    """``clients`` well-behaved clients for ``seconds`` (after a 0.5 s warm-up).

    Returns:
        ``{"requests", "p50_ms", "p99_ms", "errors"}``.
    """
    return asyncio.run(_well_behaved_load(port, path, bodies, clients, seconds))


def abusive_client(url, bodies, stop_at, answers):
    """Sends ``bodies`` (``{kind: bytes}``) in turn until ``stop_at`` (``time.perf_counter()``), one at a time.

    Counts each answer in ``answers`` under ``"KIND STATUS"`` (``"KIND ErrorName"`` for a
    connection that failed).
    """
    with httpx.Client(timeout=120) as client:
        while time.perf_counter() < stop_at:
            for kind, body in bodies.items():
                try:
                    outcome = client.post(url, content=body, headers={"content-type": "application/json"}).status_code
                except httpx.TransportError as error:
                    outcome = type(error).__name__
                key = f"{kind} {outcome}"
                answers[key] = answers.get(key, 0) + 1
