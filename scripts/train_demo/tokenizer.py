"""Byte-level BPE tokenizer for the demo model (`tokenizers`), saved as a HF fast tokenizer.

`train_tokenizer(corpus)` trains on an equal-size sample of each format's training text;
`encode_corpus` turns each format's training/held-out documents into one uint16 token stream
with `<|eos|>` between documents (the LM samples windows from these streams).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast

from scripts.train_demo.data import FORMATS

VOCAB_SIZE = 4096
BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
SAMPLE_CHARS = 2_500_000  # per format, for BPE merges


def _sample(docs, limit: int):
    total = 0
    for d in docs:
        if total >= limit:
            return
        total += len(d.text)
        yield d.text


def train_tokenizer(corpus, out_dir: Path) -> PreTrainedTokenizerFast:
    """Train BPE (vocab 4096, byte-level, specials bos/eos/pad) and save it to `out_dir`."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    texts = [t for fmt in FORMATS for t in _sample(corpus[fmt]["train"], SAMPLE_CHARS)]
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    bos_id = tok.token_to_id(BOS)
    # Encoding a text prepends BOS, as the model was trained (SAE stats skip position 0).
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        model_max_length=256, clean_up_tokenization_spaces=False,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return fast


def encode_corpus(tok: PreTrainedTokenizerFast, corpus, cache: Path) -> dict[str, np.ndarray]:
    """Token streams `{fmt}.{split}` (uint16, docs joined by EOS), cached as .npy files."""
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for fmt in FORMATS:
        for split in ("train", "heldout"):
            path = cache / f"{fmt}.{split}.npy"
            if path.exists():
                out[f"{fmt}.{split}"] = np.load(path)
                continue
            docs = [d.text for d in corpus[fmt][split]]
            ids: list[int] = []
            for i in tqdm(range(0, len(docs), 64), desc=f"encode {fmt}.{split}"):
                batch = tok(docs[i:i + 64], add_special_tokens=False)["input_ids"]
                for seq in batch:
                    ids.extend(seq)
                    ids.append(tok.eos_token_id)
            arr = np.asarray(ids, dtype=np.uint16)
            np.save(path, arr)
            out[f"{fmt}.{split}"] = arr
    return out
