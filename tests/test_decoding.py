"""Greedy and batched beam search on both architectures: beam 1 == greedy exactly, batched ==
per-sentence, the length penalty, n-best ordering and the maximum length."""

from __future__ import annotations

import pytest
import torch

from nlprec.data.tokenize import EOS_ID, PAD_ID
from nlprec.decoding import beam_search, decode, greedy, length_penalty, max_lengths
from nlprec.models.seq2seq import GRUAttention, GRUAttentionConfig
from nlprec.models.transformer import Transformer, TransformerConfig


pytestmark = pytest.mark.usefixtures("one_thread")


def make(arch: str):
    torch.manual_seed(0)
    if arch == "transformer":
        model = Transformer(TransformerConfig(src_vocab=30, tgt_vocab=30, d_model=32, heads=4, encoder_layers=2,
                                              decoder_layers=2, d_ff=64))
    else:
        model = GRUAttention(GRUAttentionConfig(src_vocab=30, tgt_vocab=30, embed_dim=16, hidden=16,
                                                decoder_hidden=24, attention_dim=16))
    with torch.no_grad():  # make eos likely enough that hypotheses end at different lengths
        model.tgt_embed.weight[EOS_ID] *= 3
    return model.eval()


def sources(rows: int = 7, length: int = 8, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 30, (rows, length), generator=generator)
    lengths = torch.randint(1, length + 1, (rows,), generator=generator)
    src[torch.arange(length)[None, :] >= lengths[:, None]] = PAD_ID
    return src


ARCHS = ["transformer", "gru-attention"]


def test_length_penalty_is_gnmt_formula():
    assert length_penalty(1, 0.6) == 1.0
    assert length_penalty(10, 0.0) == 1.0
    assert length_penalty(7, 0.6) == pytest.approx((12 / 6) ** 0.6)
    assert length_penalty(20, 1.0) == pytest.approx(25 / 6)


def test_max_lengths_relative_to_source():
    src = torch.tensor([[5, 6, 0, 0], [5, 6, 7, 8]])
    assert max_lengths(src, 1.5, 10).tolist() == [13, 16]
    assert max_lengths(src, 1.5, 10, limit=14).tolist() == [13, 14]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_one_equals_greedy_exactly(arch, alpha):
    model, src = make(arch), sources()
    expected = greedy(model, src, alpha=alpha, max_len_b=6)
    found = beam_search(model, src, beam=1, alpha=alpha, max_len_b=6)
    assert [h.tokens for h in expected] == [n[0].tokens for n in found]
    assert [h.score for h in expected] == [n[0].score for n in found]
    assert [h.log_prob for h in expected] == [n[0].log_prob for n in found]
    assert [n[0].tokens for n in decode(model, src, beam=1, alpha=alpha, max_len_b=6)] == [h.tokens for h in expected]


@pytest.mark.parametrize("arch", ARCHS)
def test_batched_beam_equals_per_sentence_beam(arch):
    model, src = make(arch), sources()
    batched = beam_search(model, src, beam=4, nbest=4, max_len_b=6)
    for row in range(src.shape[0]):
        single = src[row:row + 1, : int((src[row] != PAD_ID).sum())]
        alone = beam_search(model, single, beam=4, nbest=4, max_len_b=6)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in batched[row]]
        assert [h.score for h in alone] == pytest.approx([h.score for h in batched[row]], abs=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_nbest_is_sorted_distinct_and_scored_by_the_formula(arch):
    model, src = make(arch), sources()
    for nbest in beam_search(model, src, beam=5, nbest=5, alpha=0.6, max_len_b=6):
        assert len(nbest) == 5
        scores = [h.score for h in nbest]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in nbest}) == 5
        for h in nbest:
            assert h.score == pytest.approx(h.log_prob / length_penalty(len(h.tokens) + 1, 0.6))
            assert EOS_ID not in h.tokens and PAD_ID not in h.tokens


@pytest.mark.parametrize("arch", ARCHS)
def test_beam_finds_at_least_the_greedy_score(arch):
    model, src = make(arch), sources()
    greedy_scores = [h.score for h in greedy(model, src, alpha=0.0, max_len_b=6)]
    beam_scores = [n[0].score for n in beam_search(model, src, beam=5, alpha=0.0, max_len_b=6)]
    assert all(b >= g - 1e-5 for b, g in zip(beam_scores, greedy_scores))


def test_output_never_exceeds_the_maximum_length():
    model = make("transformer")
    with torch.no_grad():  # never want to stop: eos only when forced
        model.tgt_embed.weight[EOS_ID] = -10 * model.tgt_embed.weight[4:].mean(0)
    src = sources()
    limits = max_lengths(src, 0.5, 2)
    for nbest, limit in zip(beam_search(model, src, beam=3, nbest=3, max_len_a=0.5, max_len_b=2), limits.tolist()):
        assert all(len(h.tokens) + 1 <= limit for h in nbest)
    for h, limit in zip(greedy(model, src, max_len_a=0.5, max_len_b=2), limits.tolist()):
        assert len(h.tokens) + 1 <= limit


def test_greedy_attention_has_one_row_per_output_token():
    model, src = make("gru-attention"), sources(rows=3)
    for row, h in enumerate(greedy(model, src, max_len_b=6, return_attention=True)):
        real = int((src[row] != PAD_ID).sum())
        assert h.attention.shape == (len(h.tokens) + 1, src.shape[1])
        assert torch.allclose(h.attention.sum(dim=1), torch.ones(len(h.tokens) + 1), atol=1e-5)
        assert (h.attention[:, real:] == 0).all()


def test_nbest_larger_than_beam_is_rejected():
    with pytest.raises(ValueError, match="nbest"):
        beam_search(make("gru-attention"), sources(), beam=2, nbest=3)
