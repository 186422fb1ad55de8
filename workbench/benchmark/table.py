"""The benchmark result as the Markdown tables BENCHMARKS.md shows (figures absent from a run are skipped)."""

from __future__ import annotations


def _s(timing: dict) -> str:
    return f"{timing['min_s']:.3g} / {timing['median_s']:.3g}"


def _verdict(passed: bool | None) -> str:
    return "–" if passed is None else "yes" if passed else "**no**"


def _extraction(ex: dict) -> list[str]:
    return [f"| {name} ({ex['n_responses']} responses, {ex['tokens']} tokens), s | {_s(t)} |"
            for name, t in ex["timings"].items()]


def _generation(gen: dict) -> list[str]:
    return [f"| generation {name}, batch {gen['batch_size']}, {gen['new_tokens']} new tokens, tokens/s "
            f"| {rate['best']:.1f} / {rate['median']:.1f} |" for name, rate in gen["tokens_per_s"].items()]


def _decomposition(dec: dict) -> list[str]:
    shape = f"{dec['decoder_shape'][0]}×{dec['decoder_shape'][1]}"
    return [f"| {name}, decoder {shape}, s | {_s(t)} |" for name, t in dec["timings"].items()]


def _dashboards(d: dict) -> list[str]:
    return [f"| dashboards of {d['n_features']} features + the vector, dictionary {d['d_sae']}×{d['d_in']}, "
            f"{d['corpus_tokens']} corpus tokens, s | {d['seconds']:.3g} (corpus pass {d['corpus_forward_seconds']:.3g}) |"]


def _batch_scaling(scaling: dict) -> list[str]:
    return [f"| extraction, all layers, batch {r['batch_size']}, {scaling['tokens']} tokens, tokens/s (one run) "
            f"| {r['tokens_per_second']:.4g}"
            + (f" (peak GPU {r['peak_gpu_memory_mib']:.0f} MiB)" if "peak_gpu_memory_mib" in r else "") + " |"
            for r in scaling["rows"]]


def _projection(proj: dict) -> list[str]:
    seconds, peak = proj["seconds"], proj["peak_increase_mib"]
    return [f"| projection of {proj['tokens']} tokens at layer {proj['layer']}, s "
            f"| {seconds['min']:.3g} / {seconds['median']:.3g} |",
            f"| projection: peak RSS increase, MiB | {peak['min']:.0f} / {peak['median']:.0f} |"]


def _memory(mem: dict) -> list[str]:
    return [f"| extraction of {n} responses: peak RSS (increase over the loaded model), MiB "
            f"| {size['peak_rss_mib']['min']:.0f} / {size['peak_rss_mib']['median']:.0f} "
            f"({size['peak_increase_mib']['median']:.0f}; a full activation cache would be "
            f"{size['full_activation_cache_would_be_mib']:.0f}) |" for n, size in mem["sizes"].items()]


def _training(t: dict) -> list[str]:
    return [f"| {name}, batch {t['batch']} × ≤{t['max_tokens']} tokens (adapters from layer {t['first_layer']} for "
            f"lora_step), tokens/s | {rate['best']:.1f} / {rate['median']:.1f} |" for name, rate in t["tokens_per_s"].items()]


_FIGURES = {"extraction": _extraction, "batch_scaling": _batch_scaling, "generation": _generation, "decomposition": _decomposition,
            "dashboards": _dashboards, "projection": _projection, "memory": _memory,
            "training": _training}


def markdown(result: dict) -> str:
    """Goals table, then the absolute figures behind them (min / median)."""
    lines = ["| figure | wall (min) | CPU time (min) | goal | pass: wall / CPU |", "|---|---|---|---|---|"]
    for g in result.get("goals", {}).values():
        cpu = "–" if g.get("value_cpu_time") is None else f"{g['value_cpu_time']:.3g}"
        lines.append(f"| {g['what']} | {g['value']:.3g} | {cpu} | {g['goal']} "
                     f"| {_verdict(g['pass'])} / {_verdict(g.get('pass_cpu_time'))} |")
    lines += ["", "| measurement | min / median |", "|---|---|"]
    for name, rows in _FIGURES.items():
        if name in result:
            lines += rows(result[name])
    m = result["machine"]
    lines += ["", f"Machine: {m['cpu_count']} CPUs, {m['torch_threads']} torch threads, load average at start "
              f"{m['load_average_at_start'][0]:.1f}; torch {m['versions']['torch']}; run "
              f"{result['seconds_total']:.0f} s wall, {result.get('cpu_seconds_total', float('nan')):.0f} s CPU"
              f"{'' if result.get('complete') else ' (incomplete)'}."]
    return "\n".join(lines)
