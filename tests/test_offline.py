"""Issue 25: the project never reaches out — the hubs' offline switches are set when Kedro loads the
project's settings, so a model name that would download fails at once (huggingface_hub refuses)."""

import os
import subprocess
import sys


def test_loading_the_settings_switches_the_hubs_offline():
    code = ("import os\n"
            "import animation_lora.settings\n"
            "from huggingface_hub import hf_hub_download\n"
            "try:\n"
            "    hf_hub_download('openai/clip-vit-base-patch32', 'config.json')\n"
            "except Exception as err:\n"
            "    print(type(err).__name__, os.environ['HF_HUB_OFFLINE'],\n"
            "          os.environ['TRANSFORMERS_OFFLINE'])\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split() == ["LocalEntryNotFoundError", "1", "1"], out.stdout + out.stderr
