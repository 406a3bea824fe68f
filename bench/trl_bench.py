"""Side by side with TRL: qwenvl_nb and TRL's SFTTrainer (vision-language path) train the same LoRA on the same work.

Same model (a "small" Qwen2-VL: random weights saved once, so both start identical), same generated dataset of mixed-size
images and mixed-length answers, same LoRA (rank 8, the language model's q/k/v/o/gate/up/down projections), batch size,
learning rate and epochs; CPU, one process; both with bf16 and gradient checkpointing off (TRL's SFTConfig turns both on by
default, which would make the comparison unfair). Each configuration runs in its own process, alternately (A B A B...),
and reports samples/s, tokens/s, peak RSS and the final training loss; ours also with --group-by-length. Writes one
bench/results/trl_bench_SIZE.md and .png per model size.

    .venv/bin/python bench/trl_bench.py [--samples 512] [--repeats 2] [--size small|tiny]
"""
import argparse, json, os, platform, random, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

SIZES = {"tiny": dict(hidden=64, layers=2, vision_depth=2, vision_width=32, image=(64, 128)),
         "small": dict(hidden=384, layers=6, vision_depth=4, vision_width=128, image=(224, 448))}
TARGETS = r".*\.language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def build_model(path, size):
    "Save a Qwen2-VL of the given size with random weights and the tiny processor."
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText
    from qwenvl_nb.model import build_tiny_processor, _tiny_text, _tiny_vision
    s, processor = SIZES[size], build_tiny_processor("qwen2_vl")
    tok = processor.tokenizer
    heads = max(2, s["hidden"] // 64)
    text = _tiny_text("qwen2_vl", tok) | dict(hidden_size=s["hidden"], intermediate_size=s["hidden"] * 3, num_hidden_layers=s["layers"],
                                               num_attention_heads=heads, num_key_value_heads=max(1, heads // 2), head_dim=s["hidden"] // heads,
                                               initializer_range=0.02)
    half = s["hidden"] // heads // 2
    text["rope_parameters"] = dict(rope_type="default", rope_theta=1e6, mrope_section=[half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8])
    vision = _tiny_vision("qwen2_vl") | dict(depth=s["vision_depth"], embed_dim=s["vision_width"], num_heads=max(2, s["vision_width"] // 32),
                                             hidden_size=s["hidden"])
    ids = dict(zip(["image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"],
                   tok.convert_tokens_to_ids(["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"])))
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(AutoConfig.for_model("qwen2_vl", text_config=text, vision_config=vision, **ids))
    processor.image_processor.size = {"shortest_edge": 56 * 56, "longest_edge": 448 * 448}
    model.save_pretrained(path); processor.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def make_dataset(out, n, size, seed=0):
    "n samples: images of mixed sizes, answers of 1 to ~60 words."
    from PIL import Image, ImageDraw
    rng, out = random.Random(seed), Path(out)
    (out/"images").mkdir(parents=True, exist_ok=True)
    lo, hi = SIZES[size]["image"]
    words = "red green blue yellow circle square triangle one two three large small left right top bottom".split()
    with open(out/"train.jsonl", "w") as f:
        for i in range(n):
            w, h = rng.randint(lo, hi), rng.randint(lo, hi)
            im = Image.new("RGB", (w, h), tuple(rng.randint(0, 255) for _ in range(3)))
            ImageDraw.Draw(im).rectangle([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=tuple(rng.randint(0, 255) for _ in range(3)))
            im.save(out/f"images/{i:04d}.png")
            answer = " ".join(rng.choice(words) for _ in range(rng.choice([1, 2, 3, rng.randint(8, 60)])))
            f.write(json.dumps({"image": f"images/{i:04d}.png", "question": "Describe the picture.", "answer": answer}) + "\n")


def run_ours(model, data, args, group):
    from qwenvl_nb.train import TrainConfig, train
    cfg = TrainConfig(model_name=model, dataset_dir=data, output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size,
                      num_train_epochs=1, learning_rate=1e-4, lora_r=8, lora_alpha=16, lora_dropout=0.0, bf16=False,
                      gradient_checkpointing=False, save_strategy="no", logging_steps=5, group_by_length=group, seed=0)
    r = train(cfg)
    return r.metrics, [h["loss"] for h in r.log_history if "loss" in h]


def trl_dataset(data):
    "The training file of `data` as TRL's conversational dataset: messages and PIL images (what SFTTrainer's VLM collator takes)."
    from datasets import Dataset
    from qwenvl_nb.data import read_conversations
    from qwenvl_nb.vision import load_image
    convs = read_conversations("train.jsonl", data)
    return Dataset.from_list([{"messages": [{"role": m["role"], "content": m["content"]} for m in c.messages],
                               "images": [load_image(p) for p in c.images]} for c in convs])


def run_trl(model, data, args):
    from peft import LoraConfig
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import SFTConfig, SFTTrainer
    ds = trl_dataset(data)
    cfg = SFTConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size, num_train_epochs=1, learning_rate=1e-4,
                    bf16=False, gradient_checkpointing=False, save_strategy="no", logging_steps=5, report_to="none", seed=0,
                    assistant_only_loss=True, max_length=None)
    trainer = SFTTrainer(model=AutoModelForImageTextToText.from_pretrained(model), args=cfg, train_dataset=ds,
                         processing_class=AutoProcessor.from_pretrained(model),
                         peft_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM"))
    out = trainer.train()
    return out.metrics, [h["loss"] for h in trainer.state.log_history if "loss" in h]


def child(args):
    "Run one configuration in this process and print its figures as JSON."
    import torch
    torch.set_num_threads(2)
    metrics, losses = run_trl(args.model, args.data, args) if args.run == "trl" else run_ours(args.model, args.data, args, args.run == "ours-grouped")
    print("RESULT " + json.dumps(dict(run=args.run, runtime=metrics["train_runtime"], samples_per_s=metrics["train_samples_per_second"],
                                      train_loss=metrics["train_loss"], losses=losses,
                                      peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--size", default="small", choices=list(SIZES))
    ap.add_argument("--run"); ap.add_argument("--model"); ap.add_argument("--data")
    args = ap.parse_args()
    if args.run: return child(args)
    runs = ["ours", "trl", "ours-grouped"]
    with tempfile.TemporaryDirectory() as d:
        n_params = build_model(f"{d}/model", args.size)
        make_dataset(f"{d}/data", args.samples, args.size)
        from qwenvl_nb.doctor import check_data
        from qwenvl_nb.model import load_processor
        tokens = sum(p.length for p in check_data("train.jsonl", f"{d}/data", load_processor(f"{d}/model")).plans)
        results = {r: [] for r in runs}
        for _ in range(args.repeats):
            for r in runs:  # alternate: A B C A B C
                p = subprocess.run([sys.executable, __file__, "--run", r, "--model", f"{d}/model", "--data", f"{d}/data",
                                    "--batch-size", str(args.batch_size), "--size", args.size],
                                   capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
                line = next((l for l in p.stdout.splitlines() if l.startswith("RESULT ")), None)
                if line is None: sys.exit(f"{r} failed:\n{p.stderr[-4000:]}")
                results[r].append(json.loads(line[7:]))
    import torch
    med = lambda r, k: statistics.median(x[k] for x in results[r])
    rows = {r: dict(samples_per_s=med(r, "samples_per_s"), tokens_per_s=tokens / med(r, "runtime"), peak_rss_mib=med(r, "peak_rss_mib"),
                    train_loss=med(r, "train_loss")) for r in runs}
    head = (f"# qwenvl_nb vs TRL SFTTrainer\n\n{time.strftime('%Y-%m-%d')}, {platform.machine()}, CPU, 2 threads, torch {torch.__version__}; "
            f"{args.size} Qwen2-VL ({n_params / 1e6:.1f}M parameters, random weights, identical for both), {args.samples} generated samples "
            f"(mixed image sizes and answer lengths, {tokens:,} tokens), LoRA r=8 on the LM projections, batch {args.batch_size}, "
            f"1 epoch, lr 1e-4, fp32, no gradient checkpointing; median of {args.repeats} alternating runs each\n\n"
            f"command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n\n")
    table = ["| run | samples/s | tokens/s | peak RSS MiB | final train loss | samples/s vs TRL | peak RSS vs TRL |", "|---|---|---|---|---|---|---|"]
    t = rows["trl"]
    table += [f"| {r} | {v['samples_per_s']:.2f} | {v['tokens_per_s']:,.0f} | {v['peak_rss_mib']:,.0f} | {v['train_loss']:.4f} | "
              f"{v['samples_per_s'] / t['samples_per_s']:.2f}x | {v['peak_rss_mib'] / t['peak_rss_mib']:.2f}x |" for r, v in rows.items()]
    loss_gap = max(abs(a - b) for a, b in zip(results["ours"][0]["losses"], results["trl"][0]["losses"]))
    text = head + "\n".join(table) + (f"\n\nLoss curves at equal settings (ours random order vs TRL, logged every 5 steps): largest difference "
                                      f"{loss_gap:.4f}.\n")
    print(text)
    out = Path(__file__).parent/"results"; out.mkdir(exist_ok=True)
    (out/f"trl_bench_{args.size}.md").write_text(text)
    from matplotlib.figure import Figure
    fig = Figure(figsize=(9, 3.2)); ax1, ax2, ax3 = fig.subplots(1, 3)
    ax1.bar(list(rows), [v["samples_per_s"] for v in rows.values()]); ax1.set_title("samples/s")
    ax2.bar(list(rows), [v["peak_rss_mib"] for v in rows.values()]); ax2.set_title("peak RSS MiB")
    for r in ("ours", "trl"): ax3.plot(results[r][0]["losses"], label=r)
    ax3.set_title("train loss (every 5 steps)"); ax3.legend()
    for ax in (ax1, ax2): ax.tick_params(axis="x", labelsize=7)
    fig.savefig(out/f"trl_bench_{args.size}.png", dpi=100, bbox_inches="tight")


if __name__ == "__main__":
    main()
