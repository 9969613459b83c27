"""The strict configuration: dotted overrides, TOML files, unknown keys, bounds."""
import pytest

from spikevae.config import config_hash, describe, to_dict
from spikevae.errors import SpikevaeConfigError
from spikevae.params import PipelineConfig, load_config


def test_override_sets_typed_values():
    cfg = load_config(overrides=["detect.threshold=5", "features.n_components=3", "preprocess.cmr=true"])
    assert cfg.detect.threshold == 5.0 and isinstance(cfg.detect.threshold, float)
    assert cfg.features.n_components == 3 and isinstance(cfg.features.n_components, int)
    assert cfg.preprocess.cmr is True


def test_unknown_key_names_nearest_valid_key():
    with pytest.raises(SpikevaeConfigError, match="did you mean detect.threshold"):
        load_config(overrides=["detect.treshold=5"])


def test_unknown_toml_key(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[detect]\nthreshhold = 4\n")
    with pytest.raises(SpikevaeConfigError, match="detect.threshhold"):
        load_config(p)


def test_bounds_and_choices_are_checked():
    with pytest.raises(SpikevaeConfigError, match="out of range"):
        load_config(overrides=["detect.threshold=0.1"])
    with pytest.raises(SpikevaeConfigError, match="not one of"):
        load_config(overrides=["detect.polarity=up"])
    with pytest.raises(SpikevaeConfigError, match="expected a float"):
        load_config(overrides=["detect.threshold=high"])


def test_toml_file_and_hash(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[preprocess]\nband = "blackrock"\n[detect]\nthreshold = 4.5\n')
    cfg = load_config(p)
    assert cfg.preprocess.band_hz() == (250.0, 7500.0)
    assert cfg.detect.threshold == 4.5
    assert config_hash(to_dict(cfg)) != config_hash(to_dict(PipelineConfig()))
    assert config_hash(to_dict(cfg)) == config_hash(to_dict(load_config(p)))


def test_every_key_is_described():
    rows = describe(PipelineConfig())
    assert all(text for _, _, text in rows), [k for k, _, t in rows if not t]
    assert {"detect.threshold", "features.method", "cluster.method"} <= {k for k, _, _ in rows}


def test_pipeline_presets_load():
    from pathlib import Path

    from spikevae.benchmark import load_benchmark
    from spikevae.config import load_toml

    files = sorted((Path(__file__).parent.parent / "pipelines").glob("*.toml"))
    assert files, "pipelines/ has no presets"
    for f in files:
        if "benchmark" in load_toml(f):
            load_benchmark(f)
        else:
            load_config(f)
