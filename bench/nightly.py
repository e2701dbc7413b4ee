"""Benchmark: nightly runs at N customers on SQLite, with wall time and peak memory per phase.

Usage: .venv/bin/python bench/nightly.py [--customers 100000] [--nights 1] [--workdir /tmp/goodbad-bench-nightly]
It builds a workspace (a copy of settings.ini, synthetic master data of N customers), runs `goodbad nightly`
through the library runner night after night (the master data advanced a day in between), and prints each phase's
seconds and its kernel's peak resident memory. The first night has no champion to monitor: pass --nights 2 to measure
the monitor phase against one (e.g. --customers 1000000 --nights 2 for the monitor at a million customers).
"""
import argparse, datetime as dt, json, os, resource, shutil, time
from pathlib import Path
from goodbad.contract import make_engine
from goodbad.nightly import run_nightly
from goodbad.settings import load_settings
from goodbad.synthetic import create_masterdata, advance_masterdata

REPO = Path(__file__).resolve().parent.parent
p = argparse.ArgumentParser()
p.add_argument('--customers', type=int, default=100_000)
p.add_argument('--nights', type=int, default=1, help='nights in a row (the monitor compares against a champion from night 2)')
p.add_argument('--candidates', help='override the policy\'s candidates, e.g. logistic_regression (default: the shipped policy)')
p.add_argument('--workdir', default='/tmp/goodbad-bench-nightly')
p.add_argument('--date', default='2026-11-26', help='the first night')
a = p.parse_args()
ws = Path(a.workdir)
shutil.rmtree(ws, ignore_errors=True); ws.mkdir(parents=True)
shutil.copy(REPO / 'settings.ini', ws / 'settings.ini')
if a.candidates: os.environ['GOODBAD_CANDIDATES'] = a.candidates  # the notebooks' kernels inherit it
settings = load_settings(ws / 'settings.ini')
first = dt.date.fromisoformat(a.date)
engine = make_engine(settings.masterdata_url)
t0 = time.perf_counter()
create_masterdata(engine, customers=a.customers, seed=1, end=first - dt.timedelta(days=1))
print(f"master data: {a.customers:,} customers in {time.perf_counter() - t0:.0f}s", flush=True)

table = {}
for i in range(a.nights):
    day = first + dt.timedelta(days=i)
    if i: advance_masterdata(engine, days=1)
    t_night = time.perf_counter()
    m = run_nightly(settings, day, progress=print)
    m['wall_seconds'] = time.perf_counter() - t_night  # the whole night: phases, pages, sealing
    print(f"night {m['run_id']}: {m['status']}" + (f" ({m['error']})" if m['error'] else ''), flush=True)
    table[str(day)] = m
    if m.get('model'): print('  model', m['model']['version'], json.dumps({k: round(v, 4) for k, v in m['model']['holdout'].items()
                                                                           if k in ('precision', 'precision_low', 'precision_high', 'recall')}))
    if m['status'] != 'succeeded': break

print(f"\n{a.customers:,} customers; seconds and kernel peak MiB of each phase, night by night")
print(f"{'phase':<10}" + ''.join(f" {d:>12} {'MiB':>6}" for d in table))
for ph in [x['phase'] for x in next(iter(table.values()))['phases']]:
    cells = []
    for m in table.values():
        e = next((x for x in m['phases'] if x['phase'] == ph), None)
        cells.append(f" {e['seconds']:>12.1f} {e['peak_memory_mb'] or 0:>6.0f}" if e else f" {'-':>12} {'-':>6}")
    print(f"{ph:<10}" + ''.join(cells))
print(f"{'total':<10}" + ''.join(f" {m['seconds']:>12.1f} {'':>6}" for m in table.values()))
print(f"{'wall':<10}" + ''.join(f" {m['wall_seconds']:>12.1f} {'':>6}" for m in table.values()) + "   (the whole night: phases, pages, index, sealing)")
print(f"runner peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB (it built the master data in-process)")
