"""
Evaluates many model directories in one Python process (tests of python/moe_tune_remote): for each job
{dir, ids, mode}, loads the directory with transformers and reports what it computes.

mode "remote":  AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True): NLL, per-layer load, and the
                aux losses of job["aux"] (moe-tune specs) from the model's router outputs
mode "plain":   AutoModelForCausalLM.from_pretrained(dir) (no remote code): NLL
mode "refuse":  AutoModelForCausalLM.from_pretrained(dir) must raise; reports the error's first line
mode "peft":    the base dir plain, then PeftModel.from_pretrained(base, adapter): NLL

Prints one JSON line: [{dir, ok, nll, tokens, load: [{layer, module, experts_per_token, per_expert}], error}].
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# remote code is copied into HF_MODULES_CACHE: the caller passes a private one (tests run in parallel)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

torch.set_num_threads(1)


def nll_of(model, ids):
    x = torch.tensor(ids, dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=x)
    logits = out.logits.float()
    lp = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
    n = x[:, 1:].numel()
    return float(lp) / n, n, out


def run(job):
    d, mode, ids = job["dir"], job["mode"], job["ids"]
    res = {"dir": d, "mode": mode, "ok": False}
    try:
        if mode == "refuse":
            try:
                AutoModelForCausalLM.from_pretrained(d, trust_remote_code=False)
                res["error"] = None
            except Exception as e:  # the point: transformers refuses
                res["ok"] = True
                res["error"] = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            return res
        if mode == "peft":
            from peft import PeftModel
            base = AutoModelForCausalLM.from_pretrained(job["base"], dtype=torch.float32)
            model = PeftModel.from_pretrained(base, d)
        else:
            model = AutoModelForCausalLM.from_pretrained(d, trust_remote_code=(mode == "remote"), dtype=torch.float32)
        model.eval()
        nll, n, out = nll_of(model, ids)
        res.update(ok=True, nll=nll, tokens=n, cls=type(model).__name__)
        recs = getattr(out, "router_outputs", None)
        if job.get("aux") and isinstance(recs, list):
            from importlib import import_module
            losses = import_module(type(model).__module__.rsplit(".", 1)[0] + ".losses")
            vals, _ = losses.compute_aux_losses(recs, job["aux"])
            res["aux"] = {k: float(v) for k, v in vals.items()}
        if isinstance(recs, list):
            res["load"] = [{"layer": r.layer, "module": r.module, "experts_per_token": r.routing.true_experts_per_token(),
                            "per_expert": [float(v) / r.routing.num_tokens for v in r.routing.tokens_per_expert().tolist()]}
                           for r in recs]
    except Exception as e:
        res["error"] = f"{type(e).__name__}: {str(e).strip()[:500]}"
    return res


def main():
    jobs = json.load(open(sys.argv[1]))
    out = [run(j) for j in jobs]
    print(json.dumps({"transformers": transformers.__version__, "results": out}))


if __name__ == "__main__":
    main()
