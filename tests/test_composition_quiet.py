"""Loading a LoRA with a text-encoder part prints no false "MISSING" report (transformers 5's LOAD REPORT)."""

from animation_lora.backends.diffusion import make_base_model
from animation_lora.composition import Composer
from animation_lora.lora_format import LoraFile, to_kohya
from animation_lora.training.config import TrainConfig
from animation_lora.training.model import add_lora


def test_loading_a_text_encoder_lora_prints_no_load_report(capfd):
    base = make_base_model({"backend": "tiny", "tiny": {"seed": 0}})
    unet, text_encoder = add_lora(base, TrainConfig.from_params({"text_encoder_lr": 1e-4}))
    lora = LoraFile(to_kohya(unet, text_encoder, alpha=1.0), {})
    composer = Composer(base, {"a": lora})
    out, err = capfd.readouterr()
    assert "LOAD REPORT" not in out + err and "MISSING" not in out + err
    assert composer.names == ["a"]
