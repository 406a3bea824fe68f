"""GPU benchmark at real model shapes: LoRA (bf16) and QLoRA (4-bit NF4) training throughput, MFU and peak memory.

Builds Qwen2-VL-2B, Qwen2.5-VL-7B and Qwen3-VL-8B shapes from their published configurations with random weights (no
download), saves each once in bf16 (QLoRA loads it 4-bit through bitsandbytes, as a user's checkpoint would be), and times
a few optimizer steps on samples of ~1-2k tokens whose image fills the 1280*28*28-pixel budget, for: LoRA bf16 and QLoRA,
with and without gradient checkpointing, sdpa and (where installed) flash-attention-2, and for the scale chapter's paths:
transformers' standard loss (logits at every position) against logits at trained positions only with the chunked loss,
Liger's / cut-cross-entropy's fused kernels where installed (each checked against the torch loss first: `check_loss_backend`),
and 4 samples packed into one row (per-sample M-RoPE positions; the flash-attention varlen kernel on flash_attention_2, a
block-diagonal mask on sdpa) against 4 samples padded into a batch. Reports tokens/s, MFU (6 x language-model parameters x
tokens / time / the GPU's peak dense bf16 FLOP/s) and peak CUDA memory, as bench/results/gpu_bench.md. One run stays under
~8 minutes on one GPU.

    .venv/bin/python bench/gpu_bench.py [--shapes qwen2-vl-2b,qwen2.5-vl-7b,qwen3-vl-8b] [--steps 4]
    .venv/bin/python bench/gpu_bench.py --shapes tiny --steps 2      # the CPU check of this script
"""
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

# Published shapes (the models' config.json files); the tiny one runs on the CPU to test this script.
SHAPES = {
    "qwen2-vl-2b": ("qwen2_vl", dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                                     vocab_size=151936, tie_word_embeddings=True, rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[16, 24, 24])),
                    dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4, patch_size=14)),
    "qwen2.5-vl-7b": ("qwen2_5_vl", dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                                         vocab_size=152064, rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[16, 24, 24])),
                      dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584, window_size=112,
                           fullatt_block_indexes=[7, 15, 23, 31], patch_size=14)),
    "qwen3-vl-8b": ("qwen3_vl", dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                                     vocab_size=151936, rope_parameters=dict(rope_type="default", rope_theta=5e6, mrope_section=[24, 20, 20], mrope_interleaved=True)),
                    dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096, patch_size=16,
                         num_position_embeddings=2304, deepstack_visual_indexes=[8, 16, 24])),
    "tiny": ("qwen2_vl", None, None),
}
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12, "L4": 121e12, "A6000": 155e12}  # dense


def build(shape, path):
    "Save `shape` with random bf16 weights (on the GPU when there is one) and a processor whose ids fit its vocabulary."
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText
    from qwenvl_nb.model import build_tiny_processor, tiny_config, _tiny_text
    family, text, vision = SHAPES[shape]
    processor = build_tiny_processor(family)
    if text is None: cfg = tiny_config(family, processor.tokenizer)
    else:
        tok = processor.tokenizer  # tiny token ids lie inside the real vocabulary; the special ids are the tokenizer's own
        ids = dict(zip(["image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"],
                       tok.convert_tokens_to_ids(["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"])))
        text = text | dict(bos_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        cfg = AutoConfig.for_model(family, text_config=text, vision_config=vision, **ids)
        processor.image_processor.size = {"shortest_edge": 56 * 56, "longest_edge": 1280 * 28 * 28}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(cfg, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    model.save_pretrained(path); processor.save_pretrained(path)
    return sum(p.numel() for n, p in model.named_parameters() if "language_model" in n)


def batches(processor, model, grouped, packed, n=8, tokens=2048, per_batch=1):
    "Batches of `per_batch` samples of mixed lengths (an image at the full budget plus text): padded, or packed into one row."
    import random
    from PIL import Image
    from qwenvl_nb.data import record_to_conversation
    from qwenvl_nb.encode import encode_conversation, VLCollator
    from qwenvl_nb.scale import PackingCollator, RopeIndex
    rng, side = random.Random(0), int((processor.image_processor.size["longest_edge"]) ** 0.5)
    samples = []
    for i in range(n * per_batch):
        words = " ".join(["red square"] * rng.randint(tokens // 16, tokens // 4))
        conv = record_to_conversation({"image": "x.png", "question": "Describe the picture.", "answer": words}, f"bench:{i}")
        samples.append(encode_conversation(processor, conv, [Image.new("RGB", (side, side), (200, 0, 0))]))
    if grouped: samples.sort(key=lambda s: len(s["input_ids"]))
    collate = PackingCollator(RopeIndex(model)) if packed else VLCollator(processor.tokenizer.pad_token_id)
    return [collate(samples[k:k + per_batch]) for k in range(0, len(samples), per_batch)]


def run(path, quant, gc, attn, grouped, steps, loss="trained", packed=False, per_batch=1):
    "Time `steps` optimizer steps of one configuration; print a JSON line."
    import torch
    from qwenvl_nb.model import load_model, load_processor, add_lora
    from qwenvl_nb.scale import trained_loss, check_loss_backend
    cuda = torch.cuda.is_available()
    backend = loss if loss in ("liger", "cce") else "torch"
    check = check_loss_backend(backend, "cuda") if backend != "torch" else None  # a kernel that disagrees with torch is not timed
    model = load_model(path, dtype="bf16" if cuda else "fp32", quantization=quant, attn_implementation=attn)
    model = add_lora(model, r=16, alpha=32, gradient_checkpointing=gc)
    if cuda and quant == "none": model.to("cuda")
    processor, device = load_processor(path), next(model.parameters()).device
    data = batches(processor, model, grouped, packed, n=steps + 1, per_batch=per_batch)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    if cuda: torch.cuda.reset_peak_memory_stats()
    t0, toks = None, 0
    for i, b in enumerate(data):
        b = {k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}
        if i == 1:  # the first step warms up (allocator, kernels)
            if cuda: torch.cuda.synchronize()
            t0 = time.perf_counter()
        out = model(**b, use_cache=False).loss if loss == "standard" else trained_loss(model, b, backend=backend)[0]
        out.backward(); opt.step(); opt.zero_grad()
        if i >= 1: toks += int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].numel()
    if cuda: torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    print("RESULT " + json.dumps(dict(tokens_per_s=toks / secs, peak_cuda_gib=torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
                                      backend_diff=check)))


# (quantisation, checkpointing, attention, grouped, loss, packed, samples per batch); "fa" stands for flash_attention_2 where installed
COMBOS = [("none", True, "sdpa", False, "standard", False, 1), ("none", True, "sdpa", False, "trained", False, 1),
          ("none", False, "sdpa", False, "trained", False, 1), ("none", True, "sdpa", True, "trained", False, 1),
          ("none", True, "fa", False, "trained", False, 1), ("none", True, "liger", False, "liger", False, 1),
          ("none", True, "cce", False, "cce", False, 1),
          ("none", True, "sdpa", False, "trained", False, 4), ("none", True, "sdpa", False, "trained", True, 4),
          ("none", True, "fa", False, "trained", False, 4), ("none", True, "fa", False, "trained", True, 4),
          ("4bit", True, "sdpa", False, "standard", False, 1), ("4bit", True, "sdpa", False, "trained", False, 1),
          ("4bit", True, "fa", False, "trained", True, 4)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="qwen2-vl-2b,qwen2.5-vl-7b,qwen3-vl-8b")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--child", nargs=9)
    args = ap.parse_args()
    if args.child:
        path, quant, gc, attn, grouped, steps, loss, packed, per_batch = args.child
        return run(path, quant, gc == "1", attn, grouped == "1", int(steps), loss, packed == "1", int(per_batch))
    import importlib.util
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    peak = next((v for k, v in PEAK_BF16.items() if k in gpu), None)
    fa = importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()
    have = dict(liger=importlib.util.find_spec("liger_kernel") is not None and torch.cuda.is_available(),
                cce=importlib.util.find_spec("cut_cross_entropy") is not None and torch.cuda.is_available())
    rows = []
    for shape in args.shapes.split(","):
        with tempfile.TemporaryDirectory() as d:
            n_lm = build(shape, d)
            for q, gc, a, g, loss, packed, per_batch in COMBOS:
                if a in have:  # a loss kernel row: sdpa attention, the kernel for the loss
                    if not have[a]: continue
                    a = "sdpa"
                if a == "fa":
                    if not fa: continue
                    a = "flash_attention_2"
                r = subprocess.run([sys.executable, __file__, "--child", d, q, str(int(gc)), a, str(int(g)), str(args.steps), loss,
                                    str(int(packed)), str(per_batch)], capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
                line = next((l for l in r.stdout.splitlines() if l.startswith("RESULT ")), None)
                res = json.loads(line[7:]) if line else dict(tokens_per_s=None, peak_cuda_gib=None, error=(r.stderr.strip().splitlines() or ["?"])[-1][:160])
                mfu = 6 * n_lm * res["tokens_per_s"] / peak if peak and res["tokens_per_s"] else None
                rows.append(dict(shape=shape, lm_params=n_lm, quant="QLoRA 4-bit" if q == "4bit" else "LoRA bf16", gc=gc, attn=a,
                                 grouped=g, loss=loss, packed=packed, per_batch=per_batch, mfu=mfu, **res))
                print(rows[-1], flush=True)
    head = (f"# GPU benchmark\n\n{time.strftime('%Y-%m-%d')}, {gpu}, {platform.machine()}, torch {torch.__version__}; random weights at the "
            f"published shapes; samples of an image at 1280x28x28 pixels plus up to ~2k text tokens, 1 per batch or 4 (padded, or packed into "
            f"one row); LoRA r=16 on the LM projections; AdamW; {args.steps} timed steps after one warm-up; loss: `standard` = transformers' "
            f"(logits at every position), `trained` = logits at trained positions only, chunked (qwenvl_nb.scale), `liger`/`cce` = their fused "
            f"kernels after `check_loss_backend`; MFU = 6 x LM parameters x tokens/s / peak dense bf16 FLOP/s\n\n"
            f"command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n\n")
    table = ["| shape | mode | grad. ckpt | attention | loss | batch | tokens/s | MFU | peak CUDA GiB |", "|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v, f: format(v, f) if v is not None else "-"
    table += [f"| {r['shape']} | {r['quant']} | {'on' if r['gc'] else 'off'} | {r['attn']} | {r['loss']} | "
              f"{r['per_batch']} {'packed' if r['packed'] else 'padded'}{', grouped' if r['grouped'] else ''} | "
              f"{fmt(r['tokens_per_s'], ',.0f')} | {fmt(r['mfu'], '.1%')} | {fmt(r['peak_cuda_gib'], '.1f')} |"
              + (f" {r['error']}" if r.get("error") else "") for r in rows]
    text = head + "\n".join(table) + "\n"
    print(text)
    out = Path(__file__).parent/"results"; out.mkdir(exist_ok=True)
    (out/("gpu_bench.md" if torch.cuda.is_available() else "gpu_bench_cpu_check.md")).write_text(text)


if __name__ == "__main__":
    main()
