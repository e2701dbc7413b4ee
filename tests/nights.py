"""Nights played in-process: every phase's exported `*_tonight` function, in the runner's order, without papermill.

The notebooks' nightly cells call exactly these functions; the papermill path itself is covered end to end by
test_nightly.py and test_postgres.py. Playing many nights in-process keeps the multi-night tests fast.
"""
import datetime as dt, shutil
from pathlib import Path
from goodbad.night import Night
from goodbad.nightly import PHASES
from goodbad.settings import load_settings
from goodbad.contract import make_engine
from goodbad.synthetic import create_masterdata, advance_masterdata
from goodbad.upstream import STEPS
from goodbad.store import live_models
from goodbad.train import no_model_reason
from goodbad.release import no_model_after_release
from goodbad.store import awaiting_judgement
from goodbad.settings import training_policy_hash
assert list(STEPS) == [p.split('_', 1)[1] for p in PHASES], 'the in-process night must follow the runner'


class World:
    "A workspace (settings.ini copy, master data, state, models) whose nights are played in-process"
    def __init__(self, root: Path, env: dict, repo: Path):
        self.root, self.env = root, dict(env)
        root.mkdir(parents=True, exist_ok=True)
        if not (root / 'settings.ini').exists(): shutil.copy(repo / 'settings.ini', root / 'settings.ini')

    def settings(self, **overrides):
        return load_settings(self.root / 'settings.ini', environ=self.env | {f'GOODBAD_{k.upper()}': str(v) for k, v in overrides.items()})

    def create(self, customers, end, seed=20261126):
        s = self.settings()
        from goodbad.contract import settings_contract
        create_masterdata(make_engine(s.masterdata_url), customers=customers, seed=seed, end=end, contract=settings_contract(s))

    def advance(self, days=1, scenario=None):
        s = self.settings()
        from goodbad.contract import settings_contract
        return advance_masterdata(make_engine(s.masterdata_url), days=days, scenario_name=scenario, contract=settings_contract(s))

    def night(self, day: dt.date, attempt=1, **overrides) -> Night:
        "Play attempt `attempt` at the night of `day`, stopping where the runner would on no model; returns the Night"
        folder = str(day) if attempt == 1 else f'{day}.{attempt}'  # a rerun in process keeps its own artifacts
        n = Night(day, f'{day}.{attempt}', self.root / 'runs' / folder, self.settings(**overrides))
        n.results, n.no_model = {}, None
        for name, step in STEPS.items():
            n.results[name] = step(n)
            n.no_model = no_model_after(name, n)
            if n.no_model: break
        return n


def no_model_after(phase, n):
    "What `phase` of night `n` records as `no_model`, as its notebook does (the runner then skips the later phases)"
    result, live = n.results[phase], live_models(n.state)
    if phase == 'train':  # a re-opened model, or one rejected on settings since changed, is judged tonight all the same
        waiting = awaiting_judgement(n.state, n.model_store, n.settings, training_policy_hash(n.settings))
        return None if waiting else no_model_reason(result, live, n.settings)
    if phase == 'evaluate': return result.no_model
    if phase == 'release': return no_model_after_release(result.actions, live)
    return None
