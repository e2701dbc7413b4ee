"""Benchmark: how good tonight's decision is, judged by the outcomes that arrive afterwards.

Over synthetic worlds (seeds x scenarios, 20,000 to 50,000 customers) it plays, in each: a night on day D (acquire,
features, train: the threshold the policy chooses), then advances the world 120 days. Among the customers labelled
tonight whose outcome arrives in those 120 days it measures
  - the realized precision of "bad" (with its Clopper-Pearson interval) against the target,
  - the recall of the chosen threshold, and the recall of the oracle: the best threshold on the same scores that
    would have held the target on those outcomes (the most bad customers any threshold could have found),
  - efficiency = recall / oracle recall.
It prints one row per world and the summary: the share of worlds whose realized precision fell below the target
(the guarantee promises at most 1 - confidence of its population precision; a finite sample of outcomes adds its own
noise, so the share whose realized interval lies wholly below the target is printed too), and the median and worst
efficiency. Targets (issue 8): violations <= 5% of worlds, median efficiency >= 0.90, worst >= 0.75.

The scenario of each world is switched on a year before D, so the night trains and calibrates in the world it is judged
in (the guarantee is for customers like those it was calibrated on; drift after the night is the monitor's business).

Usage: .venv/bin/python bench/decision_quality.py [--worlds 20] [--days 120] [--workdir /tmp/goodbad-bench-decision]
       [--out bench/out/decision_quality.json] [--candidates logistic_regression,...]
"""
import argparse, datetime as dt, json, os, shutil, sys, time
os.environ.setdefault('OMP_NUM_THREADS', '1')  # two cores: the benchmark must not oversubscribe them
from pathlib import Path
import numpy as np, pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa
from goodbad.night import Night
from goodbad.settings import load_settings
from goodbad.contract import make_engine, settings_contract
from goodbad.synthetic import create_masterdata, advance_masterdata, SCENARIOS
from goodbad.store import load_model
from goodbad import acquire, features, train
from goodbad.train import precision_interval
from goodbad.evaluate import best_recall

REPO = Path(__file__).resolve().parent.parent
p = argparse.ArgumentParser()
p.add_argument('--worlds', type=int, default=20)
p.add_argument('--days', type=int, default=120, help='days the world is advanced after the night')
p.add_argument('--candidates', help="override the policy's candidates (default: the shipped policy)")
p.add_argument('--workdir', default='/tmp/goodbad-bench-decision')
p.add_argument('--out', default=str(REPO / 'bench' / 'out' / 'decision_quality.json'))
p.add_argument('--date', default='2026-06-01', help='the night D (the world is advanced past it)')
a = p.parse_args()

D = dt.date.fromisoformat(a.date)
POLICY = (REPO / 'settings.ini').read_text()  # read once: every world obeys the policy as it was when the benchmark started
scenarios = list(SCENARIOS)
sizes = [20_000, 27_500, 35_000, 42_500, 50_000]
worlds = [(seed, scenarios[i % len(scenarios)], sizes[(i // len(scenarios)) % len(sizes)]) for i, seed in enumerate(range(1, a.worlds + 1))]

rows = []
for seed, scen, customers in worlds:
    t0 = time.perf_counter()
    ws = Path(a.workdir) / f'world-{seed}'
    shutil.rmtree(ws, ignore_errors=True); ws.mkdir(parents=True)
    (ws / 'settings.ini').write_text(POLICY)
    env = {'GOODBAD_CANDIDATES': a.candidates} if a.candidates else {}
    settings = load_settings(ws / 'settings.ini', environ=env)
    engine = make_engine(settings.masterdata_url)
    create_masterdata(engine, customers=customers, seed=seed, end=D - dt.timedelta(days=1), scenario_name=scen,
                      scenario_start=D - dt.timedelta(days=365), contract=settings_contract(settings))
    night = Night(D, f'{D}.1', ws / 'runs' / str(D), settings)
    acquire.acquire_tonight(night).raise_if_broken()
    path = features.write_features(night)
    result = train.train_tonight(night)
    row = dict(seed=seed, scenario=scen, customers=customers)
    if result.winner is None:
        row |= dict(model=None, note=result.message[:120])
    else:
        rec = result.winner
        model = load_model(night.state, night.model_store, rec.version)
        names = rec.details['features']
        tonight = pq.read_table(path).to_pandas()
        scores = model.predict_proba(tonight[names])[:, 1]
        advance_masterdata(engine, days=a.days, contract=night.contract)
        o = night.contract.outcomes.c
        with engine.connect() as conn:
            later = pd.read_sql(sa.select(o.customer_id, o.outcome).where(o.known_on >= sa.literal(D, sa.Date),
                                                                           o.known_on < sa.literal(D + dt.timedelta(days=a.days), sa.Date)), conn)
        judged = pd.DataFrame(dict(customer_id=tonight.customer_id, score=scores)).merge(later, on='customer_id')
        y, s = (judged.outcome == 'bad').to_numpy().astype(int), judged.score.to_numpy()
        flag = s >= rec.threshold
        k, n = int(y[flag].sum()), int(flag.sum())
        lo, hi = (float(b) for b in precision_interval(k, n, settings.confidence_level)) if n else (float('nan'), float('nan'))
        recall = k / max(y.sum(), 1)
        best = best_recall(y, s, settings.precision_target)  # the oracle: the best threshold on the same scores, judged by the outcomes
        row |= dict(model=rec.algorithm, threshold=round(rec.threshold, 4), outcomes=len(judged), bad=int(y.sum()), flagged=n,
                    precision=k / n if n else None, precision_low=lo, precision_high=hi, recall=recall, oracle_recall=best,
                    efficiency=recall / best if best else None, flagged_tonight=int((scores >= rec.threshold).sum()))
    row['seconds'] = round(time.perf_counter() - t0, 1)
    rows.append(row)
    engine.dispose()
    shutil.rmtree(ws, ignore_errors=True)
    print(json.dumps(row), flush=True)

table = pd.DataFrame(rows)
target = load_settings(REPO / 'settings.ini', environ={}).precision_target
pd.set_option('display.width', 200)
print(table.drop(columns=['precision_low'], errors='ignore').round(3).to_string(index=False))
judged = table[table.precision.notna()] if 'precision' in table else table.iloc[0:0]
below = (judged.precision < target)
clearly = (judged.precision_high < target)
eff = judged.efficiency.fillna(0.0)
no_model = int(table.get('model').isna().sum()) if 'model' in table else len(table)
summary = dict(worlds=len(table), no_model=no_model, target=target,
               realized_below_target=float(below.mean()) if len(judged) else None,
               realized_interval_below_target=float(clearly.mean()) if len(judged) else None,
               efficiency_median=float(np.median(np.r_[eff, np.zeros(no_model)])) if len(table) else None,
               efficiency_worst=float(np.min(np.r_[eff, np.zeros(no_model)])) if len(table) else None,
               recall_median=float(judged.recall.median()) if len(judged) else None,
               precision_median=float(judged.precision.median()) if len(judged) else None)
print(f"\nworlds {summary['worlds']} (no model: {no_model}); target {target}")
print(f"realized precision below the target: {summary['realized_below_target']:.0%} of worlds "
      f"(its interval wholly below: {summary['realized_interval_below_target']:.0%}); target <= 5%")
print(f"efficiency (recall / oracle recall, no model counts 0): median {summary['efficiency_median']:.3f} (target >= 0.90), "
      f"worst {summary['efficiency_worst']:.3f} (target >= 0.75)")
print(f"median realized precision {summary['precision_median']:.3f}, median recall {summary['recall_median']:.3f}")
Path(a.out).parent.mkdir(parents=True, exist_ok=True)
Path(a.out).write_text(json.dumps(dict(summary=summary, worlds=rows, argv=sys.argv[1:]), indent=2, default=str))
