"""``pip install .`` (not editable) ships what the commands read from the package."""

import shutil
import subprocess
import sys
import zipfile

from actionrec.demo import CONFIGS, RECIPES

REPO = CONFIGS.parents[2]


def test_wheel_ships_the_demo_recipes_and_the_web_page(tmp_path):
    """The wheel holds every recipe ``actionrec demo`` trains and the page ``serve`` shows.
    Built from a copy of the files git would commit: the editable install's egg-info in the
    checkout would list them anyway."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    source = tmp_path / "src"
    for name in files:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(tmp_path), str(source)], check=True)
    (wheel,) = tmp_path.glob("actionrec-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"actionrec/configs/demo/{path.name}" for path in RECIPES.values()}
    assert len(shipped) == len(list(CONFIGS.glob("*.yaml"))) >= 5
    assert shipped <= names, sorted(shipped - names)
    assert "actionrec/serve/page.html" in names
