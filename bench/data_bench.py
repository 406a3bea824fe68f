"""Data-path benchmark: how fast qwenvl_nb turns JSONL + images into batches, and how much of each batch is padding.

On a generated dataset of mixed-length samples (images of 32-320 px, answers of 1-80 words, a third of them multi-turn),
it measures, for the tiny Qwen2-VL processor and model (or, with `--processor PATH`, real processor files such as
../shared/fixtures/qwen2_5_vl_instruct: the real tokenizer's costs, planning and data path only):
  - planning: the whole data check (read + validate + image headers + render + tokenise + label mask, once before
    training) and planning alone (`plan_samples`), samples/s, against transformers' own `apply_chat_template(tokenize=True)` on the
    same conversations (one render and tokenisation, no label mask, no image headers), measured alternately (A B A B),
    as the machine's cores are shared: the median of each and the load average are reported;
  - the data path per epoch (decode images, resize + patchify, expand, label, collate), samples/s;
  - the model step it feeds (forward + backward + AdamW step of the tiny LoRA model) on the same batches;
  - padding efficiency (real tokens / batch tokens) and samples/s for random batches, length-grouped batches
    (transformers' LengthGroupedSampler on our planned lengths) and token-budget batches.
  - with `--garbage-mb N`: the data check of an N MB file of garbage: time, and the peak of Python's allocations.
Prints a table with the ratios and where each step's time goes (data / forward+backward / optimizer), and writes it
to bench/results/data_bench_SIZE.md (`--size small` uses trl_bench.py's small model, where compute is real; with
`--processor`, data_bench_NAME.md after the processor folder).

    .venv/bin/python bench/data_bench.py [--samples 2000] [--batch-size 8] [--processor ../shared/fixtures/qwen2_5_vl_instruct] [--garbage-mb 50]
"""
import argparse, json, os, platform, random, statistics, sys, tempfile, time, tracemalloc
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from qwenvl_nb.data import read_conversations
from qwenvl_nb.doctor import check_data
from qwenvl_nb.encode import ConversationDataset, VLCollator, TokenBudgetBatchSampler, padding_efficiency, plan_samples, chat_encoder
from qwenvl_nb.model import build_tiny, add_lora, load_processor


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


def write_garbage(path, mb, seed=0):
    "An `mb` MB file of garbage of every kind: random bytes, truncated and deeply nested JSON, huge objects, lists, long lines, a few good records."
    rng = random.Random(seed)
    with open(path, "wb") as f:
        while f.tell() < mb * 2**20:
            k = rng.random()
            if k < 0.5: f.write(rng.randbytes(rng.randint(10, 4000)).replace(b"\n", b" ") + b"\n")
            elif k < 0.6: f.write(b'{"question": "' + b"q" * rng.randint(1, 500) + b'", "answer": \n')
            elif k < 0.65: f.write(b"[" * 20_000 + b"\n")
            elif k < 0.7: f.write(json.dumps({f"k{i}": i for i in range(5000)}).encode() + b"\n")
            elif k < 0.8: f.write(json.dumps(list(range(rng.randint(1, 2000)))).encode() + b"\n")
            elif k < 0.801: f.write(b"x" * (8 * 2**20) + b"\n")
            else: f.write(json.dumps({"question": "ok?", "answer": "ok"}).encode() + b"\n")


def time_planning(processor, root, convs, repeats):
    "Medians of alternating runs: the whole data check, planning alone (`plan_samples`, as the check does it), and transformers' apply_chat_template(tokenize=True)."
    tok, runs = processor.tokenizer, {"data check": [], "plan": [], "peer": []}
    chat_encoder(processor)  # built (and probed) once per processor, as in a run
    for _ in range(repeats):
        t0 = time.perf_counter(); check_data("train.jsonl", root, processor); runs["data check"].append(len(convs) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for i in range(0, len(convs), 64): plan_samples(processor, convs[i:i + 64])
        runs["plan"].append(len(convs) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for c in convs: tok.apply_chat_template(c.messages, tokenize=True, chat_template=processor.chat_template)
        runs["peer"].append(len(convs) / (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in runs.items()}, runs


def time_garbage(root, processor, mb):
    "The data check of `mb` MB of garbage: seconds, peak Python allocations (MiB), bad records."
    write_garbage(root/"garbage.jsonl", mb)
    t0 = time.perf_counter(); tracemalloc.start()
    try: rep = check_data("garbage.jsonl", root, processor); peak = tracemalloc.get_traced_memory()[1]
    finally: tracemalloc.stop()
    return time.perf_counter() - t0, peak / 2**20, rep.n_errors, len(rep.conversations)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--model-batches", type=int, default=60, help="batches of each kind pushed through the model")
    ap.add_argument("--size", default="tiny", choices=["tiny", "small"], help="tiny Qwen2-VL, or the 'small' one of trl_bench.py")
    ap.add_argument("--processor", help="real processor files (e.g. ../shared/fixtures/qwen2_5_vl_instruct): planning and data path only")
    ap.add_argument("--repeats", type=int, default=3, help="alternating planning measurements (ours, peer, ours, ...)")
    ap.add_argument("--garbage-mb", type=int, default=0, help="also check a file of this many MB of garbage (time, peak memory)")
    args = ap.parse_args()
    torch.manual_seed(0); torch.set_num_threads(2)
    model = None
    if args.processor: processor = load_processor(args.processor)
    elif args.size == "tiny": model, processor = build_tiny("qwen2_vl")
    else:
        from trl_bench import build_model
        from qwenvl_nb.model import load_model
        path = tempfile.mkdtemp(); build_model(path, "small")
        model, processor = load_model(path), load_processor(path)
    if model is not None:
        model = add_lora(model)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    collate = VLCollator(processor.tokenizer.pad_token_id)
    with tempfile.TemporaryDirectory() as d:
        root = make_mixed_dataset(d, args.samples)
        planning, runs = time_planning(processor, root, read_conversations("train.jsonl", root), args.repeats)
        load = os.getloadavg()
        rep = check_data("train.jsonl", root, processor)
        convs, plans = rep.kept()
        garbage = time_garbage(Path(d), processor, args.garbage_mb) if args.garbage_mb else None
        if model is None: torch.set_num_threads(1)  # the data path alone runs as in a DataLoader worker: one thread
        ds = ConversationDataset(convs, processor, plans)
        lengths = ds.lengths
        rows = []
        for kind in ["random", "group_by_length", "max_tokens_per_batch"]:
            batches = batches_for(kind, lengths, args.batch_size)
            data_s, built = time_data(ds, collate, batches)
            if model is None: fb = op = model_s = float("nan")
            else:
                k = min(args.model_batches, len(built))
                time_model(model, opt, built[:3])  # warm-up
                fb, op = (t * len(built) / k for t in time_model(model, opt, built[:k]))
                model_s = fb + op
            rows.append(dict(batching=kind, batches=len(batches), padding_efficiency=padding_efficiency(batches, lengths),
                             data_samples_per_s=len(ds) / data_s, model_samples_per_s=len(ds) / model_s,
                             data_over_model=model_s / data_s, ms=[1000 * t / len(built) for t in (data_s, fb, op)],
                             data_share=data_s / (data_s + model_s)))
    import transformers, tokenizers
    who = (f"processor {args.processor} ({type(processor).__name__}, {len(processor.tokenizer):,}-token vocabulary), planning and data path only"
           if args.processor else f"{args.size} Qwen2-VL + LoRA")
    head = (f"# Data path benchmark\n\n{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores shared with other users "
            f"(load average {load[0]:.1f} at the end of the planning runs), {torch.get_num_threads()} torch thread(s) for the data path, torch {torch.__version__}, "
            f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', 'unset')}; "
            f"{args.samples} mixed samples (lengths {min(lengths)}-{max(lengths)} tokens, median {sorted(lengths)[len(lengths) // 2]}), "
            f"batch size {args.batch_size}, {who}\n\n"
            f"command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n\n"
            f"planning, once per run, median of {args.repeats} alternating runs (each: ours, then the peer):\n\n"
            f"- the whole data check (read, validate, image headers, render, tokenise, label mask): **{planning['data check']:,.0f} samples/s** "
            f"(runs: {', '.join(f'{x:,.0f}' for x in runs['data check'])})\n"
            f"- planning alone (`plan_samples`, 64 at a time as the check does: image headers, render, tokenise, label mask): "
            f"{planning['plan']:,.0f} samples/s (runs: {', '.join(f'{x:,.0f}' for x in runs['plan'])})\n"
            f"- peer, transformers' `apply_chat_template(tokenize=True)` (one render and tokenisation; no label mask, no images): "
            f"{planning['peer']:,.0f} samples/s (runs: {', '.join(f'{x:,.0f}' for x in runs['peer'])}); ours / peer: "
            f"{planning['plan'] / planning['peer']:.2f}x\n\n")
    if garbage:
        secs, peak, bad, good = garbage
        head += (f"garbage: the data check of a {args.garbage_mb} MB file of garbage (random bytes, truncated and deeply nested JSON, objects with "
                 f"5,000 keys, lists, 8 MB lines): {secs:.1f} s ({args.garbage_mb / secs:.1f} MB/s) with tracemalloc on, {bad:,} bad records "
                 f"({min(bad, 1000):,} listed) and {good:,} good, **peak {peak:.1f} MiB** of Python allocations\n\n")
    if model is None:  # the data path alone
        table = ["| batching | batches | padding efficiency | data path samples/s | ms per batch |", "|---|---|---|---|---|"]
        table += [f"| {r['batching']} | {r['batches']} | {r['padding_efficiency']:.3f} | {r['data_samples_per_s']:,.0f} | {r['ms'][0]:.1f} |" for r in rows]
        ratios = "\n".join(f"- {r['batching']} vs random: padding efficiency {r['padding_efficiency'] / rows[0]['padding_efficiency']:.2f}x" for r in rows[1:])
    else:
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
    name = Path(args.processor).name if args.processor else args.size
    (out/f"data_bench_{name}.md").write_text(text)


if __name__ == "__main__":
    main()
