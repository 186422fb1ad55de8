"""The Persona Vectors pipeline for one trait: responses → vectors → steering sweep → monitoring.

Stages share one output folder: responses, judgements and sweep scores are cached under
``out/cache`` (a re-run recomputes nothing it has), vectors are saved under ``out/artifacts``. The
offline metrics of :mod:`workbench.metrics` are always computed; an LLM judge filters the pairs and
scores monitoring when a judge client is given. :func:`run_traits` runs several traits and returns a
:class:`TraitsResult`; :mod:`vectors.traits.report` draws it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.api import ChatClient
from workbench.artifacts import LayerVectors, load_vectors
from workbench.cache import JsonlCache
from workbench.distributed import DEFAULT_CHUNK, SINGLE, Shard
from workbench.generate import Sampling
from workbench.layers import sweep_layers
from workbench.metrics import TraitExample
from workbench.plan import RunPlan, plan_run
from workbench.responses import generate_api, generate_local, record_chats, response_cache, usable
from workbench.unavailable import Unavailable

from vectors.axis.pipeline import axis_path
from vectors.axis.space import cosine_matrix
from vectors.traits.data import TraitData
from vectors.traits.monitor import likelihood_trait_scores, monitor
from vectors.traits.responses import (
    PairThresholds, PromptTemplates, cache_prefix, contrastive_pairs, judge_records, plan_items,
)
from vectors.traits.steering import SweepConfig, activation_norm, choose_setting, run_sweep, summarize_layer
from vectors.traits.extraction import extract_trait_vectors

SWEEP_COLUMNS = ("layer", "coefficient", "direction", "trait_metric", "stderr", "perplexity", "repeated_ngram_share", "distinct_2")


@dataclass(frozen=True)
class TraitConfig:
    """How much to generate and how to sweep. Defaults follow the paper where the small model allows."""

    n_extract_questions: int | None = None
    n_eval_questions: int | None = None
    samples: int = 1
    all_instructions: bool = True
    sampling: Sampling = Sampling(max_new_tokens=48, temperature=1.0)
    templates: PromptTemplates = PromptTemplates()
    pair_thresholds: PairThresholds = PairThresholds()
    n_examples: int | None = None
    sweep_layers: tuple[int, ...] | None = None
    sweep: SweepConfig = field(default_factory=lambda: SweepConfig(layers=()))
    chunk: int = DEFAULT_CHUNK


@dataclass
class Clients:
    """Optional API clients: ``generator`` writes the responses, ``judge`` scores them."""

    generator: ChatClient | None = None
    judge: ChatClient | None = None


@dataclass
class TraitRun:
    """One trait's pipeline over a model and an output folder."""

    model: Any
    trait: TraitData
    out_dir: Path
    config: TraitConfig = TraitConfig()
    clients: Clients = field(default_factory=Clients)
    progress: bool = True
    shard: Shard = SINGLE

    @property
    def cache_dir(self) -> Path:
        return self.out_dir / "cache"

    def responses(self, split: str, n_questions: int | None) -> list[dict[str, Any]]:
        """Generated (and, with a judge, judged) records of ``split``; cached."""
        c = self.config
        items = plan_items(self.trait, split, n_questions, c.samples, c.all_instructions, c.templates)
        generator = self.clients.generator
        name = generator.config.model if generator else self.model.cfg.model_name
        prefix = cache_prefix(self.trait.name)
        cache = response_cache(self.cache_dir, prefix, name, c.sampling, c.templates)
        if generator:
            records = generate_api(generator, cache, items, c.sampling, progress=self.progress,
                                   description=f"generate {self.trait.name} (API)")
        else:
            records = generate_local(self.model, cache, items, c.sampling, progress=self.progress,
                                     description=f"generate {self.trait.name}")
        if self.clients.judge:
            judge_cache = response_cache(self.cache_dir, f"{prefix}_judge", self.clients.judge.config.model, c.sampling, c.templates)
            records = judge_records(self.clients.judge, judge_cache, self.trait, records, self.progress)
        return records

    def extract(self) -> tuple[dict[str, LayerVectors] | Unavailable | None, list[tuple[dict, dict]]]:
        """Trait vectors (response, prompt, prompt_last) from the filtered pairs, saved as artifacts;
        :class:`Unavailable` saying how many responses were generated and usable when no pair is left.
        In a distributed run rank 0 generates first, every rank extracts its shard, rank 0 merges
        (the other ranks get None)."""
        with self.shard.main_first():
            records = self.responses("extract", self.config.n_extract_questions)
        judged = self.clients.judge is not None
        pairs = contrastive_pairs(records, judged, self.config.pair_thresholds)
        if not pairs:
            t = self.config.pair_thresholds
            rule = (f"the judge's filter (positive trait ≥ {t.pos_min:g}, negative < {t.neg_max:g}, coherence ≥ "
                    f"{t.coherence_min:g}; {sum(r.get('trait_score') is None for r in records if usable(r))} usable "
                    "responses have no trait score)" if judged else "both sides of a pair must be usable")
            return Unavailable(f"no contrastive pair left: {sum(usable(r) for r in records)} of {len(records)} "
                               f"responses usable; {rule}"), pairs
        vectors = extract_trait_vectors(self.model, pairs, self.trait.name, progress=self.progress, chunk=self.config.chunk,
                                        store_dir=self.cache_dir / "chunks", shard=self.shard)
        if vectors is None:
            return None, pairs
        for select, vector in vectors.items():
            vector.save(trait_vector_path(self.out_dir, self.trait.name, select))
        return vectors, pairs

    def examples(self) -> tuple[TraitExample, ...]:
        """Held-out examples for the offline metric: the trait's own, else the model's eval responses."""
        if self.trait.heldout:
            return self.trait.heldout[: self.config.n_examples]
        pairs = contrastive_pairs(self.responses("eval", self.config.n_eval_questions), False)
        return tuple(TraitExample(p["question"], p["response"], n["response"]) for p, n in pairs)[: self.config.n_examples]

    def layers(self) -> tuple[int, ...]:
        return self.config.sweep_layers or sweep_layers(self.model.cfg.n_layers)

    def reading_layer(self) -> int:
        """Where the vector is read (monitoring, geometry) when no sweep chose a layer: the middle
        sweep layer (``n_layers // 2`` by default, see :func:`workbench.layers.sweep_layers`)."""
        layers = self.layers()
        return layers[len(layers) // 2]

    def steer(self, vector: LayerVectors, pairs: list[tuple[dict, dict]]) -> dict[str, Any]:
        """The layer × coefficient sweep with its random band, the chosen setting and the checks."""
        sweep = replace(self.config.sweep, layers=self.layers())
        chats = record_chats(self.model, [r for pair in pairs[:8] for r in pair])
        norms = {layer: activation_norm(self.model, chats, layer) for layer in sweep.layers}
        cache = JsonlCache(self.cache_dir / f"trait_{self.trait.name}_sweep.jsonl")
        rows = run_sweep(self.model, cache, self.trait.name, vector, norms, self.examples(),
                         self.trait.eval_questions, sweep, self.progress)
        chosen = choose_setting(rows, sweep)
        layer_stats = [summarize_layer(rows, layer, sweep) for layer in sweep.layers]
        best = next((s for s in layer_stats if s["layer"] == chosen["layer"]), layer_stats[0])
        return {
            "activation_norms": norms, "chosen": chosen, "layers": layer_stats, "steering_slope": best["slope"],
            "random_slope_max_abs": best["random_slope_max_abs"],
            "sweep": [{k: r.get(k) for k in (*SWEEP_COLUMNS, "sample_response")} for r in rows],
            "bounds": {"max_perplexity_ratio": sweep.max_perplexity_ratio, "max_repeated_share": sweep.max_repeated_share},
        }

    def monitor(self, vector: LayerVectors, layer: int) -> dict[str, Any]:
        """Projection vs trait score on the evaluation questions (judge score, else likelihood score)."""
        records = [r for r in self.responses("eval", self.config.n_eval_questions) if usable(r)]
        if self.clients.judge:
            scores = [r.get("trait_score") for r in records]
            source = "judge"
        else:
            pair = self.trait.instructions[0]
            t = self.config.templates
            scores = likelihood_trait_scores(
                self.model, records, t.system(self.trait.name, "pos", pair.pos), t.system(self.trait.name, "neg", pair.neg),
                self.progress,
            )
            source = "likelihood (pos vs neg system prompt)"
        return monitor(self.model, records, scores, vector, layer, self.progress) | {"score_source": source}

    def run(
        self, stages: tuple[str, ...] = ("steer", "monitor"), vector: LayerVectors | None = None
    ) -> tuple[dict[str, Any], dict[str, LayerVectors]] | None:
        """Extract (always: its responses also set the activation norms), then ``stages``; an
        imported ``vector`` replaces the extracted response vector for steering and monitoring.
        Returns the summary fragment and the vectors (None on ranks other than 0: rank 0 steers
        and monitors alone)."""
        started = time.time()
        out: dict[str, Any] = {"trait": self.trait.name, "judged": self.clients.judge is not None, "unavailable": {}}
        extracted, pairs = self.extract()
        if extracted is None or not self.shard.is_main:
            return None
        vectors = {} if isinstance(extracted, Unavailable) else extracted
        out |= {"n_pairs": len(pairs), "artifacts": [str(trait_vector_path(Path(), self.trait.name, s)) for s in vectors]}
        if isinstance(extracted, Unavailable):
            out["unavailable"]["vectors"] = extracted.reason
        if vector is not None:
            vectors = {**vectors, "imported": vector}
            out["vector_source"] = vector.metadata.get("source", "imported")
        vector = vectors.get("imported", vectors.get("response"))
        if "steer" in stages:
            if not pairs:  # the sweep's activation norms are measured on the extraction pairs
                out["unavailable"]["steering"] = f"the sweep needs extraction pairs: {extracted.reason}"
            else:
                out["steering"] = self.steer(vector, pairs)
                out["chosen_layer"] = out["steering"]["chosen"]["layer"]
        if "monitor" in stages:
            if vector is None:
                out["unavailable"]["monitoring"] = f"no trait vector: {extracted.reason}"
            else:
                chosen = out.get("chosen_layer")
                out["monitoring"] = self.monitor(vector, chosen if chosen is not None else self.reading_layer())
                if "unavailable" in out["monitoring"]:
                    out["unavailable"]["monitoring r"] = out["monitoring"]["unavailable"]
        if pairs:
            first = pairs[0]
            out["example"] = {"question": first[0]["question"], "positive": first[0]["response"], "negative": first[1]["response"]}
        out["seconds"] = round(time.time() - started, 1)
        return out, vectors


def trait_vector_path(out_dir: Path, trait: str, select: str = "response") -> Path:
    """Where a run saves a trait's vector (``select``: response, prompt or prompt_last)."""
    return Path(out_dir) / "artifacts" / f"trait_{trait}_{select}.safetensors"


def find_assistant_axis(out_dir: Path, n_layers: int, d_model: int) -> LayerVectors | None:
    """The Assistant Axis an axis run (:mod:`vectors.axis.pipeline`) wrote into the same folder, when it
    covers every layer of this model."""
    path = axis_path(out_dir)
    if not path.is_file():
        return None
    axis = load_vectors(path)
    return axis if tuple(axis.vectors.shape) == (n_layers, d_model) else None


def geometry(vectors: dict[str, LayerVectors], layer: int, axis: LayerVectors | None = None):
    """Names and cosine matrix of the trait vectors (and the axis, named ``assistant_axis``) at ``layer``."""
    named = dict(vectors) | ({"assistant_axis": axis} if axis is not None else {})
    names = list(named)
    return names, cosine_matrix(torch.stack([named[n].at(layer) for n in names]))


def extraction_prompt_lengths(model, traits: list[TraitData], config: TraitConfig) -> list[int]:
    """Token lengths, through the chat template, of every prompt trait extraction generates from."""
    from workbench.chat import format_prompt

    from vectors.traits.responses import plan_items

    return [
        len(format_prompt(model.tokenizer, item.messages())) for trait in traits
        for item in plan_items(trait, "extract", config.n_extract_questions, config.samples, config.all_instructions,
                               config.templates)
    ]


def plan_traits(model, traits: list[TraitData], config: TraitConfig = TraitConfig(), clients: Clients | None = None,
                stages: tuple[str, ...] = ("steer", "monitor"), world_size: int = 1) -> RunPlan:
    """What extraction for ``traits`` would cost (see :mod:`workbench.plan`): both sides of every
    extraction question, three readings each (response, prompt, last prompt token). The steering
    sweep and monitoring that ``stages`` add are noted, not counted."""
    clients = clients or Clients()
    prompt_lengths = extraction_prompt_lengths(model, traits, config)
    new = config.sampling.max_new_tokens
    notes = (f"not counted: {', '.join(stages)} (run after extraction on rank 0)",) if stages else ()
    return plan_run(
        model, "traits", prompt_lengths=prompt_lengths, new_tokens=new, generation_batch=8, extraction_batch=16,
        forward_tokens=sum(prompt_lengths) * 3 + len(prompt_lengths) * (new + 2),
        held_rows=min(config.chunk, len(prompt_lengths)) + len(prompt_lengths),
        judge_calls=len(prompt_lengths) if clients.judge else 0, local=clients.generator is None,
        world_size=world_size, notes=notes,
    )


@dataclass
class TraitsResult:
    """Each trait's summary fragment, the vector each one steered and monitored with (its response
    vector, or the imported one), and the cosine geometry of those vectors (and the axis) at one layer."""

    traits: dict[str, dict[str, Any]]
    vectors: dict[str, LayerVectors]
    geometry_layer: int
    geometry_names: list[str]
    geometry_cosine: Float[Tensor, "n n"] | None
    geometry_unavailable: Unavailable | None = None

    def to_summary(self) -> dict[str, Any]:
        if self.geometry_unavailable is not None:
            return {"traits": self.traits, "geometry": self.geometry_unavailable.to_summary()}
        return {"traits": self.traits, "geometry": {"layer": self.geometry_layer, "names": self.geometry_names,
                                                    "cosine": self.geometry_cosine.tolist()}}


def run_traits(
    model, traits: list[TraitData], out_dir: Path, config: TraitConfig = TraitConfig(),
    clients: Clients | None = None, stages: tuple[str, ...] = ("steer", "monitor"),
    vector: LayerVectors | None = None, axis: LayerVectors | None = None, progress: bool = True,
    shard: Shard = SINGLE,
) -> TraitsResult | None:
    """Run the pipeline for each trait, then the geometry of their vectors (with ``axis`` when given).
    None on ranks other than 0 of a distributed run, which only extract their shards."""
    summaries, response_vectors, runs = {}, {}, []
    for trait in traits:
        runs.append(TraitRun(model, trait, Path(out_dir), config, clients or Clients(), progress, shard=shard))
        done = runs[-1].run(stages, vector)
        if done is None:
            continue
        summary, vectors = done
        summaries[trait.name] = summary
        if vectors:
            response_vectors[trait.name] = vectors.get("imported", vectors.get("response"))
    if not shard.is_main:
        return None
    chosen = [s.get("chosen_layer") for s in summaries.values() if s.get("chosen_layer") is not None]
    layer = chosen[0] if chosen else runs[0].reading_layer()
    if not response_vectors:
        missing = Unavailable("no trait has a vector (see each trait's unavailable figures)")
        return TraitsResult(summaries, response_vectors, layer, [], None, missing)
    names, matrix = geometry(response_vectors, layer, axis)
    return TraitsResult(summaries, response_vectors, layer, names, matrix)
