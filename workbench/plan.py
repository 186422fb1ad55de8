"""A run's cost before it runs: counts, memory and a time estimate from measured throughput.

A paper-scale run is hours of GPU time, so ``--plan`` prints what a command would do without doing
it, and every full run prints the same plan at its start. Counts are exact where they can be
(generations, judge calls, prompt tokens through the model's chat template) and upper bounds where
the run decides (every response is counted at ``max_new_tokens``). Time comes from a throughput
table measured on this model and device with a few batches the first time it is needed, and cached
(``$WORKBENCH_CACHE_DIR`` or the user cache dir, ``persona-workbench/throughput.json``):

- generation: seconds per batch = prefill + (new tokens - 1) × decode step, both measured at the
  run's batch size and prompt length (powers of two);
- extraction / forward passes: tokens per second at the extraction batch size and sequence length;
- LoRA training: seconds per optimizer step at the run's batch size, sequence length and adapter
  (:func:`training_step_seconds`, a few steps on the Hugging Face twin).

A run of several phases (data generation, screening, training, evaluation) plans each phase with
:func:`plan_run` and adds them up with :func:`combine`.

Judge calls go to a server whose speed is not known here: they are counted, not timed.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from workbench.generate import Sampling, generate_tokens

MIB = 2**20


def cache_file() -> Path:
    root = os.environ.get("WORKBENCH_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "persona-workbench" / "throughput.json"


def _bucket(n: float, step: int = 16) -> int:
    """``n`` rounded up to a multiple of ``step``: measurements are shared by runs of similar shape."""
    return step * max(1, math.ceil(n / step))


@dataclass(frozen=True)
class Throughput:
    """Measured speeds of one model on one device at the shapes a run uses."""

    prefill_seconds: float  # one generation batch, prompt + first token
    step_seconds: float  # each further token of that batch
    forward_tokens_per_second: float
    generation_batch: int
    prompt_tokens: int
    extraction_batch: int
    sequence_tokens: int
    source: str  # "measured now" or "cached <path>"

    def generation_seconds(self, n_sequences: int, new_tokens: int) -> float:
        batches = n_sequences / self.generation_batch
        return batches * (self.prefill_seconds + max(0, new_tokens - 1) * self.step_seconds)

    def forward_seconds(self, tokens: int) -> float:
        return tokens / self.forward_tokens_per_second


def _device_name(model) -> str:
    device = torch.device(model.cfg.device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()}threads"


def _timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _measure(model, generation_batch: int, prompt_tokens: int, extraction_batch: int, sequence_tokens: int) -> dict:
    vocab = min(model.cfg.d_vocab, 1000)
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(10, vocab, (generation_batch, prompt_tokens), generator=g).tolist()
    greedy = dict(temperature=0.0, stop_at_eos=False)

    def generate(n: int) -> None:
        generate_tokens(model, prompts, Sampling(max_new_tokens=n, **greedy), batch_size=generation_batch, progress=False)

    tokens = torch.randint(10, vocab, (extraction_batch, sequence_tokens), generator=g).to(model.cfg.device)
    with torch.inference_mode():
        model(tokens[:1, :8])  # warm-up
        forward = min(_timed(lambda: model(tokens)) for _ in range(2))
    one = _timed(lambda: generate(1))
    five = _timed(lambda: generate(5))
    return {"prefill_seconds": one, "step_seconds": max(1e-6, (five - one) / 4),
            "forward_tokens_per_second": extraction_batch * sequence_tokens / forward}


def _cached(key: str, measure) -> tuple[dict, str]:
    """The throughput table's entry ``key``, measured by ``measure()`` and stored when missing."""
    path = cache_file()
    table = json.loads(path.read_text()) if path.is_file() else {}
    if key in table:
        return table[key], f"cached {path}"
    table[key] = measure()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=1))
    os.replace(tmp, path)
    return table[key], "measured now"


def throughput(model, generation_batch: int, prompt_tokens: float, extraction_batch: int, sequence_tokens: float) -> Throughput:
    """Speeds at these shapes (token counts rounded up to multiples of 16): cached, else measured
    with a few batches (two passes at the extraction shape, two short generations at the generation shape)."""
    gen_b, prompt = generation_batch, min(_bucket(prompt_tokens), model.cfg.n_ctx - 16)
    ext_b, seq = extraction_batch, min(_bucket(sequence_tokens), model.cfg.n_ctx)
    key = f"{model.cfg.model_name}|{_device_name(model)}|{model.cfg.dtype}|gen {gen_b}x{prompt}|fwd {ext_b}x{seq}"
    m, source = _cached(key, lambda: _measure(model, gen_b, prompt, ext_b, seq))
    return Throughput(m["prefill_seconds"], m["step_seconds"], m["forward_tokens_per_second"], gen_b, prompt, ext_b, seq, source)


def training_step_seconds(model, lora, max_tokens: int | None = None) -> float:
    """Seconds per LoRA optimizer step (forward, backward, AdamW) at ``lora``'s batch size and
    ``max_tokens`` (default ``lora.max_tokens``) on the model's Hugging Face twin: cached, else the
    median of three steps on random tokens after one warm-up step. Every token counts as a response
    token, an upper bound of the loss's cost."""
    from workbench.models import hf_twin
    from workbench.train import lora_model, response_loss

    tokens_per_row = min(_bucket(max_tokens or lora.max_tokens), model.cfg.n_ctx)
    key = (f"{model.cfg.model_name}|{_device_name(model)}|{model.cfg.dtype}|train {lora.batch_size}x{tokens_per_row} "
           f"r{lora.rank} from L{lora.first_layer} {','.join(lora.targets)}")

    def measure() -> dict:
        hf = hf_twin(model)
        if hf is None:
            raise ValueError(f"{model.cfg.model_name}: training throughput needs the Hugging Face twin of the model")
        peft = lora_model(hf, lora)
        peft.train()
        params = [p for p in peft.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lora.learning_rate)
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(10, min(model.cfg.d_vocab, 1000), (lora.batch_size, tokens_per_row), generator=g)
        ids = ids.to(next(peft.parameters()).device)
        mask = torch.ones_like(ids, dtype=torch.bool)

        def step() -> None:
            loss = response_loss(peft, ids, mask)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        step()
        times = sorted(_timed(step) for _ in range(3))
        del peft, optimizer
        return {"step_seconds": times[1]}

    return _cached(key, measure)[0]["step_seconds"]


def model_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


@dataclass(frozen=True)
class RunPlan:
    """What a run will do and cost; ``render()`` is what ``--plan`` prints."""

    command: str
    model: str
    device: str
    generations: int
    judge_calls: int
    prompt_tokens: int
    generated_tokens: int  # upper bound: every response at max_new_tokens
    forward_tokens: int  # extraction and other full-sequence passes (upper bound, same reason)
    training_tokens: int
    model_mib: float
    generation_buffer_mib: float  # KV cache of one generation batch
    extraction_buffer_mib: float  # activations of one extraction batch + chunk means + merged results
    estimated_seconds: float
    throughput: Throughput | None
    notes: tuple[str, ...] = ()

    def to_summary(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        t = self.throughput
        rows = [
            f"plan: workbench {self.command} on {self.model} ({self.device})",
            f"  generations         {self.generations:,}" + ("  (local, batched)" if self.generations else ""),
            f"  judge calls         {self.judge_calls:,}",
            f"  prompt tokens       {self.prompt_tokens:,}",
            f"  generated tokens    ≤ {self.generated_tokens:,}",
            f"  forward tokens      ≤ {self.forward_tokens:,}",
            f"  training tokens     {self.training_tokens:,}",
            f"  memory: model {self.model_mib:,.0f} MiB, generation KV cache {self.generation_buffer_mib:,.0f} MiB, "
            f"extraction buffers {self.extraction_buffer_mib:,.0f} MiB",
            f"  estimated time      {_duration(self.estimated_seconds)} (model loading and judge calls not included)",
        ]
        if t is not None:
            rows.append(f"  throughput ({t.source}): generation batch {t.generation_batch} × {t.prompt_tokens}-token prompts: "
                        f"prefill {t.prefill_seconds:.3f} s, {t.step_seconds * 1000:.1f} ms per token step; "
                        f"forward {t.forward_tokens_per_second:,.0f} tokens/s at batch {t.extraction_batch} × {t.sequence_tokens}")
        rows += [f"  note: {n}" for n in self.notes]
        return "\n".join(rows)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def kv_cache_mib(model, batch: int, tokens: int) -> float:
    cfg = model.cfg
    kv_heads = getattr(cfg, "n_key_value_heads", None) or cfg.n_heads
    bytes_per = torch.finfo(cfg.dtype).bits // 8
    return 2 * cfg.n_layers * batch * tokens * kv_heads * cfg.d_head * bytes_per / MIB


def activation_mib(model, batch: int, tokens: int) -> float:
    """One forward batch's live activations in inference mode: a few residual-width tensors, the
    MLP hidden layer and one layer's attention scores."""
    cfg = model.cfg
    bytes_per = torch.finfo(cfg.dtype).bits // 8
    per_token = 6 * cfg.d_model + 3 * cfg.d_mlp + cfg.n_heads * tokens
    return batch * tokens * per_token * bytes_per / MIB


def means_mib(model, rows: int, n_layers: int) -> float:
    """Float32 [rows, layers, d_model] means."""
    return rows * n_layers * model.cfg.d_model * 4 / MIB


def plan_run(
    model, command: str, *, prompt_lengths: list[int], new_tokens: int, generation_batch: int, extraction_batch: int,
    forward_tokens: int, held_rows: int, judge_calls: int = 0, local: bool = True, training_tokens: int = 0,
    world_size: int = 1, notes: tuple[str, ...] = (),
) -> RunPlan:
    """The plan of a run that generates one response per prompt (locally when ``local``), then runs
    ``forward_tokens`` through the model in extraction batches and holds ``held_rows`` float32
    [layers, d_model] means at once; extraction time is split over ``world_size`` ranks."""
    n = len(prompt_lengths)
    prompt_tokens = sum(prompt_lengths)
    mean_prompt = prompt_tokens / max(1, n)
    speed = throughput(model, max(1, min(generation_batch, n)), mean_prompt, max(1, min(extraction_batch, n)),
                       mean_prompt + new_tokens)
    notes = (*notes, *([] if local else ["generation on the API server: not timed here"]),
             *([f"extraction split over {world_size} ranks; rank 0 generates"] if world_size > 1 else []))
    return RunPlan(
        command=command, model=model.cfg.model_name, device=str(model.cfg.device), generations=n, judge_calls=judge_calls,
        prompt_tokens=prompt_tokens, generated_tokens=n * new_tokens, forward_tokens=forward_tokens,
        training_tokens=training_tokens, model_mib=model_bytes(model) / MIB,
        generation_buffer_mib=kv_cache_mib(model, min(generation_batch, n), max(prompt_lengths, default=0) + new_tokens)
        if local else 0.0,
        extraction_buffer_mib=activation_mib(model, min(extraction_batch, n), int(mean_prompt + new_tokens))
        + means_mib(model, held_rows, model.cfg.n_layers),
        estimated_seconds=(speed.generation_seconds(n, new_tokens) if local else 0.0)
        + speed.forward_seconds(forward_tokens) / world_size,
        throughput=speed, notes=notes,
    )


def combine(command: str, phases: Sequence[RunPlan], *, training_tokens: int = 0, training_seconds: float = 0.0,
            notes: Sequence[str] = ()) -> RunPlan:
    """One plan of a run made of ``phases`` (each planned by :func:`plan_run`) and a training part:
    counts and times add up, memory is the largest phase's (phases run one after another)."""
    first = phases[0]
    seen = dict.fromkeys(n for p in phases for n in p.notes)
    return RunPlan(
        command=command, model=first.model, device=first.device,
        generations=sum(p.generations for p in phases), judge_calls=sum(p.judge_calls for p in phases),
        prompt_tokens=sum(p.prompt_tokens for p in phases), generated_tokens=sum(p.generated_tokens for p in phases),
        forward_tokens=sum(p.forward_tokens for p in phases),
        training_tokens=training_tokens + sum(p.training_tokens for p in phases), model_mib=first.model_mib,
        generation_buffer_mib=max(p.generation_buffer_mib for p in phases),
        extraction_buffer_mib=max(p.extraction_buffer_mib for p in phases),
        estimated_seconds=sum(p.estimated_seconds for p in phases) + training_seconds,
        throughput=max(phases, key=lambda p: p.generated_tokens).throughput, notes=(*seen, *notes),
    )
