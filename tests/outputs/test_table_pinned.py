"""The TTL table prints byte for byte what it printed before."""
import contextlib
import io
import json
from pathlib import Path

import pytest
from conftest import REPO
from records import make_record

from harness.cli.commands import main
from harness.record.store import write_record

FIXTURE = REPO / "tests" / "fixtures" / "ttl_table"


FORMATS = {"markdown": "md", "csv": "csv", "latex": "tex", "json": "json"}


def _v1_results(folder: Path) -> Path:
    for rel, data in json.loads((FIXTURE / "records_v1.json").read_text()).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return folder


def _new_results(folder: Path) -> Path:
    for s in json.loads((FIXTURE / "spec.json").read_text()):
        # precision None: as the version 1 records, which predate the field ("precision unrecorded")
        write_record(folder, make_record(s["task"], s["model"], s["seed"], s["acc"], clean=s["clean"],
                                         variant=s["variant"], precision=None,
                                         display={"tiny-bert": "tiny-bert"}.get(s["model"])))
    return folder


def _table(results: Path, protocol: str, fmt: str, *extra) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["table", "--results", str(results), "--protocol", protocol, "--format", fmt,
                     "--output", str(results / "out.txt"), *extra])
    assert code == 0
    return out.getvalue()


@pytest.fixture(scope="module", params=["v1 records", "new records"])
def results(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    return _v1_results(folder) if request.param == "v1 records" else _new_results(folder)


@pytest.mark.parametrize("protocol", ["published", "clean"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_ttl_table_prints_what_it_printed_before(results, protocol, fmt):
    expected = (FIXTURE / f"table-{protocol}.{FORMATS[fmt]}").read_bytes().decode()  # CSV rows end in \r\n
    got = _table(results, protocol, fmt)
    assert got == expected
    # The default is the ttl suite: naming it changes nothing.
    assert _table(results, protocol, fmt, "--suite", "ttl") == got


def test_the_registry_holds_more_than_the_ttl_suite():
    """The pin above means something only if other tasks are registered and stay out of the default table."""
    from harness.registry.load import load_tasks

    tasks = load_tasks()
    outside = [t.name for t in tasks.values() if "ttl" not in t.suites]
    assert {"assin2-sts", "assin-ptbr-rte", "assin-ptpt-rte", "assin-ptbr-sts", "assin-ptpt-sts"} <= set(outside)
