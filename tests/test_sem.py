"""SEM scoring and modulation on small cases computed by hand."""

import pytest
import torch

from vlmkit.debias.sae import MatryoshkaSAE, SAEConfig
from vlmkit.debias.sem import SEM, bias_score, median, modulation, percentile

# neutral reference latents: 4 prompts x 3 latents
A = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 0.0], [0.0, 3.0, 1.0], [0.0, 4.0, 0.0]])


def test_percentile_is_strict_and_median_is_lower():
    h = torch.tensor([0.0, 2.5, 1.0])
    # latent 0: nothing below 0 (strict); latent 1: 1, 2 below 2.5; latent 2: three zeros below 1
    assert torch.equal(percentile(A, h), torch.tensor([0.0, 0.5, 0.75]))
    assert torch.equal(median(A), torch.tensor([0.0, 2.0, 0.0]))  # lower median of 1,2,3,4 is 2


def test_bias_score_by_hand():
    bias = {"gender": {"f": torch.tensor([[0.0, 5.0, 0.0], [0.0, 5.0, 0.0]]), "m": torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 2.0]])}}
    # f: mu = (0, 5, 0); P_A = (0, 1, 0); P_m = (0, 1, 0) -> min (0, 1, 0)
    # m: mu = (0, 0, 2); P_A = (0, 0, 1); P_f = (0, 0, 1) -> min (0, 0, 1)
    assert torch.equal(bias_score(A, bias), torch.tensor([0.0, 1.0, 1.0]))
    generic = {"g": {"f": torch.tensor([[0.0, 5.0, 0.0]]), "m": torch.tensor([[0.0, 5.0, 0.0]])}}
    # both classes share latent 1: high against A, but not specific (nothing strictly below 5 in the other)
    assert torch.equal(bias_score(A, generic), torch.zeros(3))
    with pytest.raises(ValueError, match="two classes"):
        bias_score(A, {"g": {"only": torch.zeros(1, 3)}})


def test_modulation_is_not_clipped():
    content, bias = torch.tensor([1.0, 0.5, 0.0]), torch.tensor([0.0, 0.5, 1.0])
    assert torch.equal(modulation("sem_i", content, None), torch.tensor([1.0, 0.25, 0.0]))
    assert torch.equal(modulation("sem_b", content, bias), torch.tensor([4.0, 1.0, 0.0]))


def identity_sae(m=3):
    sae = MatryoshkaSAE(SAEConfig(m, m, (1,)))
    with torch.no_grad():
        sae.encoder.weight.copy_(torch.eye(m))
        sae.encoder.bias.zero_()
        sae.decoder.weight.copy_(torch.eye(m))
        sae.b_pre.zero_()
    return sae


def test_sem_variants_by_hand():
    sem = SEM(identity_sae(), A)  # latents = embeddings (non-negative), median (0, 2, 0)
    query = torch.tensor([[0.0, 2.5, 1.0]])
    # sem_b without bias signal: s_c = (0, .5, .75), s_b = 0 -> M = (1, 2.25, 3.0625)
    bias = {"g": {"f": torch.tensor([[0.0, 5.0, 0.0]]), "m": torch.tensor([[0.0, 5.0, 0.0]])}}
    M = torch.tensor([1.0, 2.25, 3.0625])
    expected = M * query + (1 - M) * torch.tensor([0.0, 2.0, 0.0])
    assert torch.allclose(sem.steer("sem_b", query, None, bias), expected)
    # sem_i: h_bar = lower median of the paraphrases; M = s_c^2; steers h_bar
    paraphrases = [torch.tensor([[0.0, 3.5, 0.0], [0.0, 1.5, 2.0]])]
    h_bar = torch.tensor([0.0, 1.5, 0.0])
    M_i = percentile(A, h_bar) ** 2  # (0, .25**2, 0)
    assert torch.allclose(sem.steer("sem_i", None, paraphrases, None)[0], M_i * h_bar + (1 - M_i) * torch.tensor([0.0, 2.0, 0.0]))
    # sem_bi: content from h_bar, steering the query
    M_bi = (1 + percentile(A, h_bar)) ** 2
    assert torch.allclose(sem.steer("sem_bi", query, paraphrases, bias)[0], M_bi * query[0] + (1 - M_bi) * torch.tensor([0.0, 2.0, 0.0]))
    out = sem.debias("sem_b", query, None, bias)
    assert torch.allclose(out, torch.nn.functional.normalize(expected, dim=-1))


def test_a_bias_latent_is_pulled_to_the_median_unless_the_query_is_high_there():
    sem = SEM(identity_sae(), A)
    bias = {"gender": {"f": torch.tensor([[0.0, 0.0, 3.0]]), "m": torch.tensor([[0.0, 0.0, 0.0]])}}  # latent 2 carries "f"
    # s_b = (0, 0, 1). A query high on latent 2 (s_c = 1) keeps it: M = (1 + 1 - 1)^2 = 1
    assert torch.allclose(sem.steer("sem_b", torch.tensor([[0.0, 0.5, 3.0]]), None, bias)[0, 2], torch.tensor(3.0))
    # a query only moderately high there (s_c = .75) loses it: M = .75^2 = .5625 of the way to the median 0
    assert torch.allclose(sem.steer("sem_b", torch.tensor([[0.0, 0.5, 0.5]]), None, bias)[0, 2], torch.tensor(0.5625 * 0.5))


def test_variants_need_their_inputs():
    sem = SEM(identity_sae(), A)
    with pytest.raises(ValueError, match="needs the query and bias prompts"):
        sem.steer("sem_b", torch.zeros(1, 3), None, None)
    with pytest.raises(ValueError, match="needs paraphrases"):
        sem.steer("sem_i", None, None, None)
    with pytest.raises(ValueError, match="variant"):
        sem.steer("sem_x", None, None, None)


def test_text_debiaser_runs_every_method_on_a_random_clip(clip_tiny):
    from vlmkit.debias.methods import METHODS, TextDebiaser, candidates
    from vlmkit.debias.prompt_sets import bias_prompts, neutral_prompts

    sae = MatryoshkaSAE(SAEConfig(clip_tiny.embed_dim, 64, (4, 8)))
    bias = bias_prompts(["gender"])
    debiaser = TextDebiaser(clip_tiny, bias, sae, neutral_prompts()[:40])
    queries = ["a photo of a doctor.", "a photo of a nurse."]
    paraphrases = [["an image of a doctor.", "a doctor at work."], ["an image of a nurse.", "a nurse at work."]]
    for method in METHODS:
        out = debiaser.encode(method, queries, paraphrases)
        assert out.shape == (2, clip_tiny.embed_dim) and torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    none = debiaser.encode("none", queries)
    assert torch.allclose(none, clip_tiny.encode_texts(queries), atol=1e-6)
    texts, pairs = candidates(["a photo of a doctor."], bias)
    assert texts == ["a photo of a doctor, female.", "a photo of a doctor, male."] and pairs == [(0, 1)]
    with pytest.raises(ValueError, match="needs bias prompts"):
        TextDebiaser(clip_tiny).encode("orth_proj", queries)
