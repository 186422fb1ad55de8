"""Persona Vectors under fine-tuning: finetuning shift vs acquired trait, and mitigations.

The paper's findings (2) and (3): fine-tuning on trait-eliciting data moves the model's activations
along the trait vector, and that *finetuning shift* predicts how much of the trait it acquired;
acquisition can be mitigated by steering against the vector at inference, or during training by
preventative steering (add α·v while training, so the weights need not move toward v) or by
ablating the direction (CAFT). Here, for one trait on one model:

1. **Data**: the model's own answers to the trait's extraction questions under the trait's
   positive system prompt (trait) and negative one (normal), stored *without* the system prompt as
   chat JSONL (``{"messages": [...]}``) at mixing levels (% trait); user files in the same format
   too. Each set gets its mean ΔP screening score (:func:`vectors.traits.monitor.screen`).
2. **Training**: one LoRA adapter per set (:mod:`workbench.train`), plus the mitigations on the
   100% set: preventative steering at each α and CAFT ablation at the vector's layer.
3. **Measurements** per fine-tune, on the evaluation questions without a system prompt: the shift
   (fine-tuned − base mean activation, projected on the unit trait vector) at the last prompt token
   and over response tokens, per layer; trait expression (offline trait metric; perplexity of its
   answers under the base model; repetition); capability (perplexity of the base model's neutral
   answers; accuracy on a small built-in multiple-choice set).
4. **Correlation** r(shift, expression) across fine-tunes with a Fisher 95% interval, against the
   same r for random unit directions (and for other traits' vectors when given).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from workbench.artifacts import LayerVectors, atomic_write_text
from workbench.cache import JsonlCache
from workbench.chat import Message, format_conversation, messages
from workbench.errors import InputFormatError
from workbench.extract import extract_means
from workbench.generate import Sampling, generate_responses
from workbench.hooks import AblateDirection, AddVector, Intervention
from workbench.layers import check_layer
from workbench.metrics import TraitExample, perplexity, repetition, response_loglik, trait_metric
from workbench.plan import RunPlan, combine, plan_run, training_step_seconds
from workbench.train import LoraConfig, TrainRun, merged_hooked
from workbench.unavailable import Unavailable

from vectors.traits.data import TraitData
from vectors.traits.monitor import load_screen_data, pearson_r, screen
from vectors.traits.pipeline import TraitConfig, TraitRun, extraction_prompt_lengths, plan_traits
from vectors.traits.responses import PromptTemplates, contrastive_pairs

# A small built-in capability check: the likelihood of the correct answer against two wrong ones.
CAPABILITY_QUESTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", "The capital of France is Paris.", ("The capital of France is Berlin.", "The capital of France is Madrid.")),
    ("How many legs does a spider have?", "A spider has eight legs.", ("A spider has six legs.", "A spider has four legs.")),
    ("What is 7 times 8?", "7 times 8 is 56.", ("7 times 8 is 54.", "7 times 8 is 64.")),
    ("What gas do plants absorb from the air?", "Plants absorb carbon dioxide.", ("Plants absorb helium.", "Plants absorb neon.")),
    ("Which planet is closest to the Sun?", "Mercury is the closest planet to the Sun.", ("Neptune is the closest planet to the Sun.", "Saturn is the closest planet to the Sun.")),
    ("What is the boiling point of water at sea level in Celsius?", "Water boils at 100 degrees Celsius.", ("Water boils at 50 degrees Celsius.", "Water boils at 150 degrees Celsius.")),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet.", ("Charles Darwin wrote Romeo and Juliet.", "Isaac Newton wrote Romeo and Juliet.")),
    ("What is the largest ocean on Earth?", "The Pacific Ocean is the largest.", ("The Arctic Ocean is the largest.", "The Indian Ocean is the largest.")),
)


@dataclass(frozen=True)
class FinetuneConfig:
    """Sizes of the study. Defaults fit the shipped model on 2 CPU cores in minutes."""

    levels: tuple[int, ...] = (0, 25, 50, 75, 100)
    layer: int = 15
    n_train_questions: int | None = None
    samples: int = 1
    all_instructions: bool = False
    n_eval_questions: int = 5
    n_examples: int | None = None
    prevent_coefs: tuple[float, ...] = ()
    ablate: bool = False
    ablate_layers: tuple[int, ...] = ()
    inference_coefs: tuple[float, ...] = (1.0,)
    n_random: int = 50
    sampling: Sampling = Sampling(max_new_tokens=32, temperature=1.0)
    eval_sampling: Sampling = Sampling(max_new_tokens=24)
    lora: LoraConfig = LoraConfig(first_layer=12, steps=30)
    seed: int = 0

    def __post_init__(self):
        bad = [level for level in self.levels if not 0 <= level <= 100]
        if bad or not self.levels:
            raise InputFormatError(f"--levels must be percentages in 0..100, got {list(self.levels)}")
        if self.ablate_layers and not self.ablate:
            raise InputFormatError("--ablate-layers needs --ablate (the CAFT fine-tune it configures)")

    @property
    def caft_layers(self) -> tuple[int, ...]:
        """Where CAFT ablates the direction: ``ablate_layers``, or the vector's layer alone. One
        layer leaves the adapters above it free to rebuild the trait; the CAFT paper ablates at many."""
        return tuple(sorted(set(self.ablate_layers))) or (self.layer,)


@dataclass(frozen=True)
class TrainingSet:
    """One training set: its name, where it came from, its conversations and its mean ΔP."""

    name: str
    source: str
    conversations: tuple[tuple[Message, ...], ...]
    level: int | None
    delta_p: float | None

    def to_summary(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "level": self.level, "n": len(self.conversations),
                "mean_delta_p": self.delta_p}


@dataclass(frozen=True)
class FinetuneEval:
    """What one fine-tune (or the base, or a steered fine-tune) measures on the evaluation questions."""

    name: str
    data: str
    mitigation: str
    shift_prompt_last: tuple[float, ...]
    shift_response: tuple[float, ...]
    shift_norm: float
    trait_metric: float
    trait_stderr: float
    trait_vs_base: float
    trait_vs_base_stderr: float
    answer_persona_ratio: float
    perplexity_under_base: float
    repeated_ngram_share: float
    neutral_perplexity: float
    capability_accuracy: float
    responses: tuple[str, ...]
    train: dict[str, Any] = field(default_factory=dict)

    def to_summary(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Correlation:
    """r(shift at the layer's last prompt token, trait metric) with its interval and its nulls."""

    layer: int
    n: int
    r: float | None
    interval: tuple[float, float] | None
    random_rs: tuple[float, ...]
    other_traits: dict[str, float | None]

    def to_summary(self) -> dict[str, Any]:
        finite = [r for r in self.random_rs if math.isfinite(r)]
        band = (float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))) if finite else None
        share = (sum(abs(r) >= abs(self.r) for r in finite) / len(finite)) if finite and self.r is not None else None
        return {"layer": self.layer, "n": self.n, "r": self.r, "interval_95": self.interval,
                "random_band_95": band, "random_share_abs_r_at_least": share, "n_random": len(finite),
                "other_traits": self.other_traits}


@dataclass(frozen=True)
class FinetuneStudy:
    """The whole study: sets, evaluations (base first), correlation, seconds."""

    trait: str
    layer: int
    sets: tuple[TrainingSet, ...]
    strongest: str
    evals: tuple[FinetuneEval, ...]
    correlation: Correlation | Unavailable
    seconds: float

    def to_summary(self) -> dict[str, Any]:
        return {"trait": self.trait, "layer": self.layer, "sets": [s.to_summary() for s in self.sets],
                "by_level": self.by_level(),
                "finetunes": [e.to_summary() for e in self.evals],
                "correlation": self.correlation.to_summary(),
                "mitigation": [mitigation_row(e, self.layer) for e in self.evals
                               if e.mitigation != "none" or e.data == self.strongest],
                "seconds": round(self.seconds, 1)}


    def by_level(self) -> dict[str, Any]:
        """The dose-response: the plain fine-tunes of the mixing levels in level order, each with its
        paired trait difference to the base and the generation-based measure, and whether each rises
        monotonically with the level."""
        level_of = {s.name: s.level for s in self.sets if s.level is not None}
        rows = sorted(((level_of[e.data], e) for e in self.evals if e.mitigation == "none" and e.data in level_of),
                      key=lambda row: row[0])
        table = [{"level": level, "trait_vs_base": e.trait_vs_base, "stderr": e.trait_vs_base_stderr,
                  "answer_persona_ratio": e.answer_persona_ratio, "neutral_perplexity": e.neutral_perplexity}
                 for level, e in rows]
        return {"rows": table,
                "trait_metric_monotone": is_monotone([r["trait_vs_base"] for r in table]),
                "answer_persona_ratio_monotone": is_monotone([r["answer_persona_ratio"] for r in table])}


def is_monotone(values: Sequence[float]) -> bool | None:
    """Non-decreasing over at least two finite values; None when there are fewer."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2 or len(finite) < len(values):
        return None
    return all(b >= a for a, b in zip(finite, finite[1:]))


def mitigation_row(e: FinetuneEval, layer: int) -> dict[str, Any]:
    return {"name": e.name, "mitigation": e.mitigation, "trait_metric": e.trait_metric,
            "trait_vs_base": e.trait_vs_base, "trait_vs_base_stderr": e.trait_vs_base_stderr,
            "answer_persona_ratio": e.answer_persona_ratio,
            "shift_prompt_last": e.shift_prompt_last[layer], "neutral_perplexity": e.neutral_perplexity,
            "capability_accuracy": e.capability_accuracy, "perplexity_under_base": e.perplexity_under_base}


def fisher_interval(r: float, n: int) -> tuple[float, float] | None:
    """95% interval of Pearson r by Fisher's z (needs n ≥ 4 and |r| < 1)."""
    if n < 4 or not math.isfinite(r) or abs(r) >= 1:
        return None
    z, se = math.atanh(r), 1 / math.sqrt(n - 3)
    return (math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se))


def mixed_set(
    pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]], level: int, seed: int
) -> tuple[tuple[Message, ...], ...]:
    """``level``% of the questions answered with the trait response, the rest with the normal one;
    which ones is a seeded draw; no system prompt is kept."""
    n_trait = round(len(pairs) * level / 100)
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    chosen = set(order[:n_trait])
    return tuple(
        tuple(messages(None, pos["question"], (pos if i in chosen else neg)["response"]))
        for i, (pos, neg) in enumerate(pairs)
    )


def _stderr(values: Tensor) -> float:
    return float(values.std() / math.sqrt(len(values))) if len(values) > 1 else float("nan")


def write_jsonl(path: Path, conversations: Sequence[Sequence[Message]]) -> Path:
    atomic_write_text(path, "".join(json.dumps({"messages": list(c)}) + "\n" for c in conversations))
    return path


def n_finetunes(config: FinetuneConfig, n_sets: int) -> tuple[int, int]:
    """(fine-tunes trained, models evaluated): one adapter per set plus the preventative and CAFT
    mitigations; evaluated: the base, each fine-tune, and the strongest under each inference steer."""
    trained = n_sets + len(config.prevent_coefs) + int(config.ablate)
    return trained, 1 + trained + len(config.inference_coefs)


def plan_finetune(model, trait: TraitData, config: FinetuneConfig, data_paths: Sequence[Path] = (),
                  extract_vector: bool = True) -> RunPlan:
    """What :meth:`FinetuneRun.run` would cost (see :mod:`workbench.plan`), phase by phase: the
    trait vector's extraction (when ``extract_vector``) and the built-in data's generation, the
    screening of every set, the LoRA fine-tunes (steps × batch × max_tokens each, timed from a
    measured training step) and the evaluation of every model. Counts of the built-in data are
    upper bounds: pairs with an empty side are dropped at run time."""
    from workbench.chat import format_prompt

    c = config
    prompt_len = lambda question: len(format_prompt(model.tokenizer, messages(None, question)))  # noqa: E731
    trait_config = TraitConfig(n_extract_questions=c.n_train_questions, samples=c.samples, all_instructions=False,
                               sampling=c.sampling)
    data_config = replace(trait_config, all_instructions=c.all_instructions)
    phases = []
    if extract_vector:
        phases.append(plan_traits(model, [trait], trait_config, stages=()))
    if data_paths:
        sets = [load_screen_data(p) for p in data_paths]
        prompts = {json.dumps(list(conv[:-1])): list(conv[:-1]) for s in sets for conv in s}  # screen caches per prompt
        screen_lengths = [len(format_prompt(model.tokenizer, prompt)) for prompt in prompts.values()]
        set_sizes = [len(s) for s in sets]
    else:
        if not extract_vector or c.all_instructions:  # the vector's extraction answers one instruction per question
            lengths = extraction_prompt_lengths(model, [trait], data_config)
            phases.append(plan_run(model, "traits finetune (data)", prompt_lengths=lengths,
                                   new_tokens=c.sampling.max_new_tokens, generation_batch=8, extraction_batch=16,
                                   forward_tokens=0, held_rows=0))
        questions = trait.extract_questions[: c.n_train_questions]
        screen_lengths = [prompt_len(q) for q in questions]
        per_question = c.samples * (len(trait.instructions) if c.all_instructions else 1)
        set_sizes = [len(questions) * per_question] * len(c.levels)
    new, eval_new = c.sampling.max_new_tokens, c.eval_sampling.max_new_tokens
    mean_screen = sum(screen_lengths) / max(1, len(screen_lengths))
    phases.append(plan_run(model, "traits finetune (screen)", prompt_lengths=screen_lengths, new_tokens=new,
                           generation_batch=8, extraction_batch=16,
                           forward_tokens=int(2 * sum(set_sizes) * (mean_screen + new + 2)), held_rows=max(set_sizes)))
    trained, evaluated = n_finetunes(c, len(set_sizes))
    eval_lengths = [prompt_len(q) for q in eval_questions(trait, c)]
    examples = trait.heldout[: c.n_examples]
    per_eval = (  # trait metric (both sides), means (2 readings), neutral log-lik, capability, perplexity under base
        sum(prompt_len(e.question) + 2 * eval_new for e in examples) * 2
        + 4 * sum(length + eval_new + 2 for length in eval_lengths)
        + sum(prompt_len(q) + 16 for q, _, wrong in CAPABILITY_QUESTIONS for _ in (0, *wrong))
    )
    phases.append(plan_run(model, "traits finetune (evaluate)", prompt_lengths=eval_lengths * (evaluated + 1),
                           new_tokens=eval_new, generation_batch=len(eval_lengths), extraction_batch=16,
                           forward_tokens=per_eval * evaluated, held_rows=2 * evaluated))
    lora = c.lora
    step = training_step_seconds(model, lora)
    return combine(
        "traits finetune", phases, training_tokens=trained * lora.steps * lora.batch_size * lora.max_tokens,
        training_seconds=trained * lora.steps * step,
        notes=(f"{trained} LoRA fine-tunes × {lora.steps} steps × batch {lora.batch_size} × ≤ {lora.max_tokens} tokens; "
               f"{step:.2f} s per step measured at that shape",
               f"{evaluated} models evaluated; merging each adapter into a hooked model is not timed"),
    )


def _layer_span(layers: Sequence[int]) -> str:
    """``12–29`` for a contiguous run of layers, else the list: ``12, 15, 18``."""
    contiguous = list(layers) == list(range(layers[0], layers[-1] + 1))
    return f"{layers[0]}–{layers[-1]}" if contiguous and len(layers) > 1 else ", ".join(map(str, layers))


def eval_questions(trait: TraitData, config: FinetuneConfig) -> list[str]:
    """The evaluation questions of a study (what :class:`FinetuneRun` asks every model)."""
    return list(trait.eval_questions[: config.n_eval_questions])


class FinetuneRun:
    """One trait's fine-tuning study in ``out_dir`` (data/, finetunes/, cache/)."""

    def __init__(self, model, trait: TraitData, vector: LayerVectors, out_dir: Path,
                 config: FinetuneConfig = FinetuneConfig(), other_vectors: dict[str, LayerVectors] | None = None,
                 progress: bool = True):
        if vector.n_layers != model.cfg.n_layers:
            raise InputFormatError(f"trait vector has {vector.n_layers} layers, the model {model.cfg.n_layers}")
        for layer in config.ablate_layers:  # before hours of training, not at the CAFT fine-tune at the end
            check_layer(layer, vector.n_layers, "--ablate-layers")
        self.model, self.trait, self.vector, self.out_dir = model, trait, vector, Path(out_dir)
        self.config, self.other_vectors, self.progress = config, other_vectors or {}, progress
        self.questions = eval_questions(trait, config)
        if not self.questions:
            raise InputFormatError(f"trait {trait.name}: no evaluation questions")

    # ------------------------------------------------------------------ data
    def builtin_sets(self) -> list[TrainingSet]:
        c = self.config
        trait_run = TraitRun(self.model, self.trait, self.out_dir,
                             TraitConfig(n_extract_questions=c.n_train_questions, samples=c.samples,
                                         all_instructions=c.all_instructions, sampling=c.sampling), progress=self.progress)
        pairs = contrastive_pairs(trait_run.responses("extract", c.n_train_questions), judged=False)
        if not pairs:
            raise InputFormatError(f"trait {self.trait.name}: no usable (trait, normal) response pair to build data from")
        sets = []
        for level in c.levels:
            conversations = mixed_set(pairs, level, c.seed)
            path = write_jsonl(self.out_dir / "data" / f"{self.trait.name}_{level}.jsonl", conversations)
            sets.append(TrainingSet(f"{level}%", str(path), conversations, level, None))
        return sets

    def user_sets(self, paths: Sequence[Path]) -> list[TrainingSet]:
        return [TrainingSet(Path(p).stem, str(p), tuple(tuple(c) for c in load_screen_data(p)), None, None) for p in paths]

    def screened(self, sets: Sequence[TrainingSet]) -> list[TrainingSet]:
        cache = JsonlCache(self.out_dir / "cache" / "screen_own_responses.jsonl")
        out = []
        for s in sets:
            result = screen(self.model, s.conversations, self.vector, self.config.layer, cache,
                            Sampling(max_new_tokens=self.config.sampling.max_new_tokens), self.progress)
            out.append(replace(s, delta_p=result["mean_delta_p"]))
        return out

    # ------------------------------------------------------------------ measurements
    def base_answers(self) -> list[str]:
        """The base model's greedy answers to the evaluation questions: the neutral held-out text."""
        return generate_responses(self.model, [messages(None, q) for q in self.questions],
                                  self.config.eval_sampling, progress=False)

    def means(self, model, answers: Sequence[str], interventions: Sequence[Intervention] = ()) -> dict[str, Tensor]:
        chats = [format_conversation(model.tokenizer, messages(None, q, a or "…")) for q, a in zip(self.questions, answers)]
        layers = list(range(model.cfg.n_layers))
        return {select: extract_means(model, chats, layers, select=select, interventions=interventions,
                                      progress=False).mean(dim=0)
                for select in ("prompt_last", "response")}

    def projected(self, diff: Float[Tensor, "layer d_model"]) -> tuple[float, ...]:
        return tuple(float(diff[layer] @ self.vector.unit(layer)) for layer in range(diff.shape[0]))

    def evaluate(self, name: str, data: str, mitigation: str, model, interventions: Sequence[Intervention] = (),
                 train: dict[str, Any] | None = None) -> tuple[FinetuneEval, Tensor]:
        """Measure ``model`` (a fine-tune, or the base) under ``interventions``; also returns the
        prompt-last shift at the study's layer (for the null correlations)."""
        score = trait_metric(model, self.examples(), interventions, progress=False)
        paired = score.per_example - self.base_per_example  # each example scored on every model
        answers = generate_responses(model, [messages(None, q) for q in self.questions], self.config.eval_sampling,
                                     interventions, progress=False)
        means = self.means(model, answers, interventions)
        diff = {k: means[k] - self.base_means[k] for k in means}
        neutral = response_loglik(model, [messages(None, q, a) for q, a in zip(self.questions, self.neutral) if a.strip()],
                                  interventions, progress=False)
        neutral_ppl = math.exp(-float(neutral.total.sum()) / max(float(neutral.n_tokens.sum()), 1.0))
        result = FinetuneEval(
            name, data, mitigation, self.projected(diff["prompt_last"]), self.projected(diff["response"]),
            float(diff["prompt_last"][self.config.layer].norm()), score.value, score.stderr(), float(paired.mean()),
            _stderr(paired), self.persona_ratio(answers), perplexity(self.model, self.questions, answers, progress=False),
            repetition(answers).repeated_ngram_share, neutral_ppl, self.capability(model, interventions),
            tuple(answers), train or {},
        )
        return result, diff["prompt_last"][self.config.layer]

    def persona_ratio(self, answers: Sequence[str]) -> float:
        """Generation-based trait expression without a judge: per-token log-likelihood of the model's
        own answers under the *base* model with the trait's positive system prompt minus with its
        negative one (as the data was generated), averaged over instruction pairs and answers. It
        reads the text the fine-tune writes, not its activations, so r(shift, it) is not circular."""
        kept = [(q, a) for q, a in zip(self.questions, answers) if a.strip()]
        if not kept:
            return float("nan")
        templates, name = PromptTemplates(), self.trait.name
        sides = [[messages(templates.system(name, side, getattr(pair, side)), q, a) for q, a in kept]
                 for pair in self.trait.instructions for side in ("pos", "neg")]
        per_token = response_loglik(self.model, [c for side in sides for c in side], progress=False).per_token()
        pos_neg = per_token.view(len(self.trait.instructions), 2, len(kept))
        return float((pos_neg[:, 0] - pos_neg[:, 1]).mean())

    def capability(self, model, interventions: Sequence[Intervention] = ()) -> float:
        """Share of the built-in questions whose correct answer is the most likely (per token)."""
        conversations = [messages(None, q, a) for q, right, wrong in CAPABILITY_QUESTIONS for a in (right, *wrong)]
        per_token = response_loglik(model, conversations, interventions, progress=False).per_token().view(len(CAPABILITY_QUESTIONS), -1)
        return float((per_token.argmax(dim=1) == 0).float().mean())

    def examples(self) -> tuple[TraitExample, ...]:
        if not self.trait.heldout:
            raise InputFormatError(f"trait {self.trait.name}: no held-out examples for the trait metric")
        return self.trait.heldout[: self.config.n_examples]

    # ------------------------------------------------------------------ training
    def train(self, s: TrainingSet, tag: str, interventions: Sequence[Intervention] = ()):
        run = TrainRun(self.model, s.conversations, self.out_dir / "finetunes" / tag, self.config.lora, interventions,
                       {"trait": self.trait.name, "data": s.source, "layer": self.config.layer})
        peft_model, result = run.run()
        return merged_hooked(self.model, peft_model), result.to_summary()

    def run(self, data_paths: Sequence[Path] = ()) -> FinetuneStudy:
        started = time.time()
        c, L = self.config, self.config.layer
        sets = self.screened(self.user_sets(data_paths) if data_paths else self.builtin_sets())
        self.neutral = self.base_answers()
        self.base_means = self.means(self.model, self.neutral)
        self.base_per_example = trait_metric(self.model, self.examples(), progress=False).per_example
        base_eval, base_shift = self.evaluate("base", "-", "base", self.model)
        evals, shifts = [base_eval], [base_shift]
        strongest = max(sets, key=lambda s: (s.level if s.level is not None else -1, s.delta_p or 0))
        vec = {L: self.vector.at(L)}
        for s in sets:
            model, train = self.train(s, f"{self.trait.name}_{s.name.rstrip('%')}")
            e, shift = self.evaluate(f"fine-tune {s.name}", s.name, "none", model, train=train)
            evals.append(e), shifts.append(shift)
            if s is strongest:
                for coef in c.inference_coefs:
                    e, shift = self.evaluate(f"{s.name} + inference steer −{coef:g}", s.name, "inference steer", model,
                                             [AddVector(vec, -coef)])
                    evals.append(e), shifts.append(shift)
            del model
        for coef in c.prevent_coefs:
            model, train = self.train(strongest, f"{self.trait.name}_prevent_{coef:g}", [AddVector(vec, coef)])
            e, shift = self.evaluate(f"{strongest.name} + preventative steer {coef:g}", strongest.name,
                                     "preventative steer", model, train=train)
            evals.append(e), shifts.append(shift)
        if c.ablate:
            layers = c.caft_layers
            at_vector_layer = layers == (L,)
            span = "" if at_vector_layer else f" (layers {_layer_span(layers)})"
            tag = f"{self.trait.name}_caft" + ("" if at_vector_layer else "_" + "_".join(map(str, layers)))
            model, train = self.train(strongest, tag, [self.caft_intervention()])
            e, shift = self.evaluate(f"{strongest.name} + CAFT ablation{span}", strongest.name, "CAFT ablation", model,
                                     train=train)
            evals.append(e), shifts.append(shift)
        return FinetuneStudy(self.trait.name, L, tuple(sets), strongest.name, tuple(evals),
                             self.correlation(evals, torch.stack(shifts)), time.time() - started)

    def caft_intervention(self) -> AblateDirection:
        """The training-time ablation of the trait direction at :attr:`FinetuneConfig.caft_layers`."""
        return AblateDirection({layer: self.vector.at(layer) for layer in self.config.caft_layers})

    def correlation(self, evals: Sequence[FinetuneEval], shifts: Float[Tensor, "n d_model"]) -> Correlation | Unavailable:
        """Across the trained models without inference-time steering (their activations are the weights')."""
        keep = [i for i, e in enumerate(evals) if e.mitigation != "inference steer"]
        if len(keep) < 3:
            return Unavailable(f"the correlation needs at least 3 models; this run has {len(keep)}")
        L = self.config.layer
        expression = [evals[i].trait_metric for i in keep]
        diffs = shifts[keep]
        r = pearson_r([evals[i].shift_prompt_last[L] for i in keep], expression)
        generator = torch.Generator().manual_seed(self.config.seed)
        randoms = torch.randn(self.config.n_random, diffs.shape[1], generator=generator)
        randoms = randoms / randoms.norm(dim=1, keepdim=True)
        random_rs = tuple(pearson_r((diffs @ d).tolist(), expression) for d in randoms)
        others = {name: pearson_r((diffs @ v.unit(L)).tolist(), expression) for name, v in self.other_vectors.items()}
        finite = None if math.isnan(r) else r
        return Correlation(L, len(keep), finite, fisher_interval(r, len(keep)) if finite is not None else None,
                           random_rs, {k: (None if math.isnan(v) else v) for k, v in others.items()})
