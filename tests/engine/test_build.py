import pytest

from actionrec.engine.build import config_example, model_from_config
from actionrec.errors import ConfigError
from tests.conftest import tiny_config


def test_stnet_frames_per_super_image_are_the_snippet_length(synth_small, tmp_path):
    """One value: data.snippet_len is StNet's n; a model.options.n that differs is refused."""
    cfg = tiny_config(synth_small, tmp_path, "model.name=stnet", "data.sampler=snippet",
                      "data.snippet_len=3")
    model = model_from_config(cfg, 4)
    assert model.n == 3 and model.input_frames == 4 * 3
    assert config_example(cfg, batch=2).shape == (2, 12, 3, 32, 32)
    same = tiny_config(synth_small, tmp_path, "model.name=stnet", "data.sampler=snippet",
                       "data.snippet_len=3", "model.options.n=3")
    assert model_from_config(same, 4).n == 3
    other = tiny_config(synth_small, tmp_path, "model.name=stnet", "data.sampler=snippet",
                        "data.snippet_len=3", "model.options.n=5")
    with pytest.raises(ConfigError, match="model.options.n=5 differs from data.snippet_len=3"):
        model_from_config(other, 4)
