"""The ``vlmkit c2b run`` job: task, classes, classifier and index in; ranked biases out.

``result.json`` keys: ``task``, ``classifier``, ``classes``, ``proposals`` (target -> attribute
-> classes), ``proposal_source`` (``file`` or the LLM's name), ``proposal_failures`` (target ->
why the LLM gave nothing valid), ``template`` and ``template_source``, ``k``, ``settings``,
``ranking`` (``[{"attribute", "score", "interval", "targets", "classes": [{"target", "name",
"phi", "n", "accuracy", "phi_interval", "detected"}]}]``, by descending score), ``detected``,
``groups`` (caption, retrieved paths and predictions per query), and, with ``--annotations``,
``evaluation`` (``ground_truth_biases``, ``ground_truth_ranking``, Hit / False Hit / Miss, agreement), with ``--pool-labels``,
``retrieval_precision``. ``proposals.json`` beside it can be passed back as ``--proposals``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vlmkit.audit import report
from vlmkit.audit.proposals import (
    DEFAULT_TEMPLATE,
    check_template,
    llm_template,
    propose_with_llm,
    read_proposals,
)
from vlmkit.audit.scores import ScoreSettings, detected_biases
from vlmkit.errors import UserError
from vlmkit.runs.files import atomic_write_json
from vlmkit.runs.options import RunOptions
from vlmkit.runs.record import Run


class C2BOptions(RunOptions):
    model: str | None = None  # the index's model, by default the one index.json records
    classifier: str
    task: str
    classes: str
    index: Path
    llm: str | None = None
    proposals: Path | None = None
    template: str | None = None
    prompts: list[str] | None = None
    k: int = 20
    retries: int = 3
    llm_temperature: float = 0.0
    base_url: str | None = None
    api_key: str | None = None
    min_n: int = 5
    threshold: float = 0.1
    level: float = 0.9
    draws: int = 2000
    annotations: str | None = None
    target_attribute: str | None = None
    pool_labels: str | None = None

    def settings(self) -> ScoreSettings:
        return ScoreSettings(min_n=self.min_n, threshold=self.threshold, level=self.level, draws=self.draws, seed=self.seed)


def _check(opts: C2BOptions) -> list[str]:
    from vlmkit.data.templates import resolve_classes

    if (opts.llm is None) == (opts.proposals is None):
        raise UserError("give exactly one of --llm MODEL (the LLM proposes biases) and --proposals FILE")
    if not opts.task.strip():
        raise UserError('--task must describe the classification task, e.g. --task "classify the shape of the object"')
    if opts.k < 1 or opts.retries < 1 or opts.min_n < 1 or opts.draws < 10 or not 0 < opts.level < 1 or opts.threshold < 0:
        raise UserError("need -k >= 1, --retries >= 1, --min-n >= 1, --draws >= 10, 0 < --level < 1 and --threshold >= 0")
    if opts.template is not None:
        check_template(opts.template)
    classes = resolve_classes(opts.classes) or []
    if len(classes) < 2:
        raise UserError("--classes needs at least two class names (a file with one per line, or a,b,c)")
    return classes


def _proposals(opts: C2BOptions, classes: list[str], run: Run) -> tuple[dict, dict, str, str]:
    """(proposals, failures, template, template source), from the file or the LLM."""
    if opts.proposals is not None:
        return read_proposals(opts.proposals, classes), {}, opts.template or DEFAULT_TEMPLATE, "option" if opts.template else "default"
    from vlmkit.models.chat_registry import load_chat_model

    with run.timer("load_llm"):
        llm = load_chat_model(opts.llm, device=opts.resolved_device(), base_url=opts.base_url, api_key=opts.api_key)
    with run.timer("propose"):
        proposals, log = propose_with_llm(llm, opts.task, classes, retries=opts.retries, temperature=opts.llm_temperature, seed=opts.seed)
        template, source = opts.template, "option"
        if template is None:
            template, replies = llm_template(llm, opts.task, retries=opts.retries, seed=opts.seed)
            run.info["template_replies"] = replies
            template, source = (template, opts.llm) if template else (DEFAULT_TEMPLATE, "default (no valid LLM template)")
    run.info["llm_attempts"] = log.attempts
    for target, why in log.failures.items():
        print(f"warning: {opts.llm} gave no valid proposal for {target!r} after {opts.retries} tries: {why}", file=sys.stderr)
    return proposals, log.failures, template, source


def _evaluate(opts: C2BOptions, classifier, ranking: list[dict], detected: list[dict]) -> dict:
    from vlmkit.audit.evaluate import agreement, ground_truth_biases, hit_miss
    from vlmkit.data.datasets import load_dataset

    dataset = load_dataset(opts.annotations)
    labels = dataset.targets(opts.target_attribute)
    keep = [i for i, t in enumerate(labels) if t is not None]
    if not keep:
        raise UserError(
            f"--annotations {opts.annotations} has no {opts.target_attribute or 'label'} to compare predictions with; "
            "pass --target-attribute"
        )
    predictions = classifier.predict([str(dataset.samples[i].path) for i in keep])
    annotations = [
        {k: v for k, v in dataset.samples[i].attributes.items() if k != opts.target_attribute and isinstance(v, (str, bool, int))}
        for i in keep
    ]
    truth_ranking, truth = ground_truth_biases([labels[i] for i in keep], predictions, annotations, settings=opts.settings())
    return {"annotations": str(opts.annotations), "images": len(keep), "ground_truth_biases": truth, "ground_truth_ranking": truth_ranking,
            **hit_miss(detected, truth), "agreement": agreement(ranking, truth_ranking)}


def _pool_precision(opts: C2BOptions, retrieved) -> dict:
    from vlmkit.audit.evaluate import retrieval_precision
    from vlmkit.data.datasets import load_dataset

    dataset = load_dataset(opts.pool_labels)
    truth_of = {str(Path(s.path).resolve()): {**s.attributes, "label": s.label} for s in dataset.samples}
    return retrieval_precision(retrieved, truth_of, opts.target_attribute or "label")


def run_c2b(opts: C2BOptions) -> Path:
    """Propose, caption, retrieve, classify and score; write result.json, report.html, run.json."""
    from vlmkit.audit.c2b import audit
    from vlmkit.audit.classifiers import check_labels, load_classifier
    from vlmkit.data.templates import resolve_templates
    from vlmkit.models import load_model
    from vlmkit.retrieval.index import ImageIndex

    run = Run(opts.out, "c2b run", opts.model_dump(mode="json"), seed=opts.seed)
    classes = _check(opts)
    index = ImageIndex.load(opts.index)
    model_name = opts.model or index.meta.get("model")
    if not model_name:
        raise UserError(f"{opts.index}/index.json does not say which model built the index; pass --model")
    prompts = resolve_templates(opts.prompts)
    proposals, failures, template, template_source = _proposals(opts, classes, run)
    cache = opts.embedding_cache()
    with run.timer("load_models"):
        text_model = load_model(model_name, device=opts.resolved_device())
        if index.meta.get("fingerprint") not in (None, text_model.fingerprint):
            raise UserError(
                f"{model_name} is not the model that built {opts.index} ({index.meta.get('model')}); pass --model {index.meta.get('model')}"
            )
        classifier = load_classifier(
            opts.classifier, classes, templates=prompts, device=opts.resolved_device(), batch_size=opts.batch_size, cache=cache
        )
        check_labels(classifier, classes)
    with run.timer("audit"):
        result = audit(classifier, proposals, index, text_model, template=template, k=opts.k, settings=opts.settings(), cache=cache)
    detected = detected_biases(result.ranking)
    summary = {
        "task": opts.task, "classifier": opts.classifier, "classes": classes, "index": str(opts.index), "index_model": model_name,
        "proposals": proposals, "proposal_source": opts.llm or "file", "proposal_failures": failures,
        "template": template, "template_source": template_source, "k": opts.k, "settings": vars(opts.settings()),
        "ranking": result.ranking, "detected": detected, "groups": result.groups_table(),
    }
    if opts.annotations:
        with run.timer("evaluate"):
            summary["evaluation"] = _evaluate(opts, classifier, result.ranking, detected)
    if opts.pool_labels:
        summary["retrieval_precision"] = _pool_precision(opts, result.retrieved)
    opts.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(opts.out / "proposals.json", proposals)
    return run.finish(summary, report.page(summary))
