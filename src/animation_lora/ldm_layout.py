"""Diffusers U-Net / VAE state dicts in the original LDM key layout (SD 1.x's `ldm`, SDXL's `sgm`: the same
U-Net names), the inverse of what diffusers converts on load (its converter turns these keys back into the
originals exactly). kohya names an SDXL LoRA's U-Net modules in this layout (sd-scripts' SDXL U-Net is the
original one), so `lora_format` names them with `unet_key` too; the stand-ins write single files with it."""

import re

RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
RENAMED = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    "add_embedding.linear_1": "label_emb.0.0",  # SDXL: the pooled text and size embedding
    "add_embedding.linear_2": "label_emb.0.2",
}


def resnet(rest: str) -> str:
    head, tail = rest.split(".", 1)
    return RESNET[head] + "." + tail


def unet_key(k: str, lpb: int, n_blocks: int, attn_levels) -> str:
    """One diffusers U-Net key in the LDM layout (lpb: layers per block)."""
    for old, new in RENAMED.items():
        if k.startswith(old + "."):
            return k.replace(old, new, 1)
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", k):
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        part = f"0.{resnet(rest)}" if kind == "resnets" else f"1.{rest}"
        return f"input_blocks.{1 + block * (lpb + 1) + layer}.{part}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", k):
        return f"input_blocks.{(int(m[1]) + 1) * (lpb + 1)}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", k):
        return f"middle_block.{2 * int(m[1])}.{resnet(m[2])}"
    if m := re.match(r"mid_block\.attentions\.0\.(.*)", k):
        return f"middle_block.1.{m[1]}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", k):
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        part = f"0.{resnet(rest)}" if kind == "resnets" else f"1.{rest}"
        return f"output_blocks.{block * (lpb + 1) + layer}.{part}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", k):
        block = int(m[1])
        has_attn = (n_blocks - 1 - block) in attn_levels
        return f"output_blocks.{block * (lpb + 1) + lpb}.{2 if has_attn else 1}.conv.{m[2]}"
    raise KeyError(k)


def unet_to_ldm(sd, lpb, n_blocks, attn_levels):
    """lpb: layers per block; attn_levels: the levels (0 = full resolution) with cross-attention."""
    return {"model.diffusion_model." + unet_key(k, lpb, n_blocks, attn_levels): v for k, v in sd.items()}


def vae_to_ldm(sd, n_blocks):
    out = {}
    attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    for k, v in sd.items():
        n = k
        n = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)", r"encoder.down.\1.block.\2", n)
        n = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0", r"encoder.down.\1.downsample", n)
        n = re.sub(
            r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)",
            lambda m: f"decoder.up.{n_blocks - 1 - int(m[1])}.block.{m[2]}",
            n,
        )
        n = re.sub(
            r"decoder\.up_blocks\.(\d+)\.upsamplers\.0",
            lambda m: f"decoder.up.{n_blocks - 1 - int(m[1])}.upsample",
            n,
        )
        n = re.sub(r"mid_block\.resnets\.(\d)", lambda m: f"mid.block_{int(m[1]) + 1}", n)
        n = n.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
        if "mid_block.attentions.0." in n:
            n = n.replace("mid_block.attentions.0.", "mid.attn_1.")
            for a, b in attn.items():
                n = n.replace(f"attn_1.{a}.", f"attn_1.{b}.")
            if v.ndim == 2:
                v = v[:, :, None, None]
        out["first_stage_model." + n] = v
    return out
