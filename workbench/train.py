"""LoRA fine-tuning of a hooked model's Hugging Face twin, with training-time interventions.

Why here (core): the Persona Vectors fine-tuning study trains many small adapters on one base model
and reads each fine-tune with the same analysis code as the base (trait metric, activation means).
So training works on a *copy* of the twin (:func:`workbench.models.hf_twin`): peft wraps the copy's
projections, the base model's weights are never touched, and :func:`merged_hooked` turns the trained
copy back into a HookedTransformer for every existing measurement.

Cost on 2 CPU cores decides the design:

- **Adapters only on layers ≥ ``first_layer``**: below them nothing needs a gradient, so autograd
  never builds a graph there and backward stops at ``first_layer``.
- **Logits only at response positions**: the decoder runs to its final norm, and the unembedding
  (the largest matrix of a small model) is applied only to the positions that predict a response
  token; the loss is the mean next-token cross-entropy over those tokens.
- **Short sequences**: each conversation is cut to ``max_tokens``.

Training-time interventions (persona_vectors' preventative steering: add α·v at layer L; CAFT:
project the direction out) are :mod:`workbench.hooks` values installed with :func:`workbench.hooks.apply`
around each training forward pass only, so evaluation runs without them unless the caller asks.

Determinism and resume: the order of examples is a permutation drawn from ``seed`` per epoch (not
from a running RNG), LoRA dropout is 0, and a checkpoint holds the adapter, the optimizer's moments
and the step, so a run resumed from its last checkpoint takes the same steps as an uninterrupted one.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.artifacts import atomic_write_text, inputs_hash, load_tensors, save_tensors
from workbench.chat import ChatTokens, Message, format_conversation
from workbench.errors import InputFormatError
from workbench.forward import pad_right, pad_token_id
from workbench.hooks import Intervention, Positions, apply

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraConfig:
    """The adapter and the optimisation. persona_vectors: rank 32, alpha 64, rsLoRA, all projections
    of every layer; the defaults are smaller for CPU."""

    rank: int = 8
    alpha: float = 16.0
    rslora: bool = True
    first_layer: int = 0
    targets: tuple[str, ...] = PROJECTIONS
    learning_rate: float = 1e-4
    steps: int = 20
    batch_size: int = 4
    max_tokens: int = 64
    seed: int = 0
    checkpoint_every: int = 5

    def __post_init__(self):
        if self.rank < 1 or self.steps < 0 or self.batch_size < 1 or self.max_tokens < 2:
            raise InputFormatError(f"LoRA config: need rank ≥ 1, steps ≥ 0, batch_size ≥ 1, max_tokens ≥ 2; got {self}")


@dataclass(frozen=True)
class TrainResult:
    """One training run: the losses of its steps (all of them, also those before a resume)."""

    adapter_path: Path
    losses: tuple[float, ...]
    steps: int
    resumed_from: int
    seconds: float
    tokens_per_second: float

    def to_summary(self) -> dict[str, Any]:
        return {"adapter": str(self.adapter_path), "steps": self.steps, "resumed_from": self.resumed_from,
                "loss_first": self.losses[0] if self.losses else None,
                "loss_last": self.losses[-1] if self.losses else None, "losses": list(self.losses),
                "seconds": round(self.seconds, 1), "tokens_per_second": round(self.tokens_per_second, 1)}


def training_chats(tokenizer, conversations: Sequence[Sequence[Message]], max_tokens: int) -> list[ChatTokens]:
    """Formatted conversations cut to ``max_tokens``; one with no response token left is an error."""
    chats = []
    for i, conversation in enumerate(conversations):
        chat = format_conversation(tokenizer, conversation)
        if not chat.response_mask()[1:max_tokens].any():
            raise InputFormatError(f"training example {i}: no response token within the first {max_tokens} tokens "
                                   "(raise max_tokens or shorten the prompt)")
        chats.append(chat)
    return chats


def lora_model(hf_model, config: LoraConfig):
    """A peft LoRA model over a deep copy of ``hf_model`` (the original's weights stay untouched)."""
    from peft import LoraConfig as PeftLoraConfig, get_peft_model

    n_layers = hf_model.config.num_hidden_layers
    if not 0 <= config.first_layer < n_layers:
        raise InputFormatError(f"first_layer {config.first_layer} outside the model's layers 0..{n_layers - 1}")
    peft_config = PeftLoraConfig(
        r=config.rank, lora_alpha=config.alpha, use_rslora=config.rslora, lora_dropout=0.0,
        target_modules=list(config.targets), layers_to_transform=list(range(config.first_layer, n_layers)),
        bias="none", task_type="CAUSAL_LM",
    )
    torch.manual_seed(config.seed)  # LoRA's A matrices are drawn at wrap time
    with warnings.catch_warnings():  # peft asks transformers a deprecated question on every wrap
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(copy.deepcopy(hf_model), peft_config)


def response_loss(
    peft_model, tokens: Tensor, response_mask: Tensor, interventions: Sequence[Intervention] = ()
) -> Tensor:
    """Mean next-token cross-entropy over response tokens; logits computed at those positions only."""
    base = peft_model.get_base_model()
    targets_mask = response_mask[:, 1:]
    positions = Positions(response_mask=response_mask)
    with apply(base, interventions, positions):
        hidden: Float[Tensor, "batch pos d_model"] = base.get_decoder()(input_ids=tokens).last_hidden_state
    logits = base.get_output_embeddings()(hidden[:, :-1][targets_mask])
    return torch.nn.functional.cross_entropy(logits.float(), tokens[:, 1:][targets_mask])


def _batch(chats: Sequence[ChatTokens], indices: Sequence[int], max_tokens: int, pad_id: int) -> tuple[Tensor, Tensor]:
    tokens = pad_right([chats[i].ids[:max_tokens] for i in indices], pad_id)
    mask = pad_right([chats[i].response_mask()[:max_tokens].tolist() for i in indices], 0).bool()
    return tokens, mask


def step_indices(n: int, step: int, batch_size: int, seed: int) -> list[int]:
    """The examples of training step ``step``: a seeded permutation per epoch, read in order."""
    out = []
    position = step * batch_size
    for k in range(position, position + batch_size):
        epoch, offset = divmod(k, n)
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        out.append(int(torch.randperm(n, generator=generator)[offset]))
    return out


def _trainable(peft_model) -> dict[str, Tensor]:
    return {name: p for name, p in peft_model.named_parameters() if p.requires_grad}


def save_checkpoint(path: Path, peft_model, optimizer, step: int, losses: Sequence[float], provenance: dict) -> None:
    """Adapter weights and the optimizer's moments (safetensors) with JSON provenance and the step."""
    params = _trainable(peft_model)
    tensors = {f"adapter/{name}": p for name, p in params.items()}
    state = optimizer.state_dict()["state"]
    for index, name in enumerate(params):
        for key, value in state.get(index, {}).items():
            tensors[f"optim/{key}/{name}"] = value if value.dim() else value.reshape(1)
    save_tensors(path, tensors, provenance | {"step": step, "losses": list(losses)})


def load_checkpoint(path: Path, peft_model, optimizer) -> tuple[int, list[float]]:
    """Restore what :func:`save_checkpoint` wrote; returns the step and the losses so far."""
    tensors, metadata = load_tensors(path)
    params = _trainable(peft_model)
    missing = [n for n in params if f"adapter/{n}" not in tensors]
    if missing:
        raise InputFormatError(f"{path}: checkpoint lacks adapter weights {missing[:3]} (another LoRA config?)")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[f"adapter/{name}"])
    state = {}
    for index, name in enumerate(params):
        entry = {key: tensors[f"optim/{key}/{name}"] for key in ("step", "exp_avg", "exp_avg_sq")
                 if f"optim/{key}/{name}" in tensors}
        if entry:
            entry["step"] = entry["step"].reshape(())
            state[index] = entry
    saved = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    return int(metadata["step"]), list(metadata.get("losses", []))


@dataclass
class TrainRun:
    """Train one LoRA adapter on ``conversations`` into ``out_dir`` (checkpoints, adapter, provenance)."""

    model: Any
    conversations: Sequence[Sequence[Message]]
    out_dir: Path
    config: LoraConfig = LoraConfig()
    interventions: Sequence[Intervention] = ()
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        from workbench.models import hf_twin

        self.hf_model = hf_twin(self.model)
        if self.hf_model is None:
            raise InputFormatError(f"{self.model.cfg.model_name}: fine-tuning needs the Hugging Face twin of the model "
                                   "(load it through workbench.models.load_model)")
        if not self.conversations:
            raise InputFormatError("no training conversations")

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / "checkpoint.safetensors"

    @property
    def adapter(self) -> Path:
        return self.out_dir / "adapter.safetensors"

    def full_provenance(self) -> dict[str, Any]:
        return {"base_model": self.model.cfg.model_name, "data_hash": inputs_hash([list(c) for c in self.conversations]),
                "n_examples": len(self.conversations), "lora": asdict(self.config),
                "interventions": [repr(i) for i in self.interventions]} | self.provenance

    def run(self, stop_after: int | None = None) -> tuple[Any, TrainResult]:
        """Train (resuming from the checkpoint when one exists with the same provenance); the peft
        model and the result. ``stop_after``: stop at that step as if killed (tests of resume)."""
        c = self.config
        started = time.time()
        peft_model = lora_model(self.hf_model, c)
        chats = training_chats(self.model.tokenizer, self.conversations, c.max_tokens)
        optimizer = torch.optim.AdamW(list(_trainable(peft_model).values()), lr=c.learning_rate, weight_decay=0.0)
        provenance = self.full_provenance()
        step, losses = 0, []
        if self.checkpoint.is_file():
            saved = json.loads(self.checkpoint.with_suffix(".json").read_text())
            if {k: saved.get(k) for k in provenance} == json.loads(json.dumps(provenance, default=str)):
                step, losses = load_checkpoint(self.checkpoint, peft_model, optimizer)
        resumed_from, n_tokens = step, 0
        pad_id = pad_token_id(self.model.tokenizer)
        peft_model.train()
        while step < c.steps and (stop_after is None or step < stop_after):
            tokens, mask = _batch(chats, step_indices(len(chats), step, c.batch_size, c.seed), c.max_tokens, pad_id)
            loss = response_loss(peft_model, tokens, mask, self.interventions)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            n_tokens += int(mask.sum())
            step += 1
            if step % c.checkpoint_every == 0 or step == c.steps:
                save_checkpoint(self.checkpoint, peft_model, optimizer, step, losses, provenance)
        peft_model.eval()
        if step == c.steps:
            save_tensors(self.adapter, _trainable(peft_model), provenance | {"step": step, "losses": losses})
            atomic_write_text(self.out_dir / "provenance.json", json.dumps(provenance, indent=2, default=str))
        seconds = time.time() - started
        return peft_model, TrainResult(self.adapter, tuple(losses), step, resumed_from, seconds,
                                       n_tokens / seconds if seconds else 0.0)


def merged_hooked(model, peft_model):
    """A HookedTransformer of the fine-tuned weights (LoRA merged into a copy), for analysis."""
    from workbench.models import hooked_from_hf

    merged = peft_model.merge_and_unload()
    merged.eval()
    hooked = hooked_from_hf(merged, model.tokenizer, device=str(model.cfg.device))
    hooked.cfg.model_name = f"{model.cfg.model_name}+lora"
    return hooked
