"""A byte-level tokenizer that needs no download, for ``random:`` models and tests.

Real checkpoints ship their own tokenizer. A model with random weights has no vocabulary to
respect, but still needs texts turned into ids so the real text tower runs: every UTF-8 byte
becomes one token, plus the family's special tokens. It is a genuine
``PreTrainedTokenizerFast``, so it saves with ``save_pretrained`` and loads back through
``AutoTokenizer`` like any Hugging Face tokenizer.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast


def byte_level_tokenizer(*, bos: str | None, eos: str, pad: str, lowercase: bool, max_length: int) -> PreTrainedTokenizerFast:
    """Build a byte-level tokenizer.

    Ids 0-255 are the bytes; special tokens follow in the order bos, eos, pad (duplicates once).
    Each encoded text is ``[bos] bytes... eos``.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    specials = list(dict.fromkeys(t for t in (bos, eos, pad) if t is not None))
    for token in specials:
        vocab[token] = len(vocab)
    tok = Tokenizer(BPE(vocab=vocab, merges=[]))
    tok.add_special_tokens(specials)
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    single = f"{bos} $A {eos}" if bos else f"$A {eos}"
    tok.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[(t, vocab[t]) for t in specials if t in (bos, eos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, model_max_length=max_length
    )


def clip_byte_tokenizer(max_length: int = 77) -> PreTrainedTokenizerFast:
    """CLIP-style: lower-cased, ``<|startoftext|> ... <|endoftext|>``, padded with ``<|endoftext|>``."""
    return byte_level_tokenizer(bos="<|startoftext|>", eos="<|endoftext|>", pad="<|endoftext|>", lowercase=True, max_length=max_length)


def siglip_byte_tokenizer(max_length: int = 64) -> PreTrainedTokenizerFast:
    """SigLIP-style: ``... </s>`` then ``<pad>`` up to ``max_length`` (the text tower pools the last position)."""
    return byte_level_tokenizer(bos=None, eos="</s>", pad="<pad>", lowercase=False, max_length=max_length)
