"""
python/moe_tune_remote/mla_attention.py against transformers' own DeepseekV3Attention: same random weights
(every family row of families.py with model_type deepseek_v3), same input; prints {row: max |diff|} as JSON.
Works with transformers 5.18 and 4.57 (their attention and rotary embedding signatures are used as each has them).
"""
import json
import os
import sys

import torch
from transformers import AutoConfig
from transformers.models.deepseek_v3 import modeling_deepseek_v3 as m

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from families import BASE, FAMILIES  # noqa: E402
from make_references import config_kwargs  # noqa: E402
from moe_tune_remote.mla_attention import MoeTuneMlaAttention  # noqa: E402

torch.set_num_threads(1)
out = {}
for name, (model_type, over) in FAMILIES.items():
    if model_type != "deepseek_v3":
        continue
    cfg = AutoConfig.for_model(model_type, **config_kwargs({**BASE, **over}))
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    ref = m.DeepseekV3Attention(cfg, 0).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn_like(p) / (p.shape[-1] ** 0.5) if p.dim() > 1 else 1 + 0.1 * torch.randn_like(p))
    ours = MoeTuneMlaAttention(cfg, 0).eval()
    missing = ours.load_state_dict(ref.state_dict(), strict=True)
    B, T = 2, 9
    x = torch.randn(B, T, cfg.hidden_size)
    pos = torch.arange(T)[None].expand(B, T)
    cos, sin = m.DeepseekV3RotaryEmbedding(cfg)(x, pos)
    mask = torch.full((T, T), float("-inf")).triu(1)[None, None].expand(B, 1, T, T)
    with torch.no_grad():
        want = ref(hidden_states=x, position_embeddings=(cos, sin), attention_mask=mask)[0]
        got = ours(x, cos, sin, mask)
    out[name] = float((want - got).abs().max())
print(json.dumps(out))
