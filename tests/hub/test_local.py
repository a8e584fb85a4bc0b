"""What this machine holds: where a task's data or a model's weights would come from, without the hub."""
from harness.hub import local
from harness.registry.load import load_models, load_tasks
from harness.registry.specs import ModelSpec


def test_each_task_and_model_says_where_it_is_here(toy_env, monkeypatch):
    tasks, models = load_tasks(), load_models()
    monkeypatch.setattr(local, "cached_repos", lambda: frozenset({("model", models["ttl-160m"].hub_id),
                                                                  ("dataset", tasks["hatebr"].hub_id)}))
    mirror = str(toy_env["mirror"])
    assert local.task_source(tasks["toy"], mirror) == "mirror"
    assert local.task_source(tasks["toy"]) == local.HUB
    assert local.task_source(tasks["hatebr"]) == "HF cache"
    assert local.task_source(tasks["assin-ptbr-sts"]) == "package (harness)"  # the data shipped in the package
    assert local.model_source(models["ttl-160m"]) == "HF cache" and local.model_source(models["ttl-460m"]) == local.HUB
    assert local.model_source(models["minilm-l6"]) in ("package", "package, not installed (pip install "
                                                                  "'poeta-harness[minilm]')")
    missing = ModelSpec(name="x", display_name="X", family="encoder", package="no_such_package_here", extra="x")
    assert local.model_source(missing) == "package, not installed (pip install 'poeta-harness[x]')"
    assert local.model_source(ModelSpec(name="y", display_name="Y", family="encoder", path="/m")) == "local folder"
