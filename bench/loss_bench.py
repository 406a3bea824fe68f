"""The loss alone at the real vocabulary: `qwenvl_nb.scale.linear_cross_entropy` (chunked, gradient made in the forward pass)
against PyTorch's cross-entropy on the full logits, on the same rows: seconds (CPU time of one thread) and the memory the
loss adds (peak RSS growth), for several chunk sizes. Each configuration runs in its own process.

    python bench/loss_bench.py [--rows 2048] [--hidden 512] [--vocab 151936]
"""
import argparse, json, os, platform, resource, subprocess, sys, time
from pathlib import Path


def _rss_mib(): return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(rows, hidden, vocab, chunk):
    import torch
    torch.set_num_threads(1)
    from qwenvl_nb.scale import linear_cross_entropy
    g = torch.Generator().manual_seed(0)
    h, w = torch.randn(rows, hidden, generator=g).requires_grad_(), torch.randn(vocab, hidden, generator=g) * 0.02
    t = torch.randint(0, vocab, (rows,), generator=g)
    base, times = _rss_mib(), []
    for _ in range(3):
        t0 = time.process_time()
        loss = (torch.nn.functional.cross_entropy(h @ w.T, t, reduction="sum") if chunk == 0 else linear_cross_entropy(h, w, t, chunk))
        loss.backward(); h.grad = None
        times.append(time.process_time() - t0)
    print("RESULT " + json.dumps(dict(seconds=sorted(times)[1], added_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base,
                                      loss=loss.item())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2048); ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=151936); ap.add_argument("--child", type=int)
    args = ap.parse_args()
    if args.child is not None: return child(args.rows, args.hidden, args.vocab, args.child)
    import torch
    rows = []
    for chunk in (0, 128, 256, 512, 1024, 2048):
        r = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--hidden", str(args.hidden), "--vocab", str(args.vocab),
                            "--child", str(chunk)], capture_output=True, text=True)
        line = next((l for l in r.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None: sys.exit(r.stderr[-3000:])
        rows.append(dict(chunk=chunk, **json.loads(line[7:]))); print(rows[-1], flush=True)
    ref = rows[0]
    name = lambda r: "PyTorch cross-entropy on full logits" if r["chunk"] == 0 else f"linear_cross_entropy, chunks of {r['chunk']}"
    table = "\n".join(f"| {name(r)} | {r['seconds']:.2f} | {r['seconds'] / ref['seconds']:.2f}x | {r['added_mib']:,.0f} | "
                      f"{r['added_mib'] / ref['added_mib']:.2f}x | {r['loss']:.4f} |" for r in rows)
    text = (f"# The loss alone at the real vocabulary\n\n{time.strftime('%Y-%m-%d')}, {platform.machine()}, CPU, 1 thread (machine shared, "
            f"load average {os.getloadavg()[0]:.1f}), fp32, torch {torch.__version__}; {args.rows:,} trained rows, hidden {args.hidden}, vocabulary "
            f"{args.vocab:,}; forward + backward of the summed loss, median of 3, CPU seconds; memory: peak RSS growth\n\n"
            f"command: `{' '.join(['python', *sys.argv])}`\n\n| loss | seconds | vs PyTorch | memory added MiB | vs PyTorch | loss value |\n"
            f"|---|---|---|---|---|---|\n{table}\n")
    print(text)
    (Path(__file__).parent/"results"/"loss_bench.md").write_text(text)


if __name__ == "__main__":
    main()
