"""
Tiny fine-grained FP8 checkpoints (quant_method "fp8", e4m3 with block scales, as DeepSeek-V3, Kimi-K2 and the
Qwen3 "-FP8" releases ship), made from transformers' own random models, and what transformers computes on them.

Usage: fp8_checkpoints.py OUT_DIR
For each case: a random model (weights N(0, 0.2^2)) saved with save_pretrained, then every linear weight except
the router, embeddings and lm_head rewritten as float8_e4m3fn with `<name>_scale_inv` block scales (amax / 448 per
block; blocks of 16 x 8 so that edge blocks are partial) and config.json given the quantization_config.
Prints one JSON line {case: {nll, nll_dequant, ids, fp8_tensors, table}}:
  nll          transformers loading the FP8 directory (on CPU it dequantises to the requested float32)
  nll_dequant  the original model with each weight replaced by Q * scale_inv computed here (an independent check)
  table        torch's float32 value of every float8_e4m3fn bit pattern (NaN as null)
"""
import json
import math
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from families import BASE, FAMILIES  # noqa: E402

torch.set_num_threads(1)
OUT = sys.argv[1]
BLOCK = [16, 8]
CASES = {"deepseek-v3": FAMILIES["deepseek-v3"], "qwen3": FAMILIES["qwen3"]}


def quantize(w):
    o, i = w.shape
    bo, bi = BLOCK
    so, si = math.ceil(o / bo), math.ceil(i / bi)
    padded = F.pad(w.float(), (0, si * bi - i, 0, so * bo - o))
    blocks = padded.reshape(so, bo, si, bi)
    scale = blocks.abs().amax(dim=(1, 3)).clamp(min=1e-12) / 448.0
    q = (blocks / scale[:, None, :, None]).to(torch.float8_e4m3fn).reshape(so * bo, si * bi)[:o, :i].contiguous()
    deq = (q.float().reshape(o, i) * scale.repeat_interleave(bo, 0)[:o].repeat_interleave(bi, 1)[:, :i])
    return q, scale.float().contiguous(), deq


def is_fp8_target(name, t):
    return t.dim() == 2 and name.endswith(".weight") and "proj" in name


def nll_of(model, ids):
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    return float(F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)))


result = {}
for case, (model_type, kw) in CASES.items():
    torch.manual_seed(0)
    cfg = AutoConfig.for_model(model_type, **{**BASE, **kw})
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.1 if "norm" in n else 0.2) + (1.0 if "norm" in n else 0.0))
    d = os.path.join(OUT, case)
    model.save_pretrained(d)
    sd = load_file(os.path.join(d, "model.safetensors"))
    out, deq = {}, {}
    for n, t in sd.items():
        if is_fp8_target(n, t):
            q, s, w = quantize(t)
            out[n], out[n + "_scale_inv"], deq[n] = q, s, w
        else:
            out[n] = t
    save_file(out, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    c = json.load(open(os.path.join(d, "config.json")))
    c["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": BLOCK}
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=2)

    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, BASE["vocab_size"], (2, 24), generator=g)
    # the independent reference: a float directory with the dequantised weights, loaded the usual way
    dd = d + "-dequantised"
    model.save_pretrained(dd)
    save_file({**sd, **deq}, os.path.join(dd, "model.safetensors"), metadata={"format": "pt"})
    ref = AutoModelForCausalLM.from_pretrained(dd, dtype=torch.float32).eval()
    res = {"ids": ids.tolist(), "fp8_tensors": len(deq), "nll_dequant": nll_of(ref, ids)}
    try:
        loaded = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
        res["nll"] = nll_of(loaded, ids)
    except Exception as e:  # noqa: BLE001  (reported, the test says which reference it used)
        res["error"] = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    result[case] = res

table = torch.arange(256, dtype=torch.uint8).view(torch.float8_e4m3fn).float().tolist()
result["table"] = [None if math.isnan(x) else x for x in table]
print(json.dumps(result))
