"""Memory benchmark: peak memory of LoRA vs QLoRA (4-bit NF4) vs full fine-tuning on the same model and batch.

Builds a Qwen2.5-VL-architecture model with random weights (default: hidden 1024, 8 layers, ~100M parameters; the
tiny tokenizer and processor), saves it once, then runs each mode in its own process (so each peak is its own):
load, wrap, and a few optimizer steps on one fixed batch. Reports resident memory (CPU) after the imports, after loading
and after the training steps (the model's and the optimizer's share is the difference), the peak, and on a CUDA machine
the peak CUDA memory; seconds per step and trainable parameters, as a table in bench/results/memory_bench.md.

    .venv/bin/python bench/memory_bench.py [--hidden 1024] [--layers 8] [--steps 3]
"""
import argparse, json, os, platform, resource, subprocess, sys, tempfile, time
from pathlib import Path

MODES = ["full-fp32", "lora-fp32", "qlora-4bit"]


def build(path, hidden, layers):
    "Save a random Qwen2.5-VL-architecture model of the given width and depth, with the tiny processor."
    import torch
    from transformers import AutoModelForImageTextToText
    from transformers import AutoConfig
    from qwenvl_nb.model import build_tiny_processor, _tiny_text, _tiny_vision
    processor = build_tiny_processor("qwen2_5_vl"); tok = processor.tokenizer
    heads = hidden // 64
    text = _tiny_text("qwen2_5_vl", tok) | dict(hidden_size=hidden, intermediate_size=hidden * 11 // 4, num_hidden_layers=layers,
                                                 num_attention_heads=heads, num_key_value_heads=max(1, heads // 4), head_dim=64,
                                                 initializer_range=0.02, rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[8, 12, 12]))
    ids = dict(zip(["image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"],
                   tok.convert_tokens_to_ids(["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"])))
    cfg = AutoConfig.for_model("qwen2_5_vl", text_config=text, vision_config=_tiny_vision("qwen2_5_vl") | dict(out_hidden_size=hidden), **ids)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(cfg)
    model.save_pretrained(path); processor.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def _rss_mib():
    "Resident memory of this process now, MiB (Linux)."
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def run_mode(path, mode, steps):
    "Load the model at `path` as `mode`, train `steps` steps on one batch; print a JSON line of figures."
    import torch
    from PIL import Image
    from qwenvl_nb.model import load_model, load_processor, add_lora
    from qwenvl_nb.data import record_to_conversation
    from qwenvl_nb.encode import encode_conversation, VLCollator
    torch.manual_seed(0)
    base = _rss_mib()
    model = load_model(path, quantization="4bit" if mode == "qlora-4bit" else "none", dtype="fp32")
    loaded = _rss_mib()
    if mode != "full-fp32": model = add_lora(model, r=16, alpha=32)
    processor = load_processor(path)
    conv = record_to_conversation({"image": "x.png", "question": "Describe the picture in detail. " * 8, "answer": "A red square. " * 20}, "bench:1")
    batch = VLCollator(processor.tokenizer.pad_token_id)([encode_conversation(processor, conv, [Image.new("RGB", (128, 128), (200, 0, 0))])] * 2)
    if torch.cuda.is_available():
        model.to("cuda") if mode != "qlora-4bit" else None
        batch = {k: v.to("cuda") for k, v in batch.items()}; torch.cuda.reset_peak_memory_stats()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train(); times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = model(**batch).loss; loss.backward(); opt.step(); opt.zero_grad()
        times.append(time.perf_counter() - t0)
    print(json.dumps(dict(mode=mode, peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, base_mib=base,
                          loaded_mib=loaded, trained_mib=_rss_mib(),
                          peak_cuda_mib=torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
                          s_per_step=sorted(times)[len(times) // 2], loss=loss.item(), tokens=int(batch["input_ids"].numel()),
                          trainable=sum(p.numel() for p in model.parameters() if p.requires_grad))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--run-mode", help=argparse.SUPPRESS)
    ap.add_argument("--model-path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_mode: return run_mode(args.model_path, args.run_mode, args.steps)
    with tempfile.TemporaryDirectory() as d:
        n = build(d, args.hidden, args.layers)
        rows = []
        for mode in MODES:
            r = subprocess.run([sys.executable, __file__, "--run-mode", mode, "--model-path", d, "--steps", str(args.steps)],
                               capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
            if r.returncode: sys.exit(f"{mode} failed:\n{r.stderr[-3000:]}")
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    head = (f"# Memory benchmark\n\n{time.strftime('%Y-%m-%d')}, {platform.machine()}, {gpu}, torch {torch.__version__}; "
            f"Qwen2.5-VL architecture, hidden {args.hidden}, {args.layers} layers, {n / 1e6:.1f}M parameters, random weights; "
            f"batch of 2 x {rows[0]['tokens'] // 2} tokens with a 128x128 image; AdamW; median of {args.steps} steps\n\n"
            f"command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n\n")
    table = ["| mode | trainable parameters | RSS after imports | model loaded (+) | after training steps (+) | peak RSS | peak CUDA MiB | s/step | training memory / full fp32 |",
             "|---|---|---|---|---|---|---|---|---|"]
    full = rows[0]["trained_mib"] - rows[0]["base_mib"]
    cuda = lambda r: f"{r['peak_cuda_mib']:,.0f}" if r["peak_cuda_mib"] is not None else "-"
    table += [f"| {r['mode']} | {r['trainable']:,} | {r['base_mib']:,.0f} | {r['loaded_mib'] - r['base_mib']:+,.0f} | "
              f"{r['trained_mib'] - r['base_mib']:+,.0f} | {r['peak_rss_mib']:,.0f} | {cuda(r)} | {r['s_per_step']:.2f} | "
              f"{(r['trained_mib'] - r['base_mib']) / full:.2f} |" for r in rows]
    text = head + "\n".join(table) + "\n"
    print(text)
    out = Path(__file__).parent/"results"; out.mkdir(exist_ok=True)
    (out/"memory_bench.md").write_text(text)


if __name__ == "__main__":
    main()
