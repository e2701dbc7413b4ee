"""Headless Chromium for the tests: what a reader's browser shows of a page, measured in its DOM, and a screenshot for people."""
from __future__ import annotations
import html, json, re, shutil, subprocess, tempfile
from pathlib import Path

# nbconvert's code input areas: the lab template (`.jp-InputArea-editor` holding a `.jp-CodeMirrorEditor` with a
# `.cm-editor .highlight`), and the classic one (`div.input_area`); markdown cells also use `.jp-InputArea`, so only
# those of code cells count
CODE_INPUTS = ('.jp-CodeCell .jp-InputArea', '.jp-InputArea-editor', '.jp-CodeMirrorEditor', '.cm-editor',
               '.jp-CodeCell .jp-InputArea .highlight', '.input_area', '.code_cell div.input')

PROBE = """
<script>
window.addEventListener('load', () => {
  const shown = el => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
                        return r.width > 0 && r.height > 0 && s.display !== 'none' && s.visibility !== 'hidden'; };
  const clipped = el => { for (let a = el.parentElement; a && a !== document.body; a = a.parentElement)
                            if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(a).overflowX)) return true;
                          return false; };
  const verdict = document.querySelector('.goodbad-verdict'), box = verdict && verdict.getBoundingClientRect();
  const inputs = new Set([...document.querySelectorAll(SELECTORS)].filter(shown).map(el => el.closest('.jp-Cell, .cell') || el));
  const wide = [...document.querySelectorAll('body *')].filter(el => el.getBoundingClientRect().right > window.innerWidth + 0.5 && shown(el) && !clipped(el));
  const facts = {
    verdict_top: box ? box.top + window.scrollY : null, verdict_bottom: box ? box.bottom + window.scrollY : null,
    verdict_text: verdict ? verdict.innerText : null, code_inputs: inputs.size,
    scroll_width: document.documentElement.scrollWidth, inner_width: window.innerWidth, inner_height: window.innerHeight,
    images: document.images.length, title: document.title, text: document.body.innerText.slice(0, 5000),
    too_wide: wide.slice(0, 10).map(el => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '')),
  };
  const pre = document.createElement('pre');
  pre.id = 'goodbad-probe'; pre.textContent = JSON.stringify(facts);
  document.body.appendChild(pre);
});
</script>
""".replace('SELECTORS', json.dumps(', '.join(CODE_INPUTS)))


def chromium() -> str:
    "The Chromium executable, or an error that says how to install it"
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if exe is None:
        raise RuntimeError("Chromium is not installed, and the page tests measure the pages in a real browser: "
                           "install it with `apt-get install -y chromium` (Debian) and run the tests again.")
    return exe


def run_chromium(url: str, *args: str, width: int = 1280, height: int = 800, timeout: int = 120) -> subprocess.CompletedProcess:
    "Chromium, headless and offline-minded, on `url` with `args` (e.g. --dump-dom), in a window `width` x `height`"
    with tempfile.TemporaryDirectory(prefix='goodbad-chromium-') as profile:
        cmd = [chromium(), '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync', f'--user-data-dir={profile}',
               f'--window-size={width},{height}', '--virtual-time-budget=5000', *args, url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode} on {url}: {done.stderr[-2000:]}")
    return done


def page_facts(page: Path, width: int = 1280, height: int = 800) -> dict:
    "What a browser window `width` x `height` shows of `page`: where its verdict is, visible code inputs, overflow, images"
    source = Path(page).read_text()
    probed = source.replace('</body>', PROBE + '</body>', 1) if '</body>' in source else source + PROBE
    with tempfile.TemporaryDirectory(prefix='goodbad-page-') as d:
        copy = Path(d)/Path(page).name  # beside nothing: a page must not need its neighbours to show itself
        copy.write_text(probed)
        dom = run_chromium(copy.as_uri(), '--dump-dom', width=width, height=height).stdout
    found = re.search(r'<pre id="goodbad-probe">(.*?)</pre>', dom, re.S)
    if found is None:
        raise RuntimeError(f"the probe did not report from {page}: the page did not finish loading within 5 s of virtual time")
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 800) -> Path:
    "A screenshot of the first `width` x `height` of `page`, for people to look at"
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    run_chromium(Path(page).resolve().as_uri(), f'--screenshot={png}', width=width, height=height)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot of {page} to {png}")
    return png
