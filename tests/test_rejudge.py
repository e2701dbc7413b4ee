"""A rejection is not forever (issue 15). A rerun that trains the very model a gate rejected leaves it rejected and
says why, what rejected it and what would re-open it: exit 3 with nothing in production, 0 with the champion labelling.
A change to a setting its failed gates read has it judged again; a person can re-open it with a reason, and the next
night judges it again; re-opening is refused for a model that is not rejected or whose artifact is missing.

Small worlds (5,000 customers, a precision target of 0.8 so that they hold a model): the nights that set the scene
are played in process, the nights under test through the runner where its exit status and pages matter."""
import datetime as dt, json, shutil
import pytest
from conftest import REPO, goodbad
from nights import World
from goodbad import cli
from goodbad.night import Night
from goodbad.store import get_model, live_models, model_events, find_models
from goodbad.artifacts import read_artifact
from goodbad.evaluate import tonight_note

D1 = dt.date(2026, 7, 1)  # nights in the past: a night is never run on data dated after tomorrow
D2 = D1 + dt.timedelta(days=7)
CUSTOMERS = 5000
SMALL = {'GOODBAD_CANDIDATES': 'logistic_regression', 'GOODBAD_RETRAIN_EVERY_NIGHTS': '1',
         'GOODBAD_PRECISION_TARGET': '0.8'}
BLOCK = {'min_group_size': 100_000, 'when_cannot_judge': 'block'}  # no group is large enough to judge, and the policy blocks on that
WARN = BLOCK | {'when_cannot_judge': 'warn'}  # the business owner changes the policy: a check that cannot be made warns


def env_of(overrides): return {f'GOODBAD_{k.upper()}': str(v) for k, v in overrides.items()}


def nightly(world, day, overrides, check):
    "Run the night of `day` through the runner (papermill, every page) under the world's policy and `overrides`"
    played = world.root / 'runs' / str(day) / 'superseded' / f'{day}.1'  # the night played in process was attempt 1
    played.mkdir(parents=True, exist_ok=True)
    return goodbad('--settings', str(world.root / 'settings.ini'), 'nightly', '--date', str(day),
                   env=world.env | env_of(overrides), check=check)


def manifest(world, day):
    return json.loads((world.root / 'runs' / str(day) / 'run.json').read_text())


def state_of(world): return Night(D1, 'inspection', world.root, world.settings()).state


def moves_of(world, version):
    return [(e['from_status'], e['to_status'], e['by'], e['note']) for e in model_events(state_of(world), version)]


def run_cli(world, monkeypatch, *args):
    for k, v in world.env.items(): monkeypatch.setenv(k, v)
    return cli.main(['--settings', str(world.root / 'settings.ini'), *args])


def test_a_rerun_after_a_rejection_exits_3_and_a_policy_change_releases_it(tmp_path):
    w = World(tmp_path / 'w', SMALL, REPO)
    w.create(CUSTOMERS, D1 - dt.timedelta(days=1))
    first = w.night(D1, **BLOCK)  # the first model fails the fairness gate: nothing is in production
    x = find_models(first.state, status='rejected')[0].version
    assert first.no_model and live_models(first.state)['champion'] is None

    res = nightly(w, D1, BLOCK, check=3)  # the same night again, under the same policy: the very same model
    m = manifest(w, D1)
    assert m['status'] == 'no_model' and m['error'] is None and m['run_id'] == f'{D1}.2'
    assert [p['status'] for p in m['phases']] == ['succeeded'] * 5 + ['skipped'] * 4
    why = m['no_model']
    assert why.startswith('no model is in production and none can be judged tonight'), why
    assert "tonight's training produced the very model rejected before" in why
    assert f"{x} was rejected by the night {D1}.1 (failed: fairness limits) and stays rejected" in why, 'and why'
    assert 'min_group_size = 100000; ' in why, 'the settings behind it'
    assert f"`goodbad reopen {x} --by NAME --note WHY`" in why, 'what would re-open it'
    assert 'ended with no model' in res.stdout
    assert [t for _, t, *_ in moves_of(w, x)] == ['candidate', 'rejected'], 'an unchanged policy: not judged again'

    nightly(w, D1, WARN, check=0)  # the policy its failed gate read has changed: judged again, and released
    assert get_model(state_of(w), x).status == 'champion'
    back = moves_of(w, x)[2]
    why = 'policy changed since its rejection: when_cannot_judge block -> warn'
    assert back == ('rejected', 'candidate', 'nightly run', why)
    assert [t for _, t, *_ in moves_of(w, x)][3:] == ['challenger', 'champion']
    m = manifest(w, D1)
    assert m['status'] == 'succeeded' and m['model']['version'] == x
    assert any('judged again tonight' in a for a in m['release']), m['release']


_SCENE = {}


@pytest.fixture
def beside_a_champion(tmp_path_factory):
    "A champion from the first night, and the second night's model rejected on fairness (played once; branch from it)"
    if 'world' not in _SCENE:
        w = World(tmp_path_factory.mktemp('scene') / 'w', SMALL, REPO)
        w.create(CUSTOMERS, D1 - dt.timedelta(days=1))
        champion = live_models(w.night(D1).state)['champion']
        w.advance(7)
        n = w.night(D2, **BLOCK)
        x = n.results['train'].winner
        assert champion is not None and get_model(n.state, x.version).status == 'rejected'
        _SCENE.update(world=w, champion=champion.version, rejected=x.version)
    return _SCENE


def branch(scene, dest):
    shutil.copytree(scene['world'].root, dest, ignore=shutil.ignore_patterns('runs'))
    return World(dest, scene['world'].env, REPO)


@pytest.mark.xdist_group("rejected-beside-a-champion")
def test_a_rerun_beside_a_champion_succeeds_and_says_the_model_stays_rejected(beside_a_champion, tmp_path):
    w, x, c = branch(beside_a_champion, tmp_path / 'w'), beside_a_champion['rejected'], beside_a_champion['champion']
    nightly(w, D2, BLOCK, check=0)
    m = manifest(w, D2)
    assert m['status'] == 'succeeded' and m['model']['version'] == c, 'the champion labels everyone'
    said = [a for a in m['release'] if x in a]
    assert said and 'and stays rejected' in said[0] and f'goodbad reopen {x}' in said[0], m['release']
    page = (w.root / 'runs' / str(D2) / '80_release.html').read_text()
    assert 'and stays rejected' in page, 'the release page says so'
    assert [t for _, t, *_ in moves_of(w, x)] == ['candidate', 'rejected']


@pytest.mark.xdist_group("rejected-beside-a-champion")
def test_a_policy_change_has_the_rejected_model_judged_again_at_a_night_without_training(beside_a_champion, tmp_path):
    w, x = branch(beside_a_champion, tmp_path / 'w'), beside_a_champion['rejected']
    n = w.night(D2, attempt=2, retrain_every_nights=0, **BLOCK)
    assert n.results['train'].winner is None and get_model(n.state, x).status == 'rejected', 'no change: not judged'
    n = w.night(D2, attempt=3, retrain_every_nights=0, **WARN)  # the newest model of the current training: judged again
    assert n.results['train'].winner is None, 'nothing was trained tonight'
    assert read_artifact(n.run_dir, 'evaluation')['new'] == x and read_artifact(n.run_dir, 'fairness')['version'] == x
    assert get_model(n.state, x).status == 'challenger', n.results['release'].actions
    assert moves_of(w, x)[2][1:3] == ('candidate', 'nightly run')


@pytest.mark.xdist_group("rejected-beside-a-champion")
def test_a_person_reopens_a_rejected_model_and_the_next_night_judges_it_again(beside_a_champion, tmp_path, monkeypatch,
                                                                                capsys):
    w, x = branch(beside_a_champion, tmp_path / 'w'), beside_a_champion['rejected']
    assert run_cli(w, monkeypatch, 'reopen', x, '--by', 'ana', '--note', 'the fairness figures were read by hand') == 0
    assert f"{x} is re-opened by ana" in capsys.readouterr().out
    assert moves_of(w, x)[-1] == ('rejected', 'candidate', 'ana', 'the fairness figures were read by hand')
    n = w.night(D2, attempt=2, retrain_every_nights=0, **BLOCK)  # judged again, under the policy that rejected it
    assert read_artifact(n.run_dir, 'evaluation')['new'] == x and x in n.results['release'].gates
    assert 're-opened by ana' in read_artifact(n.run_dir, 'evaluation')['note']
    assert [(t, by) for _, t, by, _ in moves_of(w, x)][-2:] == [('candidate', 'ana'), ('rejected', 'nightly run')]
    assert len(get_model(n.state, x).details['rejections']) == 2


@pytest.mark.xdist_group("rejected-beside-a-champion")
def test_reopening_is_refused_unless_rejected_with_its_artifact(beside_a_champion, tmp_path, monkeypatch, capsys):
    w, x, c = branch(beside_a_champion, tmp_path / 'w'), beside_a_champion['rejected'], beside_a_champion['champion']
    assert run_cli(w, monkeypatch, 'reopen', c, '--by', 'ana', '--note', 'why not') == 2
    assert f"model {c} is champion, not rejected: only a rejected model can be re-opened" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e: run_cli(w, monkeypatch, 'reopen', x, '--by', 'ana')
    assert e.value.code == 2 and '--note' in capsys.readouterr().err, 'the reason is required'
    artifact = w.settings().model_store / get_model(state_of(w), x).artifact
    artifact.unlink()
    assert run_cli(w, monkeypatch, 'reopen', x, '--by', 'ana', '--note', 'try again') == 2
    err = capsys.readouterr().err
    assert f"model {x} cannot be re-opened: its artifact {artifact} is missing" in err and 'Restore the artifact' in err
    assert [t for _, t, *_ in moves_of(w, x)] == ['candidate', 'rejected'], 'nothing moved'


@pytest.mark.xdist_group("rejected-beside-a-champion")
def test_a_reopened_model_is_judged_first_and_the_one_trained_that_night_at_the_next(beside_a_champion, tmp_path,
                                                                                      monkeypatch):
    w, x = branch(beside_a_champion, tmp_path / 'w'), beside_a_champion['rejected']
    assert run_cli(w, monkeypatch, 'reopen', x, '--by', 'ana', '--note', 'judge it on fresh figures') == 0
    w.advance(7), w.advance(7)  # two weeks on (a week on, this small world holds no model at the target)
    d3 = D2 + dt.timedelta(days=14)
    n = w.night(d3, **WARN)  # a new model is trained tonight, but a person asked for this one first
    y = n.results['train'].winner.version
    assert y != x and read_artifact(n.run_dir, 'evaluation')['new'] == x
    assert f"{y}, trained tonight, waits: a re-opened model is judged first." in tonight_note(n)
    assert (get_model(n.state, x).status, get_model(n.state, y).status) == ('challenger', 'candidate')
    n = w.night(d3, attempt=2, retrain_every_nights=0, **WARN)  # the newest of its training, never judged: judged now
    assert read_artifact(n.run_dir, 'evaluation')['new'] == y
    assert (get_model(n.state, x).status, get_model(n.state, y).status) == ('superseded', 'challenger')
