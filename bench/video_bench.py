"""Video data-path benchmark: what a video sample costs before training (planning from headers) and per epoch (decode,
sample, resize, patchify, tokens), against Qwen's own pipeline (qwen-vl-utils `fetch_video` + the processor's `__call__`).

On N generated clips (PyAV's MPEG-4 encoder, `--seconds` s at `--fps`, `--size` pixels, a ball crossing a changing
background), with the tiny Qwen2.5-VL processor or, with `--processor PATH`, real processor files such as
../shared/fixtures/qwen2_5_vl_instruct (the real tokenizer), at the default video budget (2 fps, 128-768 tokens a frame):
  - planning: the whole data check (`check_data`: read, validate, container headers, frame sampling, sizes, tokens,
    render, tokenise, label mask), videos/s; no frame is decoded;
  - the data path: `encode_conversation` (decode the sampled frames only, resize as qwen-vl-utils, video processor,
    expand, label) against qwen-vl-utils' `fetch_video` (its reader decodes every frame: torchvision's `read_video`,
    which torchvision 0.29 no longer has, is given PyAV's frames, as in the tests) + the processor's own `__call__`
    on the same conversations, measured alternately (A B A B: the cores are shared), the median of each;
  - the outputs are checked equal (input_ids, pixel_values_videos) on the first sample.
Writes bench/results/video_bench_NAME.md.

    .venv/bin/python bench/video_bench.py [--videos 24] [--seconds 4] [--fps 24] [--size 320x240] [--processor ../shared/fixtures/qwen2_5_vl_instruct]
"""
import argparse, json, os, platform, statistics, sys, tempfile, time, types
from pathlib import Path

import av, torch
import qwen_vl_utils.vision_process as qvu

from qwenvl_nb.data import read_conversations
from qwenvl_nb.vision import ball_frames, write_video, plan_video
from qwenvl_nb.encode import encode_conversation, build_tiny_processor
from qwenvl_nb.doctor import check_data


def pyav_read_video(path, start_pts=0.0, end_pts=None, pts_unit="sec", output_format="TCHW"):
    "torchvision's former `read_video`, by PyAV: every frame, and the stream's average rate."
    with av.open(path) as c:
        s = c.streams.video[0]; s.thread_type = "AUTO"
        frames = [torch.from_numpy(f.to_ndarray(format="rgb24")) for f in c.decode(s)]
    return torch.stack(frames).permute(0, 3, 1, 2), None, {"video_fps": float(s.average_rate)}


def make_clips(out, n, seconds, fps, size):
    "n clips and a JSONL of seed records asking about them."
    out = Path(out); (out/"clips").mkdir(parents=True, exist_ok=True)
    frames = ball_frames(int(seconds * fps), size)
    for i in range(n): write_video(out/f"clips/{i:04d}.mp4", frames[i % 7:] + frames[:i % 7], fps=fps)
    (out/"train.jsonl").write_text("".join(json.dumps({"video": f"clips/{i:04d}.mp4", "question": "Which way does the ball move?",
                                                       "answer": "right"}) + "\n" for i in range(n)))
    return out


def qwen_pipeline(p, conv):
    "Qwen's published pipeline for one sample: qwen-vl-utils reads the video, the processor's own __call__ does the rest."
    frames, meta = qvu.fetch_video({"video": str(conv.videos[0].src)}, image_patch_size=p.video_processor.patch_size, return_video_metadata=True)
    return p(text=[p.apply_chat_template(conv.messages, tokenize=False)], videos=[frames], video_metadata=[meta],
             videos_kwargs=dict(do_sample_frames=False, do_resize=False, cap_pixels_per_frame=False), return_tensors="pt")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=24); ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--fps", type=int, default=24); ap.add_argument("--size", default="320x240")
    ap.add_argument("--processor", default=None); ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    size = tuple(int(x) for x in a.size.split("x"))
    qvu.io, qvu.get_video_reader_backend = types.SimpleNamespace(read_video=pyav_read_video), lambda: "torchvision"
    if a.processor:
        from transformers import AutoProcessor
        p, name = AutoProcessor.from_pretrained(a.processor), Path(a.processor).name
    else: p, name = build_tiny_processor("qwen2_5_vl"), "tiny"
    tmp = make_clips(tempfile.mkdtemp(), a.videos, a.seconds, a.fps, size)

    t = time.perf_counter(); rep = check_data("train.jsonl", tmp, p); t_check = time.perf_counter() - t
    assert not rep.errors, rep.errors[:3]
    convs = read_conversations("train.jsonl", tmp)
    t = time.perf_counter(); [plan_video(p, c.videos[0]) for c in convs]; t_headers = time.perf_counter() - t
    vp = rep.plans[0].videos[0]

    ours, ref = encode_conversation(p, convs[0], plan=rep.plans[0]), qwen_pipeline(p, convs[0])
    same = ours["input_ids"].tolist() == ref["input_ids"][0].tolist() and torch.equal(ours["pixel_values_videos"], ref["pixel_values_videos"])
    assert same, "the two pipelines disagree"
    times = {"ours": [], "qwen": []}
    for _ in range(a.rounds):  # A B A B
        t = time.perf_counter()
        for c, pl in zip(convs, rep.plans): encode_conversation(p, c, plan=pl)
        times["ours"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for c in convs: qwen_pipeline(p, c)
        times["qwen"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    import transformers
    rows = [
        f"# Video data path: {name}",
        "",
        f"`{' '.join([Path(sys.executable).name, *sys.argv])}`  ",
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()} with {os.cpu_count()} cores (shared, load average {os.getloadavg()[0]:.1f}), "
        f"torch {torch.__version__}, transformers {transformers.__version__}, PyAV {av.__version__}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        "",
        f"{a.videos} clips of {a.seconds:g} s at {a.fps} fps, {size[0]}x{size[1]} (MPEG-4); default video budget: "
        f"{len(vp.indices)} frames sampled of {vp.total_frames}, {vp.size[1]}x{vp.size[0]} each, {vp.tokens} video tokens, "
        f"sample length {rep.plans[0].length} tokens.",
        "",
        "| step | time | per video | videos/s |",
        "|---|---:|---:|---:|",
        f"| data check (headers, plans, no decoding) | {t_check:.2f} s | {1000 * t_check / a.videos:.1f} ms | {a.videos / t_check:,.0f} |",
        f"| of which container headers + frame plan (`plan_video`) | {t_headers:.2f} s | {1000 * t_headers / a.videos:.1f} ms | {a.videos / t_headers:,.0f} |",
        f"| data path, ours (`encode_conversation`: sampled frames decoded) | {med['ours']:.2f} s | {1000 * med['ours'] / a.videos:.0f} ms | {a.videos / med['ours']:,.1f} |",
        f"| data path, qwen-vl-utils `fetch_video` + processor `__call__` | {med['qwen']:.2f} s | {1000 * med['qwen'] / a.videos:.0f} ms | {a.videos / med['qwen']:,.1f} |",
        "",
        f"Ours / Qwen's pipeline: {med['qwen'] / med['ours']:.2f}x the throughput (medians of {a.rounds} alternating rounds: "
        f"ours {', '.join(f'{x:.2f}' for x in times['ours'])} s; Qwen's {', '.join(f'{x:.2f}' for x in times['qwen'])} s). "
        f"Outputs equal (input_ids, pixel_values_videos): {same}.",
    ]
    text = "\n".join(rows) + "\n"
    print(text)
    out = Path(__file__).parent/"results"/f"video_bench_{name}.md"
    out.write_text(text)
    print(f"written {out}")


if __name__ == "__main__": main()
