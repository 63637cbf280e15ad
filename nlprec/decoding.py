"""Greedy and batched beam search for any encoder-decoder with the nlprec decoding interface.

A model provides `encode(src (B, S)) -> state` (a dict of batch-first tensors, or lists/tuples
of them) and `decode_step(tokens (N,), state, step) -> (log_probs (N, V), state)`. The encoder
runs once per batch; the decoder keeps its cached states (GRU hidden, Transformer keys and
values) in the state, which is re-indexed when beams are reordered.

Beam search keeps B x K rows flattened to (B * K, ...). Each step scores the K x V extensions
of every sentence, takes the best 2K; extensions ending in eos among the top K are moved to the
sentence's finished list (they leave the beam), and the best K others continue. A sentence
stops when it has K finished hypotheses, and leaves the batch (its rows are dropped from the
state), so long sentences do not keep finished ones computing. At the maximum length
max_len = floor(max_len_a * source_length + max_len_b) eos is forced.

Length penalty (GNMT, Wu et al. 2016, eq. 14): a finished hypothesis of `length` tokens (eos
included) and summed log-probability `logp` scores logp / lp(length) with
lp(length) = ((5 + length) / 6) ** alpha; alpha = 0 means no penalty (lp = 1), larger alpha
favours longer outputs. Greedy decoding is beam search with K = 1 and gives the same tokens
and scores (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from nlprec.data.tokenize import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Hypothesis:
    """One output sentence."""

    tokens: list[int]  # target piece ids, eos excluded
    score: float  # summed log-probability (eos included) / length_penalty(len(tokens) + 1, alpha)
    log_prob: float  # summed log-probability, eos included
    # greedy(return_attention=True) only: (len(tokens) + 1, S) GRU; (len(tokens) + 1, layers, heads, S) Transformer
    attention: torch.Tensor | None = field(default=None, repr=False)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + length) / 6) ** alpha.

    >>> length_penalty(1, 0.6), round(length_penalty(7, 0.6), 4), length_penalty(10, 0.0)
    (1.0, 1.5157, 1.0)
    """
    return ((5.0 + length) / 6.0) ** alpha


def max_lengths(src: torch.Tensor, max_len_a: float, max_len_b: int, limit: int | None = None) -> torch.Tensor:
    """Per sentence: floor(a * source length + b) output tokens at most (eos included), capped at `limit`."""
    lengths = (src != PAD_ID).sum(dim=1).double()  # (B,)
    allowed = torch.floor(max_len_a * lengths + max_len_b).long().clamp(min=1)  # (B,)
    return allowed.clamp(max=limit) if limit else allowed


def select_rows(state: Any, rows: torch.Tensor) -> Any:
    """`state` with every tensor's first dimension indexed by `rows` (dicts, lists, tuples recursed)."""
    if isinstance(state, torch.Tensor):
        return state.index_select(0, rows)
    if isinstance(state, dict):
        return {key: select_rows(value, rows) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(select_rows(value, rows) for value in state)
    return state


def _position_limit(model: Any) -> int | None:
    return getattr(model.config, "max_positions", None)


@torch.no_grad()
def greedy(model: Any, src: torch.Tensor, alpha: float = 0.6, max_len_a: float = 1.5, max_len_b: int = 10,
           return_attention: bool = False) -> list[Hypothesis]:
    """The most likely next token at every step, for a batch of sources (B, S); finished rows leave the batch."""
    batch = src.shape[0]
    state = model.encode(src)
    limits = max_lengths(src, max_len_a, max_len_b, _position_limit(model))  # (B,)
    width = int(limits.max())
    outputs = torch.full((batch, width), PAD_ID, dtype=torch.long, device=src.device)  # (B, T_max)
    totals = torch.zeros(batch, device=src.device)  # (B,) summed log-probabilities
    lengths = torch.zeros(batch, dtype=torch.long, device=src.device)  # (B,) tokens incl. eos, 0 while running
    if return_attention:  # models that keep no weights unless asked (the Transformer) read this flag
        state = {**state, "return_attention": True}
    attention = None  # (B, T_max, *weights of one step): (B, T_max, S) GRU, (B, T_max, layers, heads, S) Transformer
    active = torch.arange(batch, device=src.device)  # (A,) rows still decoding
    tokens = torch.full_like(active, BOS_ID)  # (A,)
    step = 0
    while len(active):
        log_probs, state = model.decode_step(tokens, state, step)  # (A, V)
        forced = limits[active] <= step + 1  # (A,) at the maximum length only eos remains
        log_probs[forced] = _only_eos(log_probs[forced])
        best, tokens = log_probs.max(dim=-1)  # (A,), (A,)
        totals[active] = totals[active] + best
        outputs[active, step] = tokens
        if return_attention:
            weights = state["attention"].float().cpu()  # (A, ...)
            if attention is None:
                attention = torch.zeros(batch, width, *weights.shape[1:])
            attention[active.cpu(), step] = weights  # the buffer stays on the CPU, the rows may be on a GPU
        step += 1
        ended = tokens == EOS_ID  # (A,)
        lengths[active[ended]] = step
        if bool(ended.any()):
            keep = (~ended).nonzero().squeeze(1)  # (A',)
            state, active, tokens = select_rows(state, keep), active[keep], tokens[keep]
    return [Hypothesis(outputs[row, :length - 1].tolist(), total / length_penalty(length, alpha), total,
                       attention[row, :length] if attention is not None else None)
            for row, (length, total) in enumerate(zip(lengths.tolist(), totals.tolist()))]


def _only_eos(log_probs: torch.Tensor) -> torch.Tensor:
    """(N, V) rows with every token but eos at -inf, eos keeping its log-probability."""
    forced = torch.full_like(log_probs, float("-inf"))
    forced[:, EOS_ID] = log_probs[:, EOS_ID]
    return forced


@torch.no_grad()
def beam_search(model: Any, src: torch.Tensor, beam: int = 5, nbest: int = 1, alpha: float = 0.6,
                max_len_a: float = 1.5, max_len_b: int = 10) -> list[list[Hypothesis]]:
    """The `nbest` best hypotheses (best first) of each source in the batch src (B, S)."""
    if not 1 <= nbest <= beam:
        raise ValueError(f"nbest must be in [1, beam={beam}], got {nbest}")
    batch, k = src.shape[0], beam
    device = src.device
    flat = torch.arange(batch, device=device).repeat_interleave(k)  # (B*K,)
    state = select_rows(model.encode(src), flat)  # encoder once, rows copied per beam
    limits = max_lengths(src, max_len_a, max_len_b, _position_limit(model))  # (B,)
    active = torch.arange(batch, device=device)  # (A,) original sentences still searching
    scores = torch.full((batch, k), float("-inf"), device=device)  # (A, K) summed log-probabilities
    scores[:, 0] = 0.0  # one live beam at the start, so the first step has no duplicates
    prefixes = torch.full((batch * k, 0), BOS_ID, dtype=torch.long, device=device)  # (A*K, t)
    tokens = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)  # (A*K,)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    finished_count = torch.zeros(batch, dtype=torch.long, device=device)  # (B,)
    step = 0
    while len(active):
        log_probs, state = model.decode_step(tokens, state, step)  # (A*K, V)
        step += 1
        vocab = log_probs.shape[-1]
        forced = (limits[active] <= step).repeat_interleave(k)  # (A*K,)
        log_probs[forced] = _only_eos(log_probs[forced])
        candidates = (scores.view(-1, 1) + log_probs).view(len(active), k * vocab)  # (A, K*V)
        top_scores, top_index = candidates.topk(2 * k, dim=1)  # (A, 2K)
        top_beam, top_token = top_index // vocab, top_index % vocab  # (A, 2K)
        is_eos = (top_token == EOS_ID) & torch.isfinite(top_scores)  # (A, 2K)
        _finalize(finished, active, prefixes, is_eos[:, :k], top_beam, top_scores, k, step, alpha)
        finished_count[active] += is_eos[:, :k].sum(dim=1)
        # The best K extensions that are not eos continue (at most K of the 2K are eos).
        live_scores = top_scores.masked_fill(is_eos, float("-inf"))  # (A, 2K)
        scores, pick = live_scores.topk(k, dim=1)  # (A, K)
        rows = (torch.arange(len(active), device=device)[:, None] * k + top_beam.gather(1, pick)).view(-1)  # (A*K,)
        tokens = top_token.gather(1, pick).view(-1)  # (A*K,)
        prefixes = torch.cat([prefixes[rows], tokens[:, None]], dim=1)  # (A*K, t + 1)
        state = select_rows(state, rows)
        done = finished_count[active] >= k  # (A,)
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)  # (A',)
            keep_rows = (keep[:, None] * k + torch.arange(k, device=device)).view(-1)  # (A'*K,)
            active, scores = active[keep], scores[keep]
            state, prefixes, tokens = select_rows(state, keep_rows), prefixes[keep_rows], tokens[keep_rows]
    return [sorted(hypotheses, key=lambda h: -h.score)[:nbest] for hypotheses in finished]


def _finalize(finished: list[list[Hypothesis]], active: torch.Tensor, prefixes: torch.Tensor, eos_top_k: torch.Tensor,
              top_beam: torch.Tensor, top_scores: torch.Tensor, k: int, length: int, alpha: float) -> None:
    """Move eos extensions among each sentence's top K candidates to its finished list (rank order)."""
    penalty = length_penalty(length, alpha)
    for row, rank in eos_top_k.nonzero().tolist():
        sentence = int(active[row])
        if len(finished[sentence]) >= k:
            continue
        log_prob = float(top_scores[row, rank])
        prefix = prefixes[row * k + int(top_beam[row, rank])].tolist()
        finished[sentence].append(Hypothesis(prefix, log_prob / penalty, log_prob))


def decode(model: Any, src: torch.Tensor, beam: int = 1, nbest: int = 1, alpha: float = 0.6,
           max_len_a: float = 1.5, max_len_b: int = 10) -> list[list[Hypothesis]]:
    """Greedy when beam == 1 (nbest must then be 1), else beam search; n-best lists, best first."""
    if beam == 1 and nbest == 1:
        return [[hypothesis] for hypothesis in greedy(model, src, alpha, max_len_a, max_len_b)]
    return beam_search(model, src, beam, nbest, alpha, max_len_a, max_len_b)


__all__ = ["Hypothesis", "length_penalty", "max_lengths", "greedy", "beam_search", "decode", "select_rows"]
