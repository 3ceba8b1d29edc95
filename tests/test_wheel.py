"""The built wheel ships the recap templates (top-level templates/ is
force-included as chatarchive/templates) and the renderer finds them there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    try:
        import hatchling  # noqa: F401
        isolation = ["--no-build-isolation"]  # build offline with the installed backend
    except ImportError:
        isolation = []
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out), *isolation],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheels = list(out.glob("chatarchive-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_contains_every_template(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    ours = sorted(p.name for p in (ROOT / "templates").iterdir() if p.is_file())
    assert {"base.html", "_post.html", "index.html", "session.html", "hashtag.html", "participant.html",
            "search.html"} <= set(ours)
    for name in ours:
        assert f"chatarchive/templates/{name}" in names, name
    assert "chatarchive/recap/site.py" in names and "chatarchive/export.py" in names


def test_renderer_uses_the_templates_inside_the_wheel(wheel, tmp_path):
    target = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(target)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import chatarchive.recap.site as r;"
        "d = r.template_dirs(); print(d[0]);"
        "print(r.make_env().get_template('base.html').filename)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    first, base = proc.stdout.splitlines()
    assert Path(first) == target / "chatarchive" / "templates"
    assert Path(base) == target / "chatarchive" / "templates" / "base.html"
