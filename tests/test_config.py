"""The run settings: every field documented and type-checked."""
import pytest

from harness.errors import UserError


def test_every_run_setting_has_help():
    import dataclasses

    from harness.config import RunConfig, help_of

    assert all(help_of(f).strip() for f in dataclasses.fields(RunConfig))


def test_the_type_check_of_run_settings_takes_optional_and_other_fields():
    """Settings of other types (a tuple, `int | None`), as a later RunConfig may add, pass the type check, and
    an optional one still refuses a wrong type."""
    import dataclasses

    from harness.config import RunConfig

    @dataclasses.dataclass
    class More(RunConfig):
        rank: int | None = None
        targets: tuple = ()

    assert More().rank is None and More(rank=8).rank == 8
    with pytest.raises(UserError, match="bad run setting: rank must be an integer, got 'x'"):
        More(rank="x")
    with pytest.raises(UserError, match="bad run setting: epochs must be an integer, got True"):
        RunConfig(epochs=True)


def test_the_evaluation_batch_is_the_one_given_or_the_devices():
    import torch

    from harness.config import RunConfig, eval_batch_size

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert eval_batch_size(RunConfig(), cpu) == 32 and eval_batch_size(RunConfig(), cuda) == 128
    given = RunConfig(eval_batch_size=8)
    assert eval_batch_size(given, cpu) == eval_batch_size(given, cuda) == 8
