import pytest

from trainables.config import TrialConfig


def test_defaults_and_round_trip():
    cfg = TrialConfig(dataset="digits", epochs=3, loss="ls", loss_params={"alpha": 0.1})
    again = TrialConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.to_dict()["loss_params"] == {"alpha": 0.1}


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("epochs", 0, "an integer in [1, 10000]"),
        ("epochs", -3, "an integer in [1, 10000]"),
        ("epochs", 2.5, "an integer in [1, 10000]"),
        ("epochs", True, "an integer in [1, 10000]"),
        ("batch_size", 0, "an integer >= 1"),
        ("batch_size", "64", "an integer >= 1"),
        ("eval_batch_size", -1, "an integer >= 1"),
        ("step_size", 0, "an integer >= 1"),
        ("subset", 1, "an integer >= 2"),
        ("seed", -1, "an integer in [0, 9223372036854775807]"),
        ("seed", 2**63, "an integer in [0, 9223372036854775807]"),
        ("epochs", 10**6, "an integer in [1, 10000]"),
        ("shift_severity", 6, "an integer in [0, 5]"),
        ("optimizer", "adam", "sgd, adamw"),
        ("schedule", "linear", "cosine, step, multistep, constant"),
        ("device", "tpu", "auto, cpu, cuda"),
        ("lr", 0.0, "a finite number > 0"),
        ("lr", float("nan"), "a finite number > 0"),
        ("lr", float("inf"), "a finite number > 0"),
        ("val_fraction", 1.0, "a number in (0, 1)"),
        ("momentum", 1.0, "a number in [0, 1)"),
        ("weight_decay", -1e-4, "a finite number >= 0"),
        ("step_gamma", 0.0, "a number in (0, 1]"),
        ("augment", "yes", "true or false"),
        ("loss_params", [0.1], "a mapping name -> value"),
    ],
)
def test_bad_values_name_the_field(field, value, allowed):
    with pytest.raises(ValueError) as err:
        TrialConfig(**{field: value})
    assert str(err.value) == f"{field}={value!r} is not allowed; allowed: {allowed}"


def test_unknown_key_names_it():
    with pytest.raises(ValueError, match=r"^epoch is not a training setting; allowed: .*epochs"):
        TrialConfig.from_dict({"epoch": 3})
