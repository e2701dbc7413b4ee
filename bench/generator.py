"""Benchmark: the synthetic generator writing N customers (about 20 sales each) into a fresh SQLite file.

Target (issue 2): 1,000,000 customers with about 20,000,000 sales into SQLite in under 3 minutes on 2 cores.
Usage: .venv/bin/python bench/generator.py [--customers 1000000] [--url sqlite:////tmp/goodbad-bench.sqlite]
"""
import argparse, datetime as dt, os, resource, time
from pathlib import Path
import sqlalchemy as sa
from goodbad.contract import make_engine
from goodbad.synthetic import create_masterdata

p = argparse.ArgumentParser()
p.add_argument('--customers', type=int, default=1_000_000)
p.add_argument('--url', default='sqlite:////tmp/goodbad-bench/masterdata.sqlite')
a = p.parse_args()
url = sa.make_url(a.url)
if url.get_backend_name() == 'sqlite' and Path(url.database).exists(): Path(url.database).unlink()
engine = make_engine(url)
t0 = time.perf_counter()
st = create_masterdata(engine, customers=a.customers, seed=1, end=dt.date(2026, 11, 25), replace=True,
                       progress=lambda m: print(f"{time.perf_counter() - t0:7.1f}s  {m}", flush=True))
secs = time.perf_counter() - t0
with engine.connect() as c:
    counts = {t: c.execute(sa.text(f'select count(*) from {t}')).scalar() for t in ('customers', 'sales', 'customer_outcomes')}
print(f"customers {counts['customers']:,}  sales {counts['sales']:,}  outcomes {counts['customer_outcomes']:,}")
print(f"wall time {secs:.1f}s  ({counts['sales'] / secs:,.0f} sales/s)")
print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
if url.get_backend_name() == 'sqlite': print(f"file size {os.path.getsize(url.database) / 2**30:.2f} GiB")
