"""Memory preflight calibration: the estimate of `qwenvl_nb.scale.estimate_memory` against measured peaks.

For the real-vocabulary model of scale_bench.py (Qwen2.5-VL architecture, hidden 512, 4 layers, 151,936-token vocabulary),
each configuration runs in its own process: LoRA r=8 on every LM projection (dropout 0.05), one sample of T tokens with a
224x224 image (64 image tokens), of which N are trained, three AdamW steps, with and without gradient checkpointing, with
the loss on trained positions only (chunks of 1,024 rows) or transformers' standard loss on every position. Measured:
on the CPU the resident high-water mark of the training steps (VmHWM, reset through /proc/self/clear_refs once the
model and LoRA are in place, so that loading's transient copies do not count) minus the resident memory just before the
model loads; on a CUDA GPU
torch.cuda.max_memory_allocated. Estimated: `estimate_memory(...).peak` (without the CUDA context and allocator slack,
which neither measurement contains). Writes bench/results/preflight_calibration.md with the error of each row.

    python bench/preflight_calibration.py [--tokens 512,2048] [--steps 3]
"""
import argparse, itertools, json, os, platform, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from scale_bench import build_model, FIXTURES  # noqa: E402


def _hwm_mib():
    "The resident high-water mark (VmHWM) since the last reset through /proc/self/clear_refs, in MiB."
    return next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")) / 1024


def _rss_mib(): return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def batch_of(path, tokens, trained):
    "One sample: 20 text tokens, a 224x224 image (64 tokens), text up to `tokens`; the last `trained` tokens trained."
    import torch
    from PIL import Image
    from transformers import AutoConfig, AutoImageProcessor
    cfg, ip = AutoConfig.from_pretrained(path), AutoImageProcessor.from_pretrained(path)
    img = dict(ip(images=[Image.new("RGB", (224, 224), (200, 30, 30))], return_tensors="pt"))
    n_img = int(img["image_grid_thw"].prod()) // 4
    g = torch.Generator().manual_seed(0)
    text = lambda n: torch.randint(100, 150000, (n,), generator=g)
    ids = torch.cat([text(20), torch.tensor([cfg.vision_start_token_id]), torch.full((n_img,), cfg.image_token_id),
                     torch.tensor([cfg.vision_end_token_id]), text(tokens - 22 - n_img)])
    labels = torch.where(torch.arange(tokens) >= tokens - trained, ids, -100)
    return dict(input_ids=ids[None], attention_mask=torch.ones(1, tokens, dtype=torch.long), labels=labels[None],
                mm_token_type_ids=(ids == cfg.image_token_id).long()[None], **img), n_img


def run(path, tokens, trained, gc, logits, steps):
    import torch
    from qwenvl_nb.model import load_model, add_lora
    from qwenvl_nb.scale import trained_loss
    torch.set_num_threads(1)  # memory does not depend on it; on a shared machine one thread is also the fastest
    batch, n_img = batch_of(path, tokens, trained)
    cuda = torch.cuda.is_available()
    base = _rss_mib()
    model = add_lora(load_model(path, dtype="bf16" if cuda else "fp32"), r=8, alpha=16, dropout=0.05, gradient_checkpointing=gc)
    if cuda: model.to("cuda"); batch = {k: v.cuda() for k, v in batch.items()}; torch.cuda.reset_peak_memory_stats()
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    if not cuda: Path("/proc/self/clear_refs").write_text("5")  # the high-water mark from here on: training, not loading's transient copies
    for _ in range(steps):
        loss = trained_loss(model, batch)[0] if logits == "trained" else model(**batch, use_cache=False).loss
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _hwm_mib() - base
    print("RESULT " + json.dumps(dict(measured_mib=peak, image_tokens=n_img, loss=loss.item())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", default="512,2048")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--child", nargs=5)
    args = ap.parse_args()
    if args.child:
        path, tokens, trained, gc, logits = args.child
        return run(path, int(tokens), int(trained), gc == "1", logits, args.steps)
    import torch, transformers
    from transformers import AutoConfig
    from qwenvl_nb.scale import estimate_memory
    cuda = torch.cuda.is_available()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        build_model(d)
        cfg = AutoConfig.from_pretrained(d)
        for T, share, gc, logits in itertools.product(map(int, args.tokens.split(",")), ("vqa", "long"), (False, True), ("trained", "full")):
            N = 8 if share == "vqa" else T // 2
            r = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", d, str(T), str(N), str(int(gc)), logits],
                               capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
            line = next((l for l in r.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None: sys.exit(r.stderr[-3000:])
            res = json.loads(line[7:])
            est = estimate_memory(cfg, T, N, res["image_tokens"], dtype="bf16" if cuda else "fp32", lora_dropout=0.05,
                                  gradient_checkpointing=gc, logits=logits)
            rows.append(dict(tokens=T, trained=N, gc=gc, logits=logits, measured=res["measured_mib"], estimated=est.peak / 2**20,
                             parts={k: v / 2**20 for k, v in est.parts.items()}))
            rows[-1]["error"] = rows[-1]["estimated"] / rows[-1]["measured"] - 1
            print(rows[-1], flush=True)
    what = "peak CUDA memory allocated" if cuda else "peak RSS of the training steps (VmHWM reset after loading) minus RSS before the model loads"
    head = (f"# Memory preflight calibration\n\n{time.strftime('%Y-%m-%d')}, {torch.cuda.get_device_name(0) if cuda else 'CPU'}, "
            f"{platform.machine()}, torch {torch.__version__}, transformers {transformers.__version__}; the scale_bench model (Qwen2.5-VL "
            f"architecture, hidden 512, 4 layers, real 151,936-token vocabulary, {'bf16' if cuda else 'fp32'}), LoRA r=8 dropout 0.05, one "
            f"sample with a 64-token image, {args.steps} AdamW steps. Measured: {what}. Estimated: `estimate_memory(...).peak`.\n\n"
            f"command: `{' '.join(['python', *sys.argv])}`\n\n")
    table = ["| tokens | trained | grad. checkpointing | logits | measured MiB | estimated MiB | error | estimate by part (MiB) |", "|---|---|---|---|---|---|---|---|"]
    table += [f"| {r['tokens']:,} | {r['trained']:,} | {'on' if r['gc'] else 'off'} | {r['logits']} | {r['measured']:,.0f} | {r['estimated']:,.0f} | "
              f"{r['error']:+.0%} | {', '.join(f'{k} {v:,.0f}' for k, v in r['parts'].items())} |" for r in rows]
    errs = [abs(r["error"]) for r in rows]
    text = head + "\n".join(table) + f"\n\nMean absolute error {statistics.mean(errs):.0%}, largest {max(errs):.0%}.\n"
    print(text)
    out = Path(__file__).parent/"results"; out.mkdir(exist_ok=True)
    (out/("preflight_calibration_cuda.md" if cuda else "preflight_calibration.md")).write_text(text)


if __name__ == "__main__":
    main()
