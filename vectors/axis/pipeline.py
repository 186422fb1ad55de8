"""The Assistant Axis pipeline: personas → responses → (judge) → activations → axis → analysis.

One function, :func:`run_axis`, runs the whole method on any supported model and returns an
:class:`AxisResult` (:mod:`vectors.axis.report` draws it; the demo's sizes live in
:mod:`workbench.demo.axis`). Every slow step is resumable: responses and judgements live in JSONL
caches under ``out/cache``, and persona vectors / held-out activations are reused from
``out/artifacts`` when the responses they were built from have not changed.

Persona vectors: one per role (mean over its extraction responses) and one per default prompt
(``default:0`` …), so the default prompts show up as separate points in persona space. The axis is
mean(default vectors) − mean(role vectors) at every layer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.artifacts import LayerVectors, inputs_hash, load_tensors, provenance, save_tensors
from workbench.cache import JsonlCache
from workbench.distributed import DEFAULT_CHUNK, SINGLE, ChunkStore, Shard, map_chunks, n_chunks
from workbench.errors import InputFormatError
from workbench.extract import extract_means, sharded_means
from workbench.generate import Sampling
from workbench.layers import check_layer, default_layer
from workbench.plan import RunPlan, plan_run
from workbench.responses import generate_api, generate_local, record_chats, response_cache, usable
from workbench.unavailable import Unavailable

from vectors.axis import space
from vectors.axis.responses import CACHE_PREFIX, RoleFilterResult, filter_by_judge, judge_role_responses, plan_items
from vectors.axis.personas import PersonaSet, load_personas, load_questions, select_questions

PAPER_SAMPLING = Sampling(max_new_tokens=48, temperature=0.7, top_p=0.9, seed=0)


@dataclass(frozen=True)
class AxisConfig:
    """What to run. Defaults: all personas, 8 extraction + 4 held-out questions, one sample,
    48 new tokens at the paper's temperature 0.7 / top_p 0.9 (under 10 minutes on 2 CPU cores
    for the shipped model)."""

    personas: Path | None = None
    questions: Path | None = None
    n_roles: int | None = None
    n_extraction: int | None = 8
    n_heldout: int | None = 4
    samples: int = 1
    all_role_prompts: bool = False
    sampling: Sampling = PAPER_SAMPLING
    batch_size: int = 64
    extract_batch_size: int = 16
    chunk: int = DEFAULT_CHUNK
    api_options: dict[str, Any] = field(default_factory=dict)  # ApiConfig fields: max_concurrency, requests_per_second
    layer: int | None = None
    api_url: str | None = None
    api_model: str | None = None
    judge_model: str | None = None
    judge_url: str | None = None
    min_passing: int = 1
    progress: bool = True


def axis_path(out_dir: str | Path) -> Path:
    """Where a run saves its Assistant Axis."""
    return Path(out_dir) / "artifacts" / "assistant_axis.safetensors"


def vector_unit(record: dict[str, Any], default_name: str) -> str:
    """Which persona vector a response contributes to: its role, or ``default:<prompt index>``."""
    return f"{default_name}:{record['prompt_index']}" if record["persona"] == default_name else record["persona"]


def persona_vectors(
    model, records: Sequence[dict[str, Any]], units: Sequence[str], layers: Sequence[int], batch_size: int = 16,
    chunk: int = DEFAULT_CHUNK, progress: bool = True, store: ChunkStore | None = None, shard: Shard = SINGLE,
) -> Float[Tensor, "unit layer d_model"] | None:
    """Mean response activation per unit, from per-response means computed ``chunk`` at a time
    (memory stays bounded by the chunk, not the run), over the ranks of ``shard``.

    Each chunk yields the sums of its units only; rank 0 adds them in chunk order, so any number of
    ranks gives the same vectors as one. Other ranks return None.
    """
    position = {name: i for i, name in enumerate(dict.fromkeys(units))}
    index = torch.tensor([position[u] for u in units])

    def compute(i: int) -> dict[str, Tensor]:
        part = slice(i * chunk, (i + 1) * chunk)
        means = extract_means(model, record_chats(model, records[part]), layers, batch_size=batch_size, progress=False)
        present, local = torch.unique(index[part], return_inverse=True)
        sums = torch.zeros(len(present), len(layers), model.cfg.d_model).index_add_(0, local, means)
        return {"units": present, "sums": sums, "counts": torch.bincount(local, minlength=len(present)).float()}

    results, _ = map_chunks(n_chunks(len(records), chunk), compute, store, shard, progress, desc="persona vectors")
    if results is None:
        return None
    sums = torch.zeros(len(position), len(layers), model.cfg.d_model)
    counts = torch.zeros(len(position))
    for part in results:
        sums.index_add_(0, part["units"], part["sums"])
        counts.index_add_(0, part["units"], part["counts"])
    return sums / counts[:, None, None]


def _cached_tensor(path: Path, key: str, compute, metadata: dict[str, Any]) -> tuple[Tensor | None, bool]:
    """The tensor saved at ``path`` when it was built from the same inputs (``key``), else
    ``compute()`` saved there with ``metadata``; also says whether it was reused. ``compute()``
    returns None on ranks other than 0 of a distributed run: nothing is saved then."""
    path = path.with_suffix(".safetensors")
    if path.is_file():
        tensors, saved = load_tensors(path)
        if saved.get("inputs_hash") == key and "values" in tensors:
            return tensors["values"], True
    values = compute()
    if values is None:
        return None, False
    save_tensors(path, {"values": values}, provenance(inputs_hash=key, **metadata))
    return values, False


def _chunk_store(cache_dir: Path, name: str, key: str, config: AxisConfig, layers: Sequence[int]) -> ChunkStore:
    """Where a computation's finished chunks live: valid for the same inputs, chunking and batching."""
    return ChunkStore(cache_dir / "chunks" / name, inputs_hash(key, config.chunk, config.extract_batch_size, list(layers)))


def _heldout_means(model, config: AxisConfig, heldout, cache_dir: Path, path: Path, meta: dict[str, Any],
                   shard: Shard) -> tuple[Tensor | None, bool]:
    key = inputs_hash(model.cfg.model_name, [r["key"] for r in heldout], [r["response"] for r in heldout])
    return _cached_tensor(
        path, key,
        lambda: sharded_means(model, len(heldout), lambda a, b: record_chats(model, heldout[a:b]), meta["layers"],
                              batch_size=config.extract_batch_size, chunk=config.chunk, progress=config.progress,
                              store=_chunk_store(cache_dir, "heldout_means", key, config, meta["layers"]), shard=shard),
        dict(method="held-out response means", keys=[r["key"] for r in heldout], **meta),
    )


@dataclass
class AxisResult:
    """Everything a run computed; ``summary`` (also ``to_summary()``) is what ``summary.json`` holds.

    A figure the run could not compute is an :class:`~workbench.unavailable.Unavailable` (``axis``,
    ``pca``; in ``summary`` ``{"unavailable": reason}`` in place of the value, every reason also in
    ``summary["unavailable"]``), so the run is still written and the report says why.
    """

    summary: dict[str, Any]
    axis: LayerVectors | Unavailable
    unit_names: list[str]
    unit_groups: list[str]
    vectors: Float[Tensor, "unit layer d_model"]
    heldout_projection: list[float] = field(default_factory=list)
    heldout_groups: list[str] = field(default_factory=list)
    pca: space.Pca | Unavailable | None = None
    judge: RoleFilterResult | None = None
    personas: PersonaSet | None = None

    def to_summary(self) -> dict[str, Any]:
        return self.summary

    @property
    def complete(self) -> bool:
        return not self.summary["unavailable"]


def _generate(model, config: AxisConfig, personas: PersonaSet, cache_dir: Path) -> list[dict[str, Any]]:
    questions = select_questions(load_questions(config.questions), config.n_extraction, config.n_heldout)
    # {model_name} in a prompt names the model that answers: the endpoint's when generating remotely.
    items = plan_items(personas, questions, config.api_model or model.cfg.model_name, config.samples, config.all_role_prompts)
    if config.api_url or config.api_model:
        from workbench.api import ApiConfig, ChatClient

        if not config.api_model:
            raise InputFormatError("--api needs --api-model NAME (the endpoint's model name)")
        client = ChatClient(ApiConfig.from_env(config.api_model, config.api_url, **config.api_options))
        cache = response_cache(cache_dir, CACHE_PREFIX, f"api-{config.api_model}", config.sampling)
        return generate_api(client, cache, items, config.sampling, progress=config.progress)
    cache = response_cache(cache_dir, CACHE_PREFIX, model.cfg.model_name, config.sampling)
    return generate_local(model, cache, items, config.sampling, config.batch_size, config.progress)


def plan_axis(model, config: AxisConfig, world_size: int = 1) -> RunPlan:
    """What :func:`run_axis` with ``config`` would cost (see :mod:`workbench.plan`): counted from the
    planned items and their prompts through the chat template, timed from measured throughput."""
    from workbench.chat import format_prompt

    personas = load_personas(config.personas).subset(config.n_roles)
    questions = select_questions(load_questions(config.questions), config.n_extraction, config.n_heldout)
    items = plan_items(personas, questions, config.api_model or model.cfg.model_name, config.samples, config.all_role_prompts)
    prompt_lengths = [len(format_prompt(model.tokenizer, item.messages())) for item in items]
    new = config.sampling.max_new_tokens
    n_heldout = sum(item.question.split == "heldout" for item in items)
    return plan_run(
        model, "axis", prompt_lengths=prompt_lengths, new_tokens=new, generation_batch=config.batch_size,
        extraction_batch=config.extract_batch_size,
        forward_tokens=sum(prompt_lengths) + len(items) * (new + 2),  # + the template's end-of-turn tokens
        held_rows=min(config.chunk, len(items)) + len(personas.roles) + len(personas.default.prompts) + n_heldout,
        judge_calls=len(items) if config.judge_model else 0, local=not (config.api_url or config.api_model),
        world_size=world_size,
    )


def _judge(config: AxisConfig, personas: PersonaSet, records, cache_dir: Path) -> RoleFilterResult | None:
    if not config.judge_model:
        return None
    from workbench.api import ApiConfig, ChatClient

    client = ChatClient(ApiConfig.from_env(config.judge_model, config.judge_url or config.api_url, **config.api_options))
    slug = "".join(c if c.isalnum() else "-" for c in config.judge_model)
    judgements = judge_role_responses(client, JsonlCache(cache_dir / f"judge_{slug}.jsonl"), personas, records,
                                      progress=config.progress)
    return filter_by_judge(personas, records, judgements, config.min_passing)


def _filter_note(config: AxisConfig, judge: RoleFilterResult | None) -> str:
    """What decided which responses survived, for the reasons of unavailable figures."""
    if judge is None:
        return "no judge configured: only failed or empty responses were dropped"
    dropped = ", ".join(judge.dropped_personas) or "none"
    return (f"judge {config.judge_model} keeps role responses scored 3 from roles with at least --min-passing "
            f"{config.min_passing} of them; roles dropped: {dropped} (pass rates in the judge table); "
            f"{judge.unparseable} unparseable answers, {judge.failed} failed requests")


def _survivors(records: Sequence[dict[str, Any]], default_name: str) -> dict[str, int]:
    defaults = sum(r["persona"] == default_name for r in records)
    return {"default": defaults, "roles": len(records) - defaults}


def run_axis(model, config: AxisConfig, out_dir: str | Path, shard: Shard = SINGLE) -> AxisResult | None:
    """Run the Assistant Axis method; writes caches and artifacts under ``out_dir``.

    In a distributed run (``shard`` from :func:`workbench.distributed.start`) rank 0 generates and
    judges while the others wait, every rank extracts its shard of chunks, and rank 0 merges,
    analyses and returns the result; the other ranks return None.

    Bad input raises before any generation. When the judge leaves too few responses, the figures
    that need them are :class:`~workbench.unavailable.Unavailable` and everything else is returned.
    """
    started = time.time()
    out_dir = Path(out_dir)
    cache_dir, artifact_dir = out_dir / "cache", out_dir / "artifacts"
    personas = load_personas(config.personas).subset(config.n_roles)
    n_layers = model.cfg.n_layers
    layer = check_layer(config.layer if config.layer is not None else default_layer(model), n_layers, "--layer")
    layers = list(range(n_layers))

    with shard.main_first():
        records = _generate(model, config, personas, cache_dir)
        judge = _judge(config, personas, records, cache_dir)
    kept = [r for r in records if usable(r) and (judge is None or r["key"] in judge.kept_keys)]
    default_name = personas.default.name
    extraction = [r for r in kept if r["split"] == "extraction"]
    heldout = [r for r in kept if r["split"] == "heldout"]
    surviving = {"extraction": _survivors(extraction, default_name), "heldout": _survivors(heldout, default_name)}
    units = [vector_unit(r, default_name) for r in extraction]
    unit_names = sorted(set(units), key=units.index)
    group_of = {p.name: p.group for p in (personas.default, *personas.roles)}
    unit_groups = [group_of[u.split(":")[0]] for u in unit_names]
    is_default_unit = torch.tensor([g == default_name for g in unit_groups], dtype=torch.bool)

    summary: dict[str, Any] = {
        "model": model.cfg.model_name,
        "layer": layer,
        "n_personas": len(personas.roles),
        "n_default_prompts": len(personas.default.prompts),
        "persona_source": personas.source,
        "n_responses_generated": len(records),
        "n_responses_used": len(kept),
        "n_extraction_responses": len(extraction),
        "n_heldout_responses": len(heldout),
        "surviving_responses": surviving,
        "judge": _judge_summary(config, judge),
        "sampling": dict(config.sampling.__dict__),
        "generator": f"api:{config.api_model}" if config.api_model else "local",
    }
    unavailable: dict[str, str] = {}

    def mark(names: Sequence[str], missing: Unavailable) -> Unavailable:
        for name in names:
            summary[name] = missing.to_summary()
            unavailable[name] = missing.reason
        return missing

    if is_default_unit.all() or not is_default_unit.any():
        missing = mark(AXIS_FIGURES, Unavailable(
            f"the axis needs default and role extraction responses; {surviving['extraction']['default']} default and "
            f"{surviving['extraction']['roles']} role responses survived ({_filter_note(config, judge)})"))
        summary |= {"unavailable": unavailable, "seconds": round(time.time() - started, 1)}
        empty = torch.zeros(0, n_layers, model.cfg.d_model)
        return AxisResult(summary, missing, unit_names, unit_groups, empty, pca=missing, judge=judge, personas=personas)

    meta = dict(model=model.cfg.model_name, layers=layers, hook="blocks.{L}.hook_resid_post")
    vec_key = inputs_hash(model.cfg.model_name, [r["key"] for r in extraction], [r["response"] for r in extraction])
    vectors, reused_vectors = _cached_tensor(
        artifact_dir / "persona_vectors", vec_key,
        lambda: persona_vectors(model, extraction, units, layers, config.extract_batch_size, config.chunk, config.progress,
                                store=_chunk_store(cache_dir, "persona_vectors", vec_key, config, layers), shard=shard),
        dict(method="persona vectors: mean response activation per persona", units=unit_names, groups=unit_groups,
             n_responses=len(extraction), **meta),
    )
    if vectors is None:  # a rank other than 0: its shard of the held-out means too, then rank 0 goes on alone
        if heldout:
            _heldout_means(model, config, heldout, cache_dir, artifact_dir / "heldout_means", meta, shard)
        return None
    axis = LayerVectors(space.assistant_axis(vectors[is_default_unit], vectors[~is_default_unit]), provenance(
        method="assistant_axis = mean(default) - mean(roles)", default_units=[u for u, d in zip(unit_names, is_default_unit) if d],
        n_role_units=int((~is_default_unit).sum()), persona_source=personas.source, default_layer=layer,
        inputs_hash=vec_key, **meta))
    axis.save(artifact_dir / "assistant_axis")
    at_layer = vectors[:, layer]
    cosines = space.axis_cosines(at_layer, axis.at(layer))
    ranking = sorted(zip(unit_names, unit_groups, cosines.tolist()), key=lambda t: t[2])
    summary |= {"axis_cosine": {name: round(c, 5) for name, _, c in ranking}, "axis_norm_at_layer": float(axis.at(layer).norm())}

    fit: space.Pca | Unavailable
    if len(unit_names) < 3:
        fit = mark(PCA_FIGURES, Unavailable(
            f"PCA needs at least 3 persona vectors; {len(unit_names)} survived ({_filter_note(config, judge)})"))
    else:
        fit = space.pca(at_layer, orient_to=axis.at(layer))
        summary |= {
            "pc1_explained_variance": float(fit.explained_variance_ratio[0]),
            "explained_variance": [round(float(v), 5) for v in fit.explained_variance_ratio[:10]],
            "pc1_axis_cosine": float(torch.nn.functional.cosine_similarity(fit.components[0], axis.at(layer), dim=0)),
        }

    held_projection, held_groups, reused_heldout = torch.zeros(0), [], False
    if not heldout:
        mark(HELDOUT_FIGURES + ("heldout_mean_projection_by_group",), Unavailable(
            f"no held-out response survived ({_filter_note(config, judge)})"))
    else:
        held_means, reused_heldout = _heldout_means(model, config, heldout, cache_dir, artifact_dir / "heldout_means",
                                                    meta, shard)
        held_projection = space.project(held_means[:, layer], axis.at(layer))
        held_groups = [group_of[r["persona"]] for r in heldout]
        summary["heldout_mean_projection_by_group"] = space.mean_by_group(held_projection, held_groups)
        if not surviving["heldout"]["default"] or not surviving["heldout"]["roles"]:
            mark(HELDOUT_FIGURES, Unavailable(
                f"held-out AUC needs default and role responses; {surviving['heldout']['default']} default and "
                f"{surviving['heldout']['roles']} role held-out responses survived ({_filter_note(config, judge)})"))
        else:
            auc_per_layer = space.heldout_auc_per_layer(held_means, [g == default_name for g in held_groups], axis.vectors)
            auc_by_group = space.heldout_auc_by_group(held_means, held_groups, axis.vectors, personas.default.group)
            summary |= {
                "heldout_auc": auc_per_layer[layer],
                "heldout_auc_per_layer": {str(i): round(a, 5) for i, a in enumerate(auc_per_layer)},
                "heldout_auc_by_group": {g: aucs[layer] for g, aucs in auc_by_group.items()},
                "heldout_auc_per_layer_by_group": {g: [round(a, 5) for a in aucs] for g, aucs in auc_by_group.items()},
            }
    summary |= {
        "reused": {"persona_vectors": reused_vectors, "heldout_means": reused_heldout},
        "unavailable": unavailable,
        "seconds": round(time.time() - started, 1),
    }
    return AxisResult(summary, axis, unit_names, unit_groups, vectors, held_projection.tolist(), held_groups, fit,
                      judge, personas)


PCA_FIGURES = ("pc1_explained_variance", "explained_variance", "pc1_axis_cosine")
HELDOUT_FIGURES = ("heldout_auc", "heldout_auc_per_layer", "heldout_auc_by_group", "heldout_auc_per_layer_by_group")
AXIS_FIGURES = ("axis_cosine", "axis_norm_at_layer", *PCA_FIGURES, *HELDOUT_FIGURES, "heldout_mean_projection_by_group")


def _judge_summary(config: AxisConfig, judge: RoleFilterResult | None) -> dict[str, Any]:
    if judge is None:
        return {"model": None, "note": "no judge configured: all responses kept"}
    return {
        "model": config.judge_model, "min_passing": config.min_passing, "kept_personas": list(judge.kept_personas),
        "dropped_personas": list(judge.dropped_personas), "unparseable": judge.unparseable, "failed": judge.failed,
        "pass_rates": {p: r["pass_rate"] for p, r in judge.pass_rates.items()},
        "table": [pass_rate_row(p, r) for p, r in judge.pass_rates.items()],
    }


def pass_rate_row(persona: str, rates: dict[str, Any]) -> dict[str, Any]:
    """One role's row of the pass-rate table (its extraction responses): the same columns for the
    workbench's own judge template and for an assistant-axis role's ``eval_prompt``."""
    return {"persona": persona, "judged": rates["judged"], "scored 3": rates["passed"],
            "scored 0-2": rates["scored"] - rates["passed"], "unparseable": rates["unparseable"],
            "failed": rates["failed"], "pass rate": rates["pass_rate"]}
