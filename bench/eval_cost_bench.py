"""The cost of evaluation in a short run: the README's Python API, 5 steps, one evaluation at step 5, then the final report
(fine-tuned and base answers). Prints, per run, the total time, `train_runtime` (which includes the evaluation at step 5),
and every call to `generate_replies` as (prompts, max_new_tokens, seconds). Run twice: the second run (another output
folder, same base model and validation data) shows the base-answer cache.

    python bench/eval_cost_bench.py [REPO_ROOT]      # PYTHONPATH=REPO_ROOT to measure that checkout's library
"""
import sys, time, tempfile, json
from pathlib import Path
import qwenvl_nb.model as M, qwenvl_nb.evaluate as E
from qwenvl_nb.train import TrainConfig, train
calls = []
real = E.generate_replies
def counting(model, processor, prompts, batch_size=8, max_new_tokens=64, *a, **k):
    t = time.time(); r = real(model, processor, prompts, batch_size, max_new_tokens, *a, **k); calls.append((len(prompts), max_new_tokens, round(time.time() - t, 1))); return r
E.generate_replies = counting
root = Path(sys.argv[1] if len(sys.argv) > 1 else "."); out = Path(tempfile.mkdtemp())/"run"
for attempt in (1, 2):  # the second run: another output folder, the same base model and validation data
    cfg = TrainConfig(model_name="tiny-qwen2.5-vl", dataset_dir=str(root/"dataset"), validation_file="validation.jsonl", output_dir=f"{out}{attempt}",
                      per_device_train_batch_size=4, learning_rate=5e-3, bf16=False, max_steps=5, eval_strategy="steps", eval_steps=5, save_strategy="no")
    calls.clear(); t = time.time(); res = train(cfg); total = time.time() - t
    print(json.dumps(dict(run=attempt, total_s=round(total, 1), train_runtime_s=round(res.metrics.get("train_runtime", 0), 1),
                          generate_calls=calls, generate_s=round(sum(c[2] for c in calls), 1))))
