"""
Makes PEFT adapters on transformers 5 with fused MoE experts (target_parameters, lora.ParamWrapper) for a
Mixtral base dir, with random (non-zero) B, and prints their NLL on the given ids as JSON:
argv: BASE OUT_DIR IDS_JSON.
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

torch.manual_seed(0)
base, out, ids = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
x = torch.tensor(ids)
configs = {
    # PEFT turns w1 / w3 / w2 into target_parameters gate_up_proj (rank_pattern 2r) and down_proj
    "modules": LoraConfig(r=2, lora_alpha=8, target_modules=["w1", "w3", "w2", "q_proj"], init_lora_weights=False),
    "parameters": LoraConfig(r=3, lora_alpha=6, target_modules=["v_proj"], target_parameters=["gate_up_proj", "down_proj"], init_lora_weights=False),
}
res = {}
for name, cfg in configs.items():
    m = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    pm = get_peft_model(m, cfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    pm.eval()
    with torch.no_grad():
        logits = pm(input_ids=x).logits.float()
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).item()
    d = os.path.join(out, name)
    pm.save_pretrained(d)
    res[name] = {"dir": d, "nll": nll, "target_parameters": pm.peft_config["default"].target_parameters and sorted(pm.peft_config["default"].target_parameters)}
print(json.dumps(res))
