"""
Strided sliding-window perplexity with transformers, following Hugging Face's "Perplexity of fixed-length
models" guide (windows of max_length every stride tokens; each window labels only the tokens the previous
window did not reach; the rest are -100). The per-window sum is computed from the logits with the model's own
label shift, so the token count is exact (the guide's `num_valid_tokens - batch_size` is exact only when a
window's first label is valid).

  python strided_ppl.py JOBS.json   JOBS: [{"dir", "sequences": [[ids...]], "max_length", "stride"}, ...]

Prints one JSON line: [{"nll", "tokens", "windows"}, ...], one per job.
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

torch.set_num_threads(1)


def run(job, model):
    max_length, stride = job["max_length"], job["stride"]
    nll_sum, n_tokens, windows = 0.0, 0, 0
    for seq in job["sequences"]:
        ids = torch.tensor([seq], dtype=torch.long)
        seq_len = ids.size(1)
        prev_end_loc = 0
        for begin_loc in range(0, seq_len, stride):
            end_loc = min(begin_loc + max_length, seq_len)
            trg_len = end_loc - prev_end_loc
            input_ids = ids[:, begin_loc:end_loc]
            target_ids = input_ids.clone()
            target_ids[:, :-trg_len] = -100
            with torch.no_grad():
                logits = model(input_ids).logits.float()
            labels = target_ids[:, 1:]
            nll_sum += float(F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100, reduction="sum"))
            n_tokens += int((labels != -100).sum())
            windows += 1
            prev_end_loc = end_loc
            if end_loc == seq_len:
                break
    return {"nll": nll_sum / n_tokens, "tokens": n_tokens, "windows": windows}


def main():
    models = {}
    out = []
    for job in json.load(open(sys.argv[1])):
        if job["dir"] not in models:
            models[job["dir"]] = AutoModelForCausalLM.from_pretrained(job["dir"], dtype=torch.float32).eval()
        out.append(run(job, models[job["dir"]]))
    print(json.dumps(out))


main()
