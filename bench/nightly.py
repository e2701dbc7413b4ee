"""Benchmark: one nightly run at N customers on SQLite, with wall time and peak memory per phase.

Usage: .venv/bin/python bench/nightly.py [--customers 100000] [--workdir /tmp/goodbad-bench-nightly]
It builds a workspace (a copy of settings.ini, synthetic master data of N customers), runs `goodbad nightly`
through the library runner, and prints each phase's seconds and its kernel's peak resident memory.
"""
import argparse, datetime as dt, json, resource, shutil, time
from pathlib import Path
from goodbad.contract import make_engine
from goodbad.nightly import run_nightly
from goodbad.settings import load_settings
from goodbad.synthetic import create_masterdata

REPO = Path(__file__).resolve().parent.parent
p = argparse.ArgumentParser()
p.add_argument('--customers', type=int, default=100_000)
p.add_argument('--workdir', default='/tmp/goodbad-bench-nightly')
p.add_argument('--date', default='2026-11-26')
a = p.parse_args()
ws = Path(a.workdir)
shutil.rmtree(ws, ignore_errors=True); ws.mkdir(parents=True)
shutil.copy(REPO / 'settings.ini', ws / 'settings.ini')
settings = load_settings(ws / 'settings.ini', environ={})
day = dt.date.fromisoformat(a.date)
t0 = time.perf_counter()
create_masterdata(make_engine(settings.masterdata_url), customers=a.customers, seed=1, end=day - dt.timedelta(days=1))
print(f"master data: {a.customers:,} customers in {time.perf_counter() - t0:.0f}s", flush=True)
m = run_nightly(settings, day, progress=print)
print(f"\nnight {m['run_id']}: {m['status']}" + (f" ({m['error']})" if m['error'] else ''))
print(f"{'phase':<10} {'seconds':>8} {'peak MiB':>9}")
for ph in m['phases']: print(f"{ph['phase']:<10} {ph['seconds']:>8.1f} {ph['peak_memory_mb'] or 0:>9.0f}")
print(f"{'total':<10} {m['seconds']:>8.1f}")
print(f"runner peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB (it built the master data in-process)")
if m.get('model'): print('model', m['model']['version'], json.dumps({k: round(v, 4) for k, v in m['model']['holdout'].items() if k in ('precision', 'precision_low', 'precision_high', 'recall')}))
