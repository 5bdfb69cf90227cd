"""Sparse autoencoders: planted dictionaries are recovered, training resumes exactly, files round-trip."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vlmkit.debias.sae import MatryoshkaSAE, SAEConfig, load_official, quality
from vlmkit.debias.sae_train import SAETrainConfig, batches, train_sae


def planted_data(n=20000, d=32, atoms=48, active=3, seed=0):
    """``x = offset + sum of `active` planted atoms with coefficients in [1, 2]``; returns (x, atoms)."""
    gen = torch.Generator().manual_seed(seed)
    dictionary = F.normalize(torch.randn(atoms, d, generator=gen), dim=-1)
    support = torch.stack([torch.randperm(atoms, generator=gen)[:active] for _ in range(n)])
    coef = 1 + torch.rand(n, active, generator=gen)
    x = (coef.unsqueeze(-1) * dictionary[support]).sum(1) + 0.5 * torch.randn(d, generator=gen)
    return x.numpy().astype(np.float32), dictionary


def test_planted_dictionary_is_recovered(tmp_path):
    data, dictionary = planted_data()
    sae = train_sae(data, SAEConfig(32, 96, (3, 6)), SAETrainConfig(steps=1500, batch_size=256, lr=3e-3, warmup=50, block_rows=8192),
                    tmp_path / "sae")
    learned = F.normalize(sae.atoms.detach(), dim=-1)
    best = (dictionary @ learned.T).max(1).values
    assert (best > 0.9).float().mean() >= 0.9, best
    q = quality(sae, [torch.from_numpy(data[:4000])])
    assert q.fvu < 0.1 and q.cosine > 0.95


def test_matryoshka_weights_and_inference_has_no_topk():
    cfg = SAEConfig(8, 16, (2, 4, 8))
    assert cfg.weights() == [3.0, 2.0, 1.0]
    assert SAEConfig(8, 16, (2, 4), "uniform").weights() == [1.0, 1.0]
    sae = MatryoshkaSAE(cfg)
    with torch.no_grad():
        sae.encoder.bias.fill_(1.0)  # every latent active at inference
    z = sae.encode(torch.zeros(3, 8))
    assert (z > 0).sum(1).tolist() == [16, 16, 16]
    for bad in ((4, 2), (0, 2), (2, 32)):
        with pytest.raises(ValueError):
            SAEConfig(8, 16, bad)


def test_matryoshka_loss_matches_a_direct_computation():
    torch.manual_seed(0)
    sae = MatryoshkaSAE(SAEConfig(6, 10, (2, 5)))
    x = torch.randn(4, 6)
    h = sae.pre_activation(x)
    expected = 0
    for k, w in ((2, 2.0), (5, 1.0)):
        keep = torch.zeros_like(h).scatter(1, h.topk(k, dim=1).indices, 1.0)
        expected = expected + w * ((sae.decode(torch.relu(h * keep)) - x) ** 2).mean()
    assert torch.allclose(sae.loss(x), expected)


def test_resumed_training_equals_uninterrupted(tmp_path):
    data, _ = planted_data(n=3000, d=16, atoms=20)
    cfg = SAETrainConfig(steps=60, batch_size=128, checkpoint_every=20, block_rows=1024)
    sae_cfg = SAEConfig(16, 32, (2, 4))
    straight = train_sae(data, sae_cfg, cfg, tmp_path / "a")
    train_sae(data, sae_cfg, cfg, tmp_path / "b", until=30)
    resumed = train_sae(data, sae_cfg, cfg, tmp_path / "b")
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_batches_cover_every_row_once_per_epoch():
    data = np.arange(40, dtype=np.float32)[:, None]
    cfg = SAETrainConfig(batch_size=4, block_rows=8)
    stream = batches(data, cfg)
    first_epoch = torch.cat([next(stream) for _ in range(10)]).flatten().sort().values
    assert torch.equal(first_epoch, torch.arange(40, dtype=torch.float32))
    resumed = batches(data, cfg, start_step=7)
    again = batches(data, cfg)
    for _ in range(7):
        next(again)
    assert torch.equal(next(resumed), next(again))


@pytest.mark.parametrize(("n", "block_rows", "batch_size"), [(100, 64, 10), (103, 30, 16), (77, 20, 6)])
def test_epochs_never_repeat_a_row_when_blocks_do_not_divide(n, block_rows, batch_size):
    """Every epoch is one full pass over the blocks: no row twice within an epoch, the same number
    of batches in each epoch (regression: the epoch counter's break left only the inner loop)."""
    from vlmkit.debias.sae_train import epoch_rows

    data = np.arange(n, dtype=np.float32)[:, None]
    cfg = SAETrainConfig(batch_size=batch_size, block_rows=block_rows, seed=3)
    blocks = [min(block_rows, n - s) for s in range(0, n, block_rows)]
    per_epoch = sum(max(b // batch_size, 1) for b in blocks)
    stream = batches(data, cfg)
    for epoch in range(4):
        rows = torch.cat([next(stream) for _ in range(per_epoch)]).flatten()
        assert len(set(rows.tolist())) == len(rows), f"epoch {epoch} repeats a row"
        expected = np.concatenate([start + offsets for start, offsets in epoch_rows(n, cfg, epoch)])
        assert np.array_equal(rows.numpy().astype(int), expected)


def test_save_load_and_official_format(tmp_path):
    torch.manual_seed(1)
    sae = MatryoshkaSAE(SAEConfig(8, 16, (2, 4)))
    x = torch.randn(5, 8)
    loaded = MatryoshkaSAE.load(sae.save(tmp_path / "mine"))
    assert torch.allclose(loaded(x), sae(x))
    official = {"bpre": sae.b_pre.detach(), "encoder.weight": sae.encoder.weight.detach(),
                "encoder.bias": sae.encoder.bias.detach(), "decoder.weight": sae.decoder.weight.detach()}
    path = tmp_path / "sae_clip_8_16_2x4_reverse.pth"
    torch.save(official, path)
    theirs = load_official(path)
    assert theirs.cfg == SAEConfig(8, 16, (2, 4), "reverse")
    assert torch.allclose(theirs(x), sae(x))
    with pytest.raises(ValueError, match="cannot read the SAE shape"):
        bad = tmp_path / "weights.pth"
        torch.save(official, bad)
        load_official(bad)


def test_quality_on_a_perfect_and_a_constant_reconstruction():
    sae = MatryoshkaSAE(SAEConfig(4, 4, (4,)))
    with torch.no_grad():
        sae.encoder.weight.copy_(torch.eye(4))
        sae.encoder.bias.zero_()
        sae.decoder.weight.copy_(torch.eye(4))
        sae.b_pre.zero_()
    x = torch.rand(10, 4) + 0.1  # positive, so ReLU keeps everything
    q = quality(sae, [x[:6], x[6:]])
    assert q.fvu < 1e-10 and abs(q.cosine - 1) < 1e-6 and q.l0 == 4 and q.dead == 0
    with torch.no_grad():
        sae.encoder.bias.fill_(-10.0)  # nothing active: x_hat = b_pre = 0
    q = quality(sae, [x])
    assert q.l0 == 0 and q.dead == 4 and q.fvu > 1


def test_sae_cli_trains_evaluates_and_resumes(tmp_path, capsys):
    import json

    from vlmkit.cli.main import main

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(f"a photo of thing number {i}" for i in range(120)))
    out = tmp_path / "sae"
    args = ["sae", "train", "--model", "random:clip-tiny", "--texts", str(texts), "--latents", "64", "--k", "4,8", "--steps", "40",
            "--train-batch", "32", "--out", str(out)]
    main(args)
    result = json.loads((out / "result.json").read_text())
    assert result["rows"] == {"train": 114, "heldout": 6} and result["sae"]["d_in"] == 32
    first = MatryoshkaSAE.load(out).state_dict()
    main(args)  # a finished run resumes at its last step: nothing changes
    assert all(torch.equal(first[k], v) for k, v in MatryoshkaSAE.load(out).state_dict().items())
    other_texts = tmp_path / "other.txt"
    other_texts.write_text("\n".join(f"a drawing of shape {i}" for i in range(120)))
    for changed, says in ((["--latents", "32"], "trained with other settings"), (["--texts", str(other_texts)], "on other embeddings")):
        swapped = [*args]
        for option, value in zip(changed[::2], changed[1::2], strict=True):
            swapped[swapped.index(option) + 1] = value
        with pytest.raises(SystemExit) as info:  # not resumed into the wrong SAE (a traceback, or a mislabelled result)
            main(swapped)
        err = capsys.readouterr().err.strip()
        assert info.value.code == 2 and err.startswith("error: ") and says in err and "\n" not in err, err
    assert all(torch.equal(first[k], v) for k, v in MatryoshkaSAE.load(out).state_dict().items())
    main(["sae", "eval", "--sae", str(out), "--model", "random:clip-tiny", "--texts", str(texts), "--out", str(tmp_path / "eval")])
    quality_ = json.loads((tmp_path / "eval" / "result.json").read_text())["quality"]
    assert 0 <= quality_["sparsity"] <= 1 and quality_["fvu"] >= 0


@pytest.mark.parametrize(("extra", "message"), [
    ([], "exactly one of --texts FILE or --dataset D"),
    (["--texts", "missing.txt"], "text file not found"),
    (["--texts", "TEXTS", "--k", "8,4"], "distinct and increasing"),
])
def test_sae_cli_rejects_bad_input(tmp_path, capsys, extra, message):
    from vlmkit.cli.main import main

    texts = tmp_path / "t.txt"
    texts.write_text("a\nb\nc\n")
    extra = [str(texts) if e == "TEXTS" else e for e in extra]
    levels = [] if "--k" in extra else ["--k", "2,4"]
    with pytest.raises(SystemExit) as exit_info:
        main(["sae", "train", "--model", "random:clip-tiny", "--latents", "16", *levels, *extra, "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing at all under --out


@pytest.mark.parametrize("name", ["embedded", "embedded-biased"])
def test_shipped_sae_reconstructs_world_captions(name):
    from vlmkit.data.world_sample import caption, sample_image
    from vlmkit.debias.sae import find_sae
    from vlmkit.models import load_model

    model = load_model(name)
    path = find_sae(None, name)
    assert path is not None
    sae = MatryoshkaSAE.load(path)
    texts = []
    for i in range(40):  # scenes of a seed the SAE corpus did not use
        scene, rng = sample_image(i, 11)
        texts.append(caption(scene, rng)[0])
    q = quality(sae, [model.encode_texts(texts, normalize=False)])
    assert sae.cfg.d_in == model.embed_dim and q.cosine > 0.95 and q.sparsity > 0.9


def test_embeddings_stream_to_disk_in_slices_and_split_into_a_permutation(tmp_path, monkeypatch, clip_tiny):
    from vlmkit.debias import sae_run
    from vlmkit.embed import embed_texts

    texts = tmp_path / "t.txt"
    lines = [f"text {i}" for i in range(100)]
    texts.write_text("\n".join(lines))
    monkeypatch.setattr(sae_run, "SLICE", 32)
    opts = sae_run.SAETrainOptions(model="random:clip-tiny", texts=texts, out=tmp_path / "o", latents=8, k="2")
    raw, checksum = sae_run.raw_embeddings_to_disk(clip_tiny, opts, tmp_path / "raw.npy")
    expected = embed_texts(clip_tiny, lines, normalize=False).vectors
    assert np.allclose(raw, expected, atol=1e-6)
    train, held = sae_run._split_to_disk(raw, checksum, tmp_path, seed=0)
    both = np.concatenate([held, train])
    assert len(held) == 5 and np.allclose(np.sort(both, axis=0), np.sort(expected, axis=0), atol=1e-6)
