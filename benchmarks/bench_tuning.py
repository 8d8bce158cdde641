"""Tuning benchmark (DESIGN.md section 10): worker scaling and storage overhead per trial.

Parallel efficiency
    One study on a throwaway PostgreSQL cluster (:class:`workbench.tuning.LocalPostgres`,
    durable default settings) and a CPU-bound objective of fixed cost (a pure-Python loop
    of about ``COST_S`` seconds, one core, no I/O). The same number of trials is run by one
    worker and then, on a fresh study, by two worker processes; each worker runs
    :func:`workbench.tuning.optimize_until` (the loop ``workbench tune worker`` runs,
    with heartbeats on). Workers import everything and open the study first, then wait
    on a common start event; the wall time runs from that event until the study holds
    ``N`` complete trials. ``parallel_efficiency_2_workers = T1 / (2 * T2)`` (goal >= 0.8
    on a 2-core CPU).

Storage overhead
    For SQLite, a journal file and PostgreSQL: a study is filled with 1,000 completed
    trials (3 parameters, 10 intermediate values each), then per timed trial ``ask`` (3
    suggestions), 10 ``report`` calls and ``tell`` with a no-op objective, in one process.
    ``postgres_overhead_median_ms`` is the median on PostgreSQL as workbench stores it (the
    journal log in a PostgreSQL table, :mod:`workbench.tuning._pgjournal`; goal <= 20 ms);
    the p99, the other storages and Optuna's ``RDBStorage`` tables on the same server
    (``postgres_rdb_*``) are reported. The loop's own cost per trial (the surplus gate,
    stale-trial check and trial counts of :func:`optimize_until` around ``optimize``) is
    reported as ``*_loop_overhead_median_ms``.

Usage: ``python benchmarks/bench_tuning.py [--quick]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import result, write  # noqa: E402

COST_S = 0.5


def _calibrate(target_s: float) -> int:
    """Loop count of :func:`_burn` that takes about ``target_s`` seconds here."""
    n = 200_000
    while True:
        t0 = time.perf_counter()
        _burn(n)
        dt = time.perf_counter() - t0
        if dt > 0.05:
            return max(1, int(n * target_s / dt))
        n *= 4


def _burn(n: int) -> float:
    acc = 0.0
    for i in range(n):
        acc += (i % 7) * 0.5
    return acc


def _worker(url: str, study_name: str, n_trials: int, loops: int, ready, start, out) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    from workbench.tuning import load_study, optimize_until

    study = load_study(study_name, url, heartbeat_interval=5, grace_period=20)

    def objective(trial):
        x = trial.suggest_float("x", -1.0, 1.0)
        _burn(loops)
        return x * x

    ready.release()
    start.wait()
    t0 = time.perf_counter()
    optimize_until(study, objective, n_trials, poll_s=0.05)
    out.put((os.getpid(), t0, time.perf_counter()))


def _run_workers(url: str, name: str, n_workers: int, n_trials: int, loops: int) -> float:
    import optuna

    from workbench.tuning import resolve_storage

    optuna.create_study(storage=resolve_storage(url, heartbeat_interval=None), study_name=name,
                        direction="minimize")
    ctx = mp.get_context("spawn")
    ready, start, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, name, n_trials, loops, ready, start, out))
             for _ in range(n_workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    t0 = time.perf_counter()
    start.set()
    for _ in procs:
        out.get(timeout=600)
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(30)
    study = optuna.load_study(study_name=name, storage=resolve_storage(url,
                                                                       heartbeat_interval=None))
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == n_trials, states
    return wall


def _fill(study, n: int) -> None:
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution

    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "dropout": FloatDistribution(0.1, 0.5),
             "hidden": IntDistribution(5, 160, log=True)}
    trials = []
    for i in range(n):
        trials.append(optuna.trial.create_trial(
            params={"lr": 1e-3, "dropout": 0.1 + 0.3 * (i % 10) / 10, "hidden": 5 + i % 150},
            distributions=dists, value=float(i % 13),
            intermediate_values={k: float(k) for k in range(10)}))
    study.add_trials(trials)


def _overhead(storage, n_fill: int, n_timed: int) -> tuple[list[float], list[float]]:
    import optuna

    from workbench.tuning import optimize_until

    study = optuna.create_study(storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    _fill(study, n_fill)
    times = []
    for _ in range(n_timed):
        t0 = time.perf_counter()
        trial = study.ask()
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_float("dropout", 0.1, 0.5)
        trial.suggest_int("hidden", 5, 160, log=True)
        for k in range(10):
            trial.report(float(k), k)
        study.tell(trial, 1.0)
        times.append((time.perf_counter() - t0) * 1e3)

    def objective(trial):
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_float("dropout", 0.1, 0.5)
        trial.suggest_int("hidden", 5, 160, log=True)
        for k in range(10):
            trial.report(float(k), k)
        return 1.0

    loop = []
    done = n_fill + n_timed
    for _ in range(n_timed):
        t0 = time.perf_counter()
        done += 1
        optimize_until(study, objective, done, poll_s=0.01)
        loop.append((time.perf_counter() - t0) * 1e3)
    return times, loop


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import optuna

    from workbench.tuning import LocalPostgres, resolve_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    quick = args.quick
    n_par = 8 if quick else 24
    cost = 0.25 if quick else COST_S
    n_fill, n_timed = (200, 40) if quick else (1000, 200)
    loops = _calibrate(cost)
    results = []
    with tempfile.TemporaryDirectory() as tmp, LocalPostgres() as pg:
        t1 = _run_workers(pg.url, "one", 1, n_par, loops)
        t2 = _run_workers(pg.url, "two", 2, n_par, loops)
        eff = t1 / (2 * t2)
        print(f"parallel: 1 worker {t1:.2f} s, 2 workers {t2:.2f} s, efficiency {eff:.3f}")
        results.append(result("parallel_efficiency_2_workers", eff, "ratio", 0.8, True,
                              trials=n_par, objective_cost_s=cost, one_worker_s=t1,
                              two_workers_s=t2, ideal_s=n_par * cost,
                              storage="PostgreSQL (LocalPostgres, durable settings)"))
        storages = {
            "sqlite": resolve_storage(f"sqlite:///{tmp}/bench.db", heartbeat_interval=None),
            "journal": resolve_storage(f"{tmp}/bench.log"),
            "postgres": resolve_storage(pg.url, heartbeat_interval=None),
            "postgres_rdb": resolve_storage(pg.url, heartbeat_interval=None, backend="rdb"),
        }
        for name, storage in storages.items():
            times, loop = _overhead(storage, n_fill, n_timed)
            med, p99 = statistics.median(times), _pct(times, 99)
            print(f"{name}: ask+report+tell median {med:.2f} ms, p99 {p99:.2f} ms; "
                  f"loop median {statistics.median(loop):.2f} ms")
            goal = 20.0 if name == "postgres" else None
            results.append(result(f"{name}_overhead_median_ms", med, "ms", goal, False,
                                  p99_ms=p99, trials_in_study=n_fill, timed_trials=n_timed,
                                  reports_per_trial=10, params_per_trial=3))
            results.append(result(f"{name}_loop_overhead_median_ms", statistics.median(loop),
                                  "ms", None, False, p99_ms=_pct(loop, 99),
                                  what="optimize_until per trial with a no-op objective "
                                       "(includes ask, reports, tell)"))
    write("tuning", results, quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
