"""Device and precision names resolved for this machine."""

import pytest
import torch


@pytest.mark.parametrize(("has_bf16", "expected"), [(True, "bf16"), (False, "fp32")])
def test_precision_auto_follows_the_cpus_instructions(monkeypatch, has_bf16, expected):
    from reslab.run import device as runtime

    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: has_bf16)
    cpu = torch.device("cpu")
    assert runtime.resolve_precision("auto", cpu) == expected
    assert runtime.resolve_precision("fp32", cpu) == "fp32"  # a choice made is kept
    assert runtime.resolve_precision("bf16", cpu) == "bf16"


def test_cpu_bf16_detection_reads_the_cpu_flags():
    from reslab.run import device as runtime

    with open("/proc/cpuinfo") as f:
        flags = f.read()
    assert runtime.cpu_has_bf16() == (" avx512_bf16" in flags or " amx_bf16" in flags)


def test_a_run_records_the_precision_auto_chose(monkeypatch, tmp_path, tiny_config):
    from reslab.run import device as runtime
    from reslab.train import session

    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    result = session.fit(tiny_config(precision="auto", max_steps=1), tmp_path / "r", quiet=True)
    assert 'precision = "fp32"' in (result.run_dir / "config.toml").read_text()
