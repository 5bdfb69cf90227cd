"""ProactiveBench (De Min et al., arXiv 2603.19466): does a multimodal model ask for the help it needs?

- :mod:`~vlmkit.proactive.envs`: one environment per scenario over the published episode format;
- :mod:`~vlmkit.proactive.published`: reading the release from a local directory;
- :mod:`~vlmkit.proactive.world`: shapes-world scenarios with ground truth (offline);
- :mod:`~vlmkit.proactive.mcqa` / :mod:`~vlmkit.proactive.oeg`: the two protocols;
- :mod:`~vlmkit.proactive.metrics`: acc, psr, ps, cc, agg, accuracy, proactive_rate;
- :mod:`~vlmkit.proactive.train`: the GRPO-style fine-tuning recipe, small.
"""
