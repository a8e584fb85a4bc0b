"""The package's layout: each folder imports only the base modules and the folders before it, in the order the
package docstring (harness/__init__.py) writes; each folder says in its __init__ what it holds."""
import ast
import re
from pathlib import Path

import harness

PACKAGE = Path(harness.__file__).parent


def documented_order() -> tuple[set[str], list[str]]:
    """(base modules, folders in order) as the package docstring lists them."""
    base, folders = set(), []
    for line in harness.__doc__.splitlines():
        m = re.match(r"\s{4}(base modules|\w+/)\s{2,}(.*)", line)
        if not m:
            continue
        if m.group(1) == "base modules":
            base = {name.strip() for name in re.sub(r"\(.*\)", "", m.group(2)).split(",")}
        else:
            folders.append(m.group(1).rstrip("/"))
    return base, folders


def imports_of(path: Path) -> set[str]:
    """The top-level parts of harness that a file imports (at any depth of the code)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "harness" else [f"harness.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: a relative import; the package imports absolutely")
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        out |= {n.split(".")[1] for n in names if n.startswith("harness.")}
    return out


def part_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_the_docstring_names_every_folder_and_base_module():
    base, folders = documented_order()
    on_disk = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert set(folders) | {"embedded"} == on_disk and "embedded" in base
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert modules == (base - {"embedded"}) | {"results"}  # results.py: the DataFrame face, just below api/


def test_no_folder_imports_one_after_it():
    base, folders = documented_order()
    rank = {name: i for i, name in enumerate(folders)}
    rank["results"] = rank["api"] - 0.5  # harness.results: the DataFrame face, just below the API
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        part = part_of(path)
        if part in ("__init__", "__main__"):
            continue
        for used in imports_of(path) - {part, "__version__"}:
            if used in base:
                continue
            if part in base or rank.get(used, len(folders)) >= rank[part]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports harness.{used}")
    assert not wrong, wrong


def test_the_order_check_catches_an_import_from_a_later_folder(tmp_path):
    """The check above can fail: an import of outputs/ from aggregate/ is caught."""
    base, folders = documented_order()
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from harness.outputs.plot import plot_table\n")
    assert imports_of(bad) == {"outputs"} and folders.index("outputs") > folders.index("aggregate")


def test_each_folder_says_what_it_holds_and_what_it_may_import():
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name == "embedded":
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc, init
