"""Data-path benchmark: how fast qwenvl_nb turns JSONL + images into batches, and how much of each batch is padding.

On a generated dataset of mixed-length samples (images of 32-320 px, answers of 1-80 words, a third of them multi-turn),
it measures, for the tiny Qwen2-VL processor and model:
  - planning (read + validate + render + tokenise + image headers, once before training), samples/s;
  - the data path per epoch (decode images, resize + patchify, expand, label, collate), samples/s;
  - the model step it feeds (forward + backward + AdamW step of the tiny LoRA model) on the same batches;
  - padding efficiency (real tokens / batch tokens) and samples/s for random batches, length-grouped batches
    (transformers' LengthGroupedSampler on our planned lengths) and token-budget batches.
Prints a table with the ratios and where each step's time goes (data / forward+backward / optimizer), and writes it
to bench/results/data_bench_SIZE.md (`--size small` uses trl_bench.py's small model, where compute is real).

    .venv/bin/python bench/data_bench.py [--samples 2000] [--batch-size 8]
"""
import argparse, json, platform, random, sys, tempfile, time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from qwenvl_nb.doctor import check_data
from qwenvl_nb.encode import ConversationDataset, VLCollator, TokenBudgetBatchSampler, padding_efficiency
from qwenvl_nb.model import build_tiny, add_lora


def make_mixed_dataset(out, n, seed=0):
    "n samples with images of mixed sizes and answers of mixed length; a third multi-turn."
    rng, out = random.Random(seed), Path(out)
    (out/"images").mkdir(parents=True, exist_ok=True)
    words = "red green blue yellow circle square triangle one two three large small left right top bottom".split()
    lines = []
    for i in range(n):
        w, h = rng.randint(32, 320), rng.randint(32, 320)
        im = Image.new("RGB", (w, h), tuple(rng.randint(0, 255) for _ in range(3)))
        ImageDraw.Draw(im).ellipse([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=tuple(rng.randint(0, 255) for _ in range(3)))
        im.save(out/f"images/{i:05d}.jpg", quality=90)
        answer = " ".join(rng.choice(words) for _ in range(rng.choice([1, 2, 3, rng.randint(5, 80)])))
        if i % 3:
            lines.append({"image": f"images/{i:05d}.jpg", "question": "Describe the shapes.", "answer": answer})
        else:
            lines.append({"messages": [
                {"role": "user", "content": [{"type": "image", "image": f"images/{i:05d}.jpg"}, {"type": "text", "text": "What is it?"}]},
                {"role": "assistant", "content": answer},
                {"role": "user", "content": "And the colour?"}, {"role": "assistant", "content": rng.choice(words)}]})
    (out/"train.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    return out


def batches_for(kind, lengths, bs, seed=0):
    "Index batches for one epoch: random, length-grouped (transformers' sampler) or token budget."
    from transformers.trainer_pt_utils import LengthGroupedSampler
    g = torch.Generator().manual_seed(seed)
    if kind == "random": order = torch.randperm(len(lengths), generator=g).tolist()
    elif kind == "group_by_length": order = list(LengthGroupedSampler(bs, lengths=lengths, generator=g))
    else: return list(TokenBudgetBatchSampler(lengths, max_tokens=bs * int(sorted(lengths)[len(lengths) // 2] * 1.5), seed=seed))
    return [order[i:i + bs] for i in range(0, len(order), bs)]


def time_data(ds, collate, batches):
    t0 = time.perf_counter()
    out = [collate([ds[i] for i in b]) for b in batches]
    return time.perf_counter() - t0, out


def time_model(model, opt, built):
    "Seconds spent in forward+backward and in the optimizer over `built` batches."
    model.train()
    fb = op = 0.0
    for b in built:
        t0 = time.perf_counter(); model(**b).loss.backward()
        t1 = time.perf_counter(); opt.step(); opt.zero_grad()
        fb, op = fb + t1 - t0, op + time.perf_counter() - t1
    return fb, op


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--model-batches", type=int, default=60, help="batches of each kind pushed through the model")
    ap.add_argument("--size", default="tiny", choices=["tiny", "small"], help="tiny Qwen2-VL, or the 'small' one of trl_bench.py")
    args = ap.parse_args()
    torch.manual_seed(0); torch.set_num_threads(2)
    if args.size == "tiny": model, processor = build_tiny("qwen2_vl")
    else:
        from trl_bench import build_model
        from qwenvl_nb.model import load_model, load_processor
        path = tempfile.mkdtemp(); build_model(path, "small")
        model, processor = load_model(path), load_processor(path)
    model = add_lora(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    collate = VLCollator(processor.tokenizer.pad_token_id)
    with tempfile.TemporaryDirectory() as d:
        root = make_mixed_dataset(d, args.samples)
        t0 = time.perf_counter()
        rep = check_data("train.jsonl", root, processor)
        plan_s = time.perf_counter() - t0
        convs, plans = rep.kept()
        ds = ConversationDataset(convs, processor, plans)
        lengths = ds.lengths
        rows = []
        for kind in ["random", "group_by_length", "max_tokens_per_batch"]:
            batches = batches_for(kind, lengths, args.batch_size)
            data_s, built = time_data(ds, collate, batches)
            k = min(args.model_batches, len(built))
            time_model(model, opt, built[:3])  # warm-up
            fb, op = (t * len(built) / k for t in time_model(model, opt, built[:k]))
            model_s = fb + op
            rows.append(dict(batching=kind, batches=len(batches), padding_efficiency=padding_efficiency(batches, lengths),
                             data_samples_per_s=len(ds) / data_s, model_samples_per_s=len(ds) / model_s,
                             data_over_model=model_s / data_s, ms=[1000 * t / len(built) for t in (data_s, fb, op)],
                             data_share=data_s / (data_s + model_s)))
    head = (f"# Data path benchmark\n\n{time.strftime('%Y-%m-%d')}, {platform.machine()}, {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}; {args.samples} mixed samples (lengths {min(lengths)}-{max(lengths)} tokens, "
            f"median {sorted(lengths)[len(lengths) // 2]}), batch size {args.batch_size}, {args.size} Qwen2-VL + LoRA\n\n"
            f"command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n\n"
            f"planning (read, validate, render, tokenise, image headers; once per run): {args.samples / plan_s:,.0f} samples/s\n\n")
    table = ["| batching | batches | padding efficiency | data path samples/s | model step samples/s | data path speed / model step | "
             "ms per step: data / forward+backward / optimizer | data share of the step |", "|---|---|---|---|---|---|---|---|"]
    table += [f"| {r['batching']} | {r['batches']} | {r['padding_efficiency']:.3f} | {r['data_samples_per_s']:,.0f} | "
              f"{r['model_samples_per_s']:,.0f} | {r['data_over_model']:.1f}x | {' / '.join(f'{m:.1f}' for m in r['ms'])} | "
              f"{r['data_share']:.1%} |" for r in rows]
    base = rows[0]
    ratios = "\n".join(f"- {r['batching']} vs random: padding efficiency {r['padding_efficiency'] / base['padding_efficiency']:.2f}x, "
                       f"model samples/s {r['model_samples_per_s'] / base['model_samples_per_s']:.2f}x" for r in rows[1:])
    text = head + "\n".join(table) + "\n\n" + ratios + "\n"
    print(text)
    out = Path(__file__).parent/"results"; out.mkdir(exist_ok=True)
    (out/f"data_bench_{args.size}.md").write_text(text)


if __name__ == "__main__":
    main()
