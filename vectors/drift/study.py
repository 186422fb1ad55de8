"""The drift study: conversations × seeded samples × conditions → drift metrics and capability cost.

Compute only (typed results, no drawing or writing): :func:`run_study` calibrates the default range
on the model's own neutral answers, replays every conversation N times per condition
(:func:`~vectors.drift.sampled_replay.replay_samples`), re-reads each replay with the plain model at
the reading layer, and scores capability under each intervention. Conditions: no intervention; a
floor cap per setting of a grid (layer range × percentile); steering toward the axis; and, given an
SAE, capping the axis's top SAE features at their default percentiles.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from tqdm.auto import tqdm

from workbench.artifacts import LayerVectors
from workbench.cache import JsonlCache
from workbench.api import ChatClient
from workbench.chat import Message, format_conversation
from workbench.errors import InputFormatError
from workbench.generate import Sampling
from workbench.plan import RunPlan, combine, plan_run
from workbench.stats import Interval, nested_bootstrap_mean
from vectors.capability import (CapabilityCost, CapabilityScores, ChoiceItem, NeutralAnswer, capability_cost,
                                      capability_scores)
from vectors.drift.capping import CappingConfig, calibrate, calibration_questions, default_assistant_chats
from vectors.drift.projection import ChatProjection, project_chat
from vectors.drift.replay import Condition, judge_in_role
from vectors.drift.sae_capping import SAEFeatureCap, sae_feature_cap
from vectors.drift.sampled_replay import replay_samples
from vectors.drift.steering import steering, vector_fingerprint
from vectors.drift.study_metrics import ConditionDrift, DriftThresholds, condition_drift, drift_difference
from vectors.drift.transcripts import Transcript

RANGE_PERCENTILES = (0.05, 0.95)
_SETTING = re.compile(r"^(\d+)-(\d+)@([0-9.]+)$")


@dataclass(frozen=True)
class CapSetting:
    """A floor cap over consecutive layers ``first``..``last`` at the ``percentile`` threshold."""

    first: int
    last: int
    percentile: float

    @classmethod
    def parse(cls, text: str) -> "CapSetting":
        """``"12-19@0.25"``: layers 12 to 19 inclusive, τ at the 25th percentile."""
        match = _SETTING.match(text.strip())
        if not match:
            raise InputFormatError(f"cap setting {text!r}: expected FIRST-LAST@PERCENTILE, e.g. 12-19@0.25")
        first, last, percentile = int(match[1]), int(match[2]), float(match[3])
        if first > last or not 0 < percentile < 1:
            raise InputFormatError(f"cap setting {text!r}: need FIRST ≤ LAST and 0 < PERCENTILE < 1")
        return cls(first, last, percentile)

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(range(self.first, self.last + 1))

    @property
    def name(self) -> str:
        return f"cap L{self.first}-{self.last} p{self.percentile:g}"

    def __str__(self) -> str:
        return f"{self.first}-{self.last}@{self.percentile:g}"


DEFAULT_GRID = tuple(CapSetting.parse(s) for s in
                     ("12-19@0.25", "8-15@0.25", "16-23@0.25", "12-19@0.5", "8-15@0.5", "16-23@0.5", "20-27@0.25"))


@dataclass(frozen=True)
class StudyConfig:
    """What a study runs. ``chosen``: the capping setting the report marks (must be in the grid)."""

    cap_grid: tuple[CapSetting, ...] = DEFAULT_GRID
    chosen: CapSetting = DEFAULT_GRID[0]
    samples: int = 5
    max_turns: int | None = None
    sampling: Sampling = Sampling(max_new_tokens=32, temperature=0.7, top_p=0.9)
    layer: int | None = None
    steer_layer: int = 15
    steer_coefficient: float | None = 2.0
    sae_top_k: int = 8
    capability: bool = True
    calibration_sampling: Sampling = Sampling(max_new_tokens=40)

    def __post_init__(self):
        if self.chosen not in self.cap_grid:
            raise InputFormatError(f"the chosen setting {self.chosen} is not in the grid {[str(s) for s in self.cap_grid]}")

    def percentiles(self) -> tuple[float, ...]:
        return tuple(sorted({*RANGE_PERCENTILES, 0.25, 0.5, 0.75, *(s.percentile for s in self.cap_grid)}))


@dataclass(frozen=True)
class ConditionResult:
    """One condition: its drift, its difference from no intervention (empty for that one itself),
    its capability cost (None without an intervention)."""

    name: str
    kind: str  # "none", "cap", "steer", "sae_cap"
    setting: str
    drift: ConditionDrift
    difference: dict[str, Interval]
    capability: CapabilityCost | None
    projections: tuple[tuple[ChatProjection, ...], ...] = field(repr=False, default=())
    conversations: tuple[tuple[tuple[Message, ...], ...], ...] = field(repr=False, default=())

    def to_summary(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "setting": self.setting, **self.drift.to_summary(),
                "minus_uncapped": {k: v.to_summary() for k, v in self.difference.items()},
                "capability": self.capability.to_summary() if self.capability else None}


@dataclass(frozen=True)
class DriftStudy:
    """Everything a drift study measured (see :func:`run_study`)."""

    model: str
    thresholds: DriftThresholds
    config: StudyConfig
    transcripts: tuple[str, ...]
    conditions: tuple[ConditionResult, ...]
    plain_capability: CapabilityScores | None
    sae_cap: SAEFeatureCap | None
    seconds: float

    def condition(self, name: str) -> ConditionResult:
        for result in self.conditions:
            if result.name == name:
                return result
        raise InputFormatError(f"no condition named {name!r} (have {[c.name for c in self.conditions]})")

    @property
    def chosen(self) -> ConditionResult:
        return self.condition(self.config.chosen.name)

    def to_summary(self) -> dict[str, Any]:
        c = self.config
        return {
            "model": self.model, "thresholds": self.thresholds.to_summary(), "transcripts": list(self.transcripts),
            "samples": c.samples, "max_turns": c.max_turns, "sampling": vars(c.sampling),
            "cap_grid": [str(s) for s in c.cap_grid], "chosen": str(c.chosen),
            "conditions": [r.to_summary() for r in self.conditions],
            "sae_cap": self.sae_cap.to_summary() if self.sae_cap else None, "seconds": round(self.seconds, 1),
        }


def calibrate_study(model, axis: LayerVectors, config: StudyConfig, layer: int, cache: JsonlCache,
                    progress: bool = True) -> tuple[CappingConfig, list]:
    """τ at every layer the grid uses (and the reading layer) from the model's own default answers."""
    chats = default_assistant_chats(model, calibration_questions(), config.calibration_sampling, cache, progress)
    layers = sorted({layer, *(l for s in config.cap_grid for l in s.layers)})
    return calibrate(model, axis, chats, layers, config.percentiles(), progress), chats


def _conditions(axis: LayerVectors, capping: CappingConfig, config: StudyConfig, sae, sae_cap: SAEFeatureCap | None):
    fingerprint = vector_fingerprint(axis)
    out = [("none", "no intervention", "", Condition("no intervention"))]
    for setting in config.cap_grid:
        cap = capping.intervention(setting.percentile, "floor", setting.layers)
        out.append(("cap", setting.name, str(setting),
                    Condition(setting.name, (cap,), f"cap:{fingerprint}:{setting}:{capping.metadata.get('inputs_hash')}")))
    if config.steer_coefficient is not None:
        name = f"steer {config.steer_coefficient:+g}×axis L{config.steer_layer}"
        out.append(("steer", name, f"{config.steer_coefficient:g}@{config.steer_layer}",
                    Condition(name, (steering(axis, [config.steer_layer], config.steer_coefficient),),
                              f"steer:{fingerprint}:{config.steer_layer}:{config.steer_coefficient}")))
    if sae_cap is not None:
        name = f"SAE-feature cap L{sae_cap.layer} top {len(sae_cap.features)} p{sae_cap.percentile:g}"
        out.append(("sae_cap", name, sae_cap.fingerprint(),
                    Condition(name, (sae_cap.intervention(sae),), f"{fingerprint}:{sae_cap.fingerprint()}")))
    return out


def n_conditions(config: StudyConfig, with_sae: bool) -> int:
    """No intervention, each cap setting, steering (unless off), the SAE-feature cap (given an SAE)."""
    return 1 + len(config.cap_grid) + (config.steer_coefficient is not None) + int(with_sae)


def plan_study(model, transcripts: Sequence[Transcript], config: StudyConfig, items: Sequence[ChoiceItem] = (),
               neutral: Sequence[NeutralAnswer] = (), with_sae: bool = False, judge: bool = False) -> RunPlan:
    """What :func:`run_study` would cost (see :mod:`workbench.plan`): the calibration answers, then
    per condition every replayed turn of every conversation × sample (its prompt counted with each
    earlier reply at ``max_new_tokens``, an upper bound), the re-reading of each replay and the
    capability scoring. Judge calls: one per replayed turn."""
    from workbench.chat import format_prompt, messages

    tokenizer, new = model.tokenizer, config.sampling.max_new_tokens
    calibration = [len(format_prompt(tokenizer, messages(None, q))) for q in calibration_questions()]
    cal_new = config.calibration_sampling.max_new_tokens
    phases = [plan_run(model, "drift-study (calibrate)", prompt_lengths=calibration, new_tokens=cal_new,
                       generation_batch=8, extraction_batch=16,
                       forward_tokens=sum(calibration) + len(calibration) * (cal_new + 2), held_rows=0)]
    turn_lengths, final_lengths = [], []
    for t in transcripts:
        history = [{"role": "system", "content": t.system_prompt}] if t.system_prompt else []
        for k, user in enumerate(t.user_turns[: config.max_turns]):
            history.append({"role": "user", "content": user})
            turn_lengths.append(len(format_prompt(tokenizer, history)) + k * (new + 2))
            history.append({"role": "assistant", "content": ""})
        final_lengths.append(turn_lengths[-1] + new + 2)
    runs = n_conditions(config, with_sae) * config.samples
    scored = [messages(None, item.prompt(), choice) for item in items for choice in item.choices]
    scored += [messages(None, n.question, n.answer) for n in neutral]
    capability = (sum(len(format_conversation(tokenizer, c).ids) for c in scored) * n_conditions(config, with_sae)
                  if config.capability else 0)
    phases.append(plan_run(model, "drift-study (replay)", prompt_lengths=turn_lengths * runs, new_tokens=new,
                           generation_batch=16, extraction_batch=16,
                           forward_tokens=sum(final_lengths) * runs + capability, held_rows=0,
                           judge_calls=len(turn_lengths) * runs if judge else 0))
    return combine("drift-study", phases, notes=(
        f"{len(transcripts)} conversations × {config.samples} samples × {n_conditions(config, with_sae)} conditions",))


def run_study(
    model,
    axis: LayerVectors,
    transcripts: Sequence[Transcript],
    config: StudyConfig,
    cache: JsonlCache,
    items: Sequence[ChoiceItem] = (),
    neutral: Sequence[NeutralAnswer] = (),
    sae=None,
    progress: bool = True,
) -> DriftStudy:
    """Run every condition of ``config`` on ``transcripts`` (see the module docstring)."""
    from workbench.layers import default_layer

    started = time.time()
    if not transcripts:
        raise InputFormatError("a drift study needs at least one conversation")
    layer = config.layer if config.layer is not None else default_layer(model)
    capping, default_chats = calibrate_study(model, axis, config, layer, cache, progress)
    thresholds = DriftThresholds.from_config(capping, layer, config.chosen.percentile, RANGE_PERCENTILES)
    sae_cap = None
    if sae is not None:
        sae_layer = int(sae.cfg.metadata.hook_name.split(".")[1])
        sae_cap = sae_feature_cap(model, sae, sae_layer, axis, default_chats, config.sae_top_k, config.chosen.percentile)
    plain_scores = None
    if config.capability:
        if not items or not neutral:
            raise InputFormatError("capability scoring needs multiple-choice items and neutral answers")
        plain_scores = capability_scores(model, items, neutral, progress=progress)
    results: list[ConditionResult] = []
    baseline: ConditionDrift | None = None
    for kind, name, setting, condition in tqdm(_conditions(axis, capping, config, sae, sae_cap), desc="conditions",
                                               disable=not progress, unit="condition"):
        runs = replay_samples(model, transcripts, condition, config.sampling, config.samples, cache, config.max_turns,
                              progress=progress)
        projections = tuple(tuple(project_chat(model, format_conversation(model.tokenizer, run), axis, [layer])
                                  for run in conversation) for conversation in runs)
        drift = condition_drift(name, [[p.turn_means(layer) for p in c] for c in projections], thresholds)
        is_baseline = baseline is None
        baseline = baseline or drift
        cost = None
        if plain_scores is not None and condition.interventions:
            cost = capability_cost(plain_scores, capability_scores(model, items, neutral, condition.interventions,
                                                                   progress=progress))
        difference = {} if is_baseline else drift_difference(drift, baseline)
        results.append(ConditionResult(name, kind, setting, drift, difference, cost, projections,
                                       tuple(tuple(tuple(m) for m in run) for run in runs)))
    return DriftStudy(model.cfg.model_name, thresholds, config, tuple(t.source for t in transcripts), tuple(results),
                      plain_scores, sae_cap, time.time() - started)


def judge_in_role_rates(
    study: DriftStudy, transcripts: Sequence[Transcript], client: ChatClient, cache: JsonlCache, progress: bool = True,
) -> dict[str, Interval]:
    """Per condition: the share of replayed turns a role-play judge scores 3 (fully in the
    conversation's ``persona``, the drift target), nested interval over conversations × samples.
    Judgements are cached by content (:func:`vectors.drift.replay.judge_in_role`)."""
    rates = {}
    for result in tqdm(study.conditions, desc="judge", disable=not progress, unit="condition"):
        groups = []
        for transcript, runs in zip(transcripts, result.conversations):
            judged = judge_in_role(client, transcript, {f"sample {s}": list(run) for s, run in enumerate(runs)},
                                   cache, progress=False)
            groups.append([j["in_role_rate"] for j in judged.values() if j["in_role_rate"] is not None])
        scored = [g for g in groups if g]
        rates[result.name] = nested_bootstrap_mean(scored) if scored else Interval(float("nan"), float("nan"), float("nan"), 0)
    return rates
