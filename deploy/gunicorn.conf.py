"""gunicorn settings for the paywall service: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app``.

Not at the repository's root on purpose: gunicorn loads ``./gunicorn.conf.py`` by default, which
would change every gunicorn started there (the benchmarks' servers among them).

Anything given on the command line (or in ``GUNICORN_CMD_ARGS``) wins over this file, e.g.
``gunicorn -c deploy/gunicorn.conf.py --bind 0.0.0.0:8000 --workers 4 wsgi:app``. What it settles
(README "Running in production"):

- one sync worker per core (measured best: docs/benchmarks.md), behind a buffering proxy;
- graceful shutdown: SIGTERM lets each worker finish its request (``graceful_timeout``);
- no control socket (gunicorn >= 27 binds one shared ``~/.gunicorn/gunicorn.ctl`` per user by
  default, so a second instance on the host fights the first); give each instance its own
  with ``--control-socket /run/<instance>/gunicorn.ctl`` if you want ``gunicornc``;
- a worker whose master died exits at once (the kernel sends it SIGTERM: ``PR_SET_PDEATHSIG``)
  instead of holding the port until its next timeout check, so a supervisor can restart the
  instance;
- Prometheus multiprocess mode for ``/metrics`` (``PROMETHEUS_MULTIPROC_DIR``, one directory
  per instance, emptied at start-up);
- access log lines without query strings or referrers (tokens travel in query strings), in
  ``access_log_format``, through ``paywall.logs.GunicornLogger``, which redacts credentials from
  any format.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import shutil
import signal
import tempfile
from typing import Any

bind = "127.0.0.1:8000"
workers = multiprocessing.cpu_count()
threads = 1
worker_class = "sync"
# A request longer than this is killed and logged; the proxy's timeout should be a bit longer.
timeout = 30
graceful_timeout = 20  # seconds a worker gets after SIGTERM to finish what it is answering
keepalive = 5
# Workers are recycled now and then (spread out) so a slow leak cannot grow for ever.
max_requests = 20_000
max_requests_jitter = 2_000
control_socket_disable = True  # gunicorn >= 27; older versions have no control socket
forwarded_allow_ips = (
    "127.0.0.1"  # the app reads X-Forwarded-* itself (PAYWALL_TRUSTED_PROXY_COUNT)
)

accesslog = "-"
errorlog = "-"
# %(U)s is the path without the query string; no %(r)s, %(q)s or %(f)s (referrer), which
# would carry reset and verification tokens into the log.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
# And whatever a changed format still logs loses its credentials (?token=, session_id=, ...):
# paywall.logs.GunicornLogger redacts the request line, query string and Referer (issue 11).
logger_class = "paywall.logs.GunicornLogger"

# Metrics from every worker: prometheus-client reads this variable when it is first imported,
# which happens after this file is read (the app is loaded later, in the workers).
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="paywall-metrics-")
# Before anything imports prometheus-client: it creates its files there from the first import.
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

PR_SET_PDEATHSIG = 1


def on_starting(server: Any) -> None:
    """Counters left by processes of an earlier run would be added to the new ones."""
    from paywall.metrics import clear_multiprocess_dir

    clear_multiprocess_dir()


def post_fork(server: Any, worker: Any) -> None:
    """Linux: SIGTERM to this worker the moment its master dies (gracefully: the request in
    hand is finished, then the worker exits and frees the port)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        server.log.warning("PR_SET_PDEATHSIG unavailable: orphaned workers exit on their timeout")
    if os.getppid() != server.pid:  # the master died between fork and prctl
        os.kill(os.getpid(), signal.SIGTERM)


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges must not be reported (its counters are kept)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
