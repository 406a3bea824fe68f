"""Real-vocabulary benchmark: qwenvl_nb and TRL's SFTTrainer on identical work in the regime users train in.

The model is a small Qwen2.5-VL (hidden 512, 4 layers, vision depth 4; random weights saved once, identical for both)
that carries the REAL Qwen2.5-VL processor from ../shared/fixtures: the real tokenizer and chat template, the real image
processor, and the real 151,936-token vocabulary (Qwen2.5-VL-3B's; tied embeddings). Workloads:

  vqa   short answers (1-3 words) to questions about 200-400 px images (~50-200 image tokens): most positions untrained
  long  answers of 1,000-2,000 tokens about 200-300 px images (captions / OCR-like transcripts)

Both tools train the same LoRA (rank 8, every language-model projection, no dropout) with the same batch size, learning
rate, seed and data, on the CPU, one process, fp32, gradient checkpointing off (TRL's defaults turn bf16 and
checkpointing on; both are set the same way here). Each configuration runs in its own process, alternately
(A B C A B C ...), and reports samples/s and tokens/s (from the Trainer's train_runtime), peak RSS, the per-step losses,
and for ours the share of the run spent in the data path. Medians over the repeats; ratios against TRL. Writes
bench/results/scale_bench_WORKLOAD.md.

    python bench/scale_bench.py --workload vqa  [--samples 128] [--batch-size 4] [--repeats 3]
    python bench/scale_bench.py --workload long [--samples 16] [--batch-size 2] [--repeats 3]
"""
import argparse, json, os, platform, random, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent.parent/"shared"/"fixtures"/"qwen2_5_vl_instruct"
VOCAB = 151936
TARGETS = r".*\.language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
RUNS = {  # name: TrainConfig settings on top of the common ones (None: TRL)
    "ours": {},
    "ours-packed": dict(packing=True),
    "ours-standard-loss": dict(trained_logits_only=False),
    "trl": None,
}
WORDS = ("the a red green blue small large circle square triangle left right top bottom near far above below line text "
         "page title figure table row column number one two three four five six seven eight nine ten and of in on with "
         "shows contains reads written label image picture photo document chart value total date name").split()


def build_model(path, hidden=512, layers=4):
    "Save a small random Qwen2.5-VL with the real vocabulary and the real processor files."
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
    processor = AutoProcessor.from_pretrained(FIXTURES)
    real = AutoConfig.from_pretrained(FIXTURES)
    heads = hidden // 64
    text = dict(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=hidden * 11 // 4, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=max(1, heads // 4), head_dim=64, max_position_embeddings=32768,
                tie_word_embeddings=True, initializer_range=0.02, rms_norm_eps=1e-6,
                bos_token_id=151643, eos_token_id=151645, pad_token_id=151643,
                rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[8, 12, 12]))
    vision = dict(depth=4, hidden_size=256, intermediate_size=512, num_heads=4, out_hidden_size=hidden, patch_size=14,
                  window_size=112, fullatt_block_indexes=[3], spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2)
    ids = {k: getattr(real, k) for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")}
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(AutoConfig.for_model("qwen2_5_vl", text_config=text, vision_config=vision,
                                                                         tie_word_embeddings=True, **ids))
    model.save_pretrained(path); processor.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def make_dataset(out, n, workload, seed=0):
    "n samples of the workload: images of mixed sizes, short or long answers."
    from PIL import Image, ImageDraw
    rng, out = random.Random(seed), Path(out)
    (out/"images").mkdir(parents=True, exist_ok=True)
    lo, hi = (200, 400) if workload == "vqa" else (200, 300)
    questions = ["What colour is the shape?", "How many shapes are there?", "Where is the square?", "What is written here?"]
    with open(out/"train.jsonl", "w") as f:
        for i in range(n):
            w, h = rng.randint(lo, hi), rng.randint(lo, hi)
            im = Image.new("RGB", (w, h), tuple(rng.randint(0, 255) for _ in range(3)))
            ImageDraw.Draw(im).rectangle([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=tuple(rng.randint(0, 255) for _ in range(3)))
            im.save(out/f"images/{i:04d}.png")
            if workload == "vqa": q, a = rng.choice(questions), " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
            else: q, a = "Transcribe and describe the document in full.", " ".join(rng.choice(WORDS) for _ in range(rng.randint(1000, 2000)))
            f.write(json.dumps({"image": f"images/{i:04d}.png", "question": q, "answer": a}) + "\n")


def run_ours(model, data, args, extra):
    from qwenvl_nb.config import TrainConfig
    from qwenvl_nb.train import train
    import qwenvl_nb.encode as enc, qwenvl_nb.scale as sc
    spent = [0.0]  # the data path inside the run: loading + preprocessing samples and collating batches (main process)
    def timed(f):
        def g(*a, **k):
            t0 = time.perf_counter(); r = f(*a, **k); spent[0] += time.perf_counter() - t0; return r
        return g
    for cls, name in ((enc.ConversationDataset, "__getitem__"), (enc.VLCollator, "__call__"), (sc.PackingCollator, "__call__")):
        setattr(cls, name, timed(getattr(cls, name)))
    cfg = TrainConfig(model_name=model, dataset_dir=data, output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size,
                      num_train_epochs=1, learning_rate=1e-4, lora_r=8, lora_alpha=16, lora_dropout=0.0, bf16=False,
                      gradient_checkpointing=False, save_strategy="no", eval_strategy="no", logging_steps=1, seed=0,
                      final_generation=False, **extra)
    r = train(cfg)
    return r.metrics, [h["loss"] for h in r.log_history if "loss" in h], spent[0]


def run_trl(model, data, args):
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForImageTextToText, AutoProcessor, set_seed
    from trl import SFTConfig, SFTTrainer
    sys.path.insert(0, str(Path(__file__).parent))
    from trl_bench import trl_dataset  # the same conversion of our records into TRL's dataset
    ds = trl_dataset(data)
    cfg = SFTConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size, num_train_epochs=1, learning_rate=1e-4,
                    bf16=False, gradient_checkpointing=False, save_strategy="no", logging_steps=1, report_to="none", seed=0,
                    assistant_only_loss=True, max_length=None)
    set_seed(0)
    trainer = SFTTrainer(model=AutoModelForImageTextToText.from_pretrained(model), args=cfg, train_dataset=ds,
                         processing_class=AutoProcessor.from_pretrained(model),
                         peft_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM"))
    im_end, collate = trainer.processing_class.tokenizer.convert_tokens_to_ids("<|im_end|>"), trainer.data_collator
    def same_labels(examples):  # TRL's assistant mask also trains the newline after <|im_end|>; ours stops at <|im_end|>
        b = collate(examples)
        after_end = torch.zeros_like(b["labels"], dtype=torch.bool)
        after_end[:, 1:] = b["input_ids"][:, :-1] == im_end
        b["labels"][after_end] = -100
        return b
    trainer.data_collator = same_labels
    out = trainer.train()
    return out.metrics, [h["loss"] for h in trainer.state.log_history if "loss" in h], None


def _cpu_s(): return sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # user + system seconds of every thread


def _status_mib(field):
    "A /proc/self/status memory field (VmRSS, VmHWM) in MiB."
    return next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":")) / 1024


def child(args):
    "Run one configuration in this process and print its figures as JSON."
    import torch, transformers
    torch.set_num_threads(args.threads)
    cpu, train_loop = [0.0], transformers.Trainer.train
    train_mem = [0.0]
    def timed(self, *a, **k):  # CPU seconds of the training loop alone: a measure that other work on the machine barely moves
        Path("/proc/self/clear_refs").write_text("5")  # the resident high-water mark from here: training, not loading
        start = _status_mib("VmRSS")
        t0 = _cpu_s(); out = train_loop(self, *a, **k); cpu[0] = _cpu_s() - t0
        train_mem[0] = _status_mib("VmHWM") - start
        return out
    transformers.Trainer.train = timed
    extra = RUNS[args.run]
    if extra is None: import trl, datasets  # noqa: F401  (what each tool imports, before any model or data: the shared baseline)
    else: import qwenvl_nb.train  # noqa: F401
    imports_mib = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    metrics, losses, data_s = run_trl(args.model, args.data, args) if extra is None else run_ours(args.model, args.data, args, extra)
    print("RESULT " + json.dumps(dict(run=args.run, runtime=metrics["train_runtime"], samples_per_s=metrics["train_samples_per_second"],
                                      cpu_s=cpu[0], train_loss=metrics["train_loss"], losses=losses, data_s=data_s,
                                      imports_mib=imports_mib, train_growth_mib=train_mem[0],
                                      peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="vqa", choices=["vqa", "long"])
    ap.add_argument("--tag", default="", help="appended to the results file's name")
    ap.add_argument("--samples", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (1: on a shared machine a second thread waits for a busy core)")
    ap.add_argument("--runs", default="ours,ours-packed,trl", help=f"comma-separated, of {', '.join(RUNS)}")
    ap.add_argument("--run"); ap.add_argument("--model"); ap.add_argument("--data")
    args = ap.parse_args()
    args.samples = args.samples or (128 if args.workload == "vqa" else 16)
    args.batch_size = args.batch_size or (4 if args.workload == "vqa" else 2)
    if args.run: return child(args)
    runs = args.runs.split(",")
    with tempfile.TemporaryDirectory() as d:
        n_params = build_model(f"{d}/model")
        make_dataset(f"{d}/data", args.samples, args.workload)
        from qwenvl_nb.doctor import check_data
        from qwenvl_nb.model import load_processor
        plans = check_data("train.jsonl", f"{d}/data", load_processor(f"{d}/model")).plans
        tokens, trained = sum(p.length for p in plans), sum(e - s for p in plans for s, e in p.spans)
        results, loads = {r: [] for r in runs}, []
        for _ in range(args.repeats):
            for r in runs:  # alternate: A B C A B C
                loads.append(os.getloadavg()[0])
                p = subprocess.run([sys.executable, __file__, "--run", r, "--model", f"{d}/model", "--data", f"{d}/data",
                                    "--workload", args.workload, "--samples", str(args.samples), "--batch-size", str(args.batch_size),
                                    "--threads", str(args.threads)],
                                   capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
                line = next((l for l in p.stdout.splitlines() if l.startswith("RESULT ")), None)
                if line is None: sys.exit(f"{r} failed:\n{p.stderr[-4000:]}")
                results[r].append(json.loads(line[7:]))
                print(r, {k: v for k, v in results[r][-1].items() if k != "losses"}, flush=True)
    import torch, transformers, peft, trl
    med = lambda r, k: statistics.median(x[k] for x in results[r])
    rows = {r: dict(samples_per_s=med(r, "samples_per_s"), tokens_per_s=tokens / med(r, "runtime"), peak_rss_mib=med(r, "peak_rss_mib"),
                    samples_per_cpu_s=args.samples / med(r, "cpu_s"), above_imports_mib=med(r, "peak_rss_mib") - med(r, "imports_mib"),
                    train_growth_mib=med(r, "train_growth_mib"),
                    train_loss=med(r, "train_loss"),
                    data=statistics.median(x["data_s"] / x["runtime"] for x in results[r]) if results[r][0]["data_s"] is not None else None)
            for r in runs}
    t = rows["trl"]
    what = ("short answers (1-3 words) about 200-400 px images" if args.workload == "vqa" else "answers of 1,000-2,000 tokens about 200-300 px images")
    head = (f"# Real vocabulary: qwenvl_nb vs TRL SFTTrainer, {args.workload}\n\n"
            f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores shared with other work (load average during "
            f"the runs {min(loads):.1f}-{max(loads):.1f}), CPU, {args.threads} threads, fp32; torch {torch.__version__}, transformers "
            f"{transformers.__version__}, peft {peft.__version__}, TRL {trl.__version__}\n\n"
            f"Model: Qwen2.5-VL architecture, hidden 512, 4 layers, vision depth 4, **real vocabulary {VOCAB:,}** (tied), {n_params / 1e6:.1f}M "
            f"parameters, random weights identical for both, the real Qwen2.5-VL processor (tokenizer, chat template, image processor). "
            f"Work: {args.samples} samples, {what}: {tokens:,} tokens of which {trained:,} trained ({trained / tokens:.1%}); batch "
            f"{args.batch_size}, 1 epoch, LoRA r=8 on every LM projection, no dropout, lr 1e-4, no gradient checkpointing. "
            f"Median of {args.repeats} alternating runs each.\n\ncommand: `{' '.join(['python', *sys.argv])}`\n\n")
    table = ["| run | samples/s | tokens/s | samples per CPU-second | peak RSS MiB | of which above the imports | train loss | samples/s vs TRL | "
             "per CPU-second vs TRL | peak RSS vs TRL | above the imports vs TRL | training's own memory MiB | training's own memory vs TRL | data path share of the run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    table += [f"| {r} | {v['samples_per_s']:.3f} | {v['tokens_per_s']:,.0f} | {v['samples_per_cpu_s']:.3f} | {v['peak_rss_mib']:,.0f} | "
              f"{v['above_imports_mib']:,.0f} | {v['train_loss']:.4f} | {v['samples_per_s'] / t['samples_per_s']:.2f}x | "
              f"{v['samples_per_cpu_s'] / t['samples_per_cpu_s']:.2f}x | {v['peak_rss_mib'] / t['peak_rss_mib']:.2f}x | "
              f"{v['above_imports_mib'] / t['above_imports_mib']:.2f}x | {v['train_growth_mib']:,.0f} | {v['train_growth_mib'] / t['train_growth_mib']:.2f}x | {'-' if v['data'] is None else format(v['data'], '.1%')} |" for r, v in rows.items()]
    runs_line = ("\n\nTraining's own memory: the resident high-water mark during `Trainer.train` (VmHWM, reset through "
                 "/proc/self/clear_refs as training starts) minus the resident memory at that moment, so the weights, the "
                 "libraries and loading's transient copies, the same for both tools, are left out.")
    runs_line += "\n\nEvery run (wall seconds of the training loop / its CPU seconds):\n\n" + "\n".join(
        f"- {r}: " + ", ".join(f"{x['runtime']:.0f} s / {x['cpu_s']:.0f} s" for x in results[r]) for r in runs)
    gaps = {r: max(abs(a - b) for a, b in zip(results[r][0]["losses"], results["trl"][0]["losses"])) for r in runs if r != "trl"}
    text = head + "\n".join(table) + "\n\nLargest difference of the per-step training loss from TRL's (same data order, same initial adapter): " + \
        ", ".join(f"{r} {g:.2e}" for r, g in gaps.items()) + runs_line + "\n"
    print(text)
    out = Path(__file__).parent/"results"; out.mkdir(exist_ok=True)
    (out/f"scale_bench_{args.workload}{args.tag}.md").write_text(text)


if __name__ == "__main__":
    main()
