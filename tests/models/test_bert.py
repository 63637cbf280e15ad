"""BERT: contract, the sparse MLM head against the dense one, padding, heads and config checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contract import ModelContract
from nlprec.data.bert_data import FIRST_PIECE, EncodedDocuments, Masking, create_examples, make_batch
from nlprec.errors import NlprecError
from nlprec.models.bert import Bert, BertConfig, query_columns

VOCAB = 40


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_bert(objectives: str = "mlm+nsp", norm_first: bool = False, seed: int = 0) -> Bert:
    torch.manual_seed(seed)
    return Bert(BertConfig(vocab_size=VOCAB, hidden=32, layers=2, heads=4, d_ff=64, max_positions=32,
                           objectives=objectives, norm_first=norm_first))  # type: ignore[arg-type]


def tiny_batch(rows: int = 8, next_sentence: bool = True, seed: int = 0) -> dict:
    """A real pretraining batch of the data pipeline over a random corpus."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 7, 60)
    tokens = rng.integers(FIRST_PIECE, VOCAB, int(lengths.sum())).astype(np.int32)
    corpus = EncodedDocuments(tokens, np.concatenate([[0], np.cumsum(lengths)]), np.arange(0, 61, 6))
    examples = create_examples(corpus, 32, rng, next_sentence)
    return make_batch(corpus, examples, np.arange(rows), next_sentence, Masking(VOCAB), rng)


class TestBertContract(ModelContract):
    name = "bert"
    lr = 0.003

    def make_model(self):
        return tiny_bert()

    def make_batch(self):
        return tiny_batch()


class TestPreNormMlmOnlyBertContract(TestBertContract):
    def make_model(self):
        return tiny_bert("mlm", norm_first=True)

    def make_batch(self):
        return tiny_batch(next_sentence=False)


def test_sparse_head_equals_the_dense_head_at_the_masked_positions():
    model, batch = tiny_bert().eval(), tiny_batch()
    hidden = model(batch["input_ids"], batch["segment_ids"])  # (B, T, d)
    dense = model.mlm_logits(hidden.reshape(-1, 32))  # (B*T, V): what a dense head computes
    labels = batch["mlm_labels"]
    expected = F.cross_entropy(dense[batch["mlm_positions"]], labels)
    parts = model.loss(batch)
    assert torch.allclose(parts["mlm"], expected, atol=1e-5)
    accuracy = (dense[batch["mlm_positions"]].argmax(-1) == labels).float().mean()
    assert torch.isclose(parts["mlm_accuracy"], accuracy)
    nsp = F.cross_entropy(model.nsp_logits(hidden), batch["nsp_labels"])
    assert torch.allclose(parts["loss"], expected + nsp, atol=1e-5)
    assert set(parts) == {"loss", "mlm", "nsp", "mlm_accuracy", "nsp_accuracy"}


def test_query_columns_put_cls_first_then_each_rows_masks():
    positions = torch.tensor([1, 5, 6, 13, 26, 27])  # (M,) into a (3, 12) grid: row 0 three masks, row 2 two
    columns, slots = query_columns(positions, 3, 12)
    assert columns.tolist() == [[0, 1, 5, 6], [0, 1, 0, 0], [0, 2, 3, 0]]
    assert torch.equal(columns.reshape(-1)[slots], positions % 12)


@pytest.mark.parametrize("norm_first", [False, True])
def test_last_layer_at_the_read_positions_gives_the_full_loss_and_gradients(norm_first):
    batch = tiny_batch()
    sparse_model, full_model = tiny_bert(norm_first=norm_first).eval(), tiny_bert(norm_first=norm_first).eval()
    sparse = sparse_model.loss(batch)["loss"]
    hidden = full_model(batch["input_ids"], batch["segment_ids"])  # (B, T, d): every position, every layer
    logits = full_model.mlm_logits(hidden.reshape(-1, 32)[batch["mlm_positions"]])
    full = F.cross_entropy(logits, batch["mlm_labels"]) + F.cross_entropy(full_model.nsp_logits(hidden),
                                                                          batch["nsp_labels"])
    assert torch.allclose(sparse, full, atol=1e-5)
    sparse.backward()
    full.backward()
    for (name, a), (_, b) in zip(sparse_model.named_parameters(), full_model.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_padding_does_not_change_the_real_positions():
    model = tiny_bert().eval()
    ids = torch.tensor([[4, 9, 10, 11, 5, 12, 13, 5]])
    segments = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1]])
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    padded_segments = torch.cat([segments, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    other = torch.randint(FIRST_PIECE, VOCAB, (1, 11))
    out = model(torch.cat([padded, other]), torch.cat([padded_segments, torch.zeros_like(other)]))
    assert torch.allclose(out[:1, :8], model(ids, segments), atol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("lengths", [[5, 1, 32, 3, 17, 32, 2], [32, 32], [3]], ids=["mixed", "full", "one"])
def test_unpadded_inference_equals_the_padded_forward_and_pooling(norm_first, lengths):
    from nlprec.tasks.bert import pool_packed

    model = tiny_bert(norm_first=norm_first, seed=3).eval()
    keep = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]  # (B, T)
    ids = torch.randint(FIRST_PIECE, VOCAB, keep.shape) * keep  # (B, T), pad id 0 at padding
    with torch.inference_mode():
        padded = model.encoder(ids, keep=keep)  # (B, T, d)
        packed = model.encoder.forward_packed(ids[keep], torch.tensor(lengths))  # (N, d)
    torch.testing.assert_close(packed, padded[keep], atol=1e-5, rtol=0)
    mask = keep[..., None].float()  # (B, T, 1): the padded pooling, as sentence-transformers' Pooling
    expected = {"cls": padded[:, 0], "mean": (padded * mask).sum(1) / mask.sum(1),
                "max": padded.masked_fill(~keep[..., None], -1e9).max(1).values}
    for pooling, vectors in expected.items():
        torch.testing.assert_close(pool_packed(packed, torch.tensor(lengths), pooling), vectors, atol=1e-5, rtol=0)


def test_segments_matter_and_mlm_only_has_no_nsp_head():
    model = tiny_bert().eval()
    ids = torch.tensor([[4, 9, 10, 5, 12, 13, 5]])
    assert not torch.allclose(model(ids, torch.zeros_like(ids)), model(ids, torch.ones_like(ids)))
    mlm_only = tiny_bert("mlm")
    assert mlm_only.nsp is None and "nsp" not in mlm_only.loss(tiny_batch(next_sentence=False))
    with pytest.raises(NlprecError, match="without next-sentence"):
        mlm_only.nsp_logits(mlm_only(ids))


def test_decoder_is_tied_to_the_token_embeddings():
    model = tiny_bert()
    model.loss(tiny_batch())["loss"].backward()
    names = {name for name, _ in model.named_parameters()}
    assert not any("decoder" in name for name in names)
    assert model.encoder.token_embed.weight.grad[FIRST_PIECE:].abs().sum() > 0


def test_param_groups_leave_biases_and_norms_undecayed():
    model = tiny_bert()
    groups = model.param_groups()
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    for group in groups:
        assert all(p.dim() == 1 for p in group["params"]) == (group.get("weight_decay") == 0.0)


def test_too_long_inputs_and_bad_configs_are_errors():
    with pytest.raises(NlprecError, match="max_positions"):
        tiny_bert()(torch.full((1, 40), FIRST_PIECE))
    with pytest.raises(NlprecError, match="divisible"):
        BertConfig(hidden=30, heads=4)
    with pytest.raises(NlprecError, match="max_positions"):
        BertConfig(max_positions=4)
