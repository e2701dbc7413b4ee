"""The library's module graph: every module imports on its own, goodbad's modules form no import cycle, and no import
hides inside a function (where it would dodge a cycle, or fail only on the night that first calls it)."""
import ast, subprocess, sys
from pathlib import Path
import pytest

LIB = Path(__file__).resolve().parent.parent / 'goodbad'
MODULES = sorted(p.stem for p in LIB.glob('*.py') if p.stem not in ('__init__', '_modidx'))


def goodbad_imports(path: Path) -> set[str]:
    "The goodbad modules `path` imports at module level"
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module: found.add(node.module.split('.')[0])
            elif node.level == 1: found |= {a.name for a in node.names}
            elif node.module and node.module.startswith('goodbad.'): found.add(node.module.split('.')[1])
            elif node.module == 'goodbad': found |= {a.name for a in node.names if (LIB / f'{a.name}.py').exists()}
        elif isinstance(node, ast.Import):
            found |= {a.name.split('.')[1] for a in node.names if a.name.startswith('goodbad.')}
    return found & set(MODULES)


def cycle(graph: dict) -> list | None:
    "One import cycle of `graph`, as the list of modules around it, or None"
    state, stack = {}, []
    def visit(m):
        state[m] = 'open'; stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 'open': return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)): return found
        state[m] = 'done'; stack.pop()
        return None
    for m in sorted(graph):
        if m not in state and (found := visit(m)): return found
    return None


def test_the_module_graph_has_no_cycle():
    graph = {m: goodbad_imports(LIB / f'{m}.py') for m in MODULES}
    assert cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a'], 'the check finds a cycle when there is one'
    assert cycle(graph) is None, f"import cycle: {' -> '.join(cycle(graph))}"
    low = {'core', 'record', 'settings', 'contract', 'stats', 'artifacts', 'store'}
    assert not any(graph[m] - low for m in low), 'the low-level modules import no phase'
    for phase in ('acquire', 'features', 'monitor', 'train', 'evaluate', 'fairness', 'explain', 'release', 'score'):
        assert 'upstream' not in graph[phase] and 'nightly' not in graph[phase], f'{phase} must not import the runner or the in-process night'


def test_no_import_inside_a_function():
    hidden = []
    for m in MODULES:
        tree = ast.parse((LIB / f'{m}.py').read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                hidden += [f"{m}.{fn.name} line {n.lineno}" for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not hidden, f"imports inside functions: {', '.join(hidden)}"


@pytest.mark.parametrize('module', MODULES)
def test_each_module_imports_on_its_own(module):
    res = subprocess.run([sys.executable, '-c', f'import goodbad.{module}'], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
