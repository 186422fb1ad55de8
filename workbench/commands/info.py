"""``workbench info``: models known and which load offline, layer convention, SAEs known."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="models known, which are available offline, SAEs known")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=run)


def collect() -> dict:
    from sae_analysis.saes import known_saes
    from workbench.models import KNOWN_MODELS, is_available_offline

    return {
        "layer_convention": "layer L = output of block L = blocks.L.hook_resid_post = HF hidden_states[L+1]",
        "models": [
            {
                "name": m.name, "hf_id": m.hf_id, "n_layers": m.n_layers, "d_model": m.d_model,
                "default_layer": m.default_layer, "available_offline": is_available_offline(m.name),
                "notes": m.notes,
            }
            for m in KNOWN_MODELS.values()
        ],
        "saes": known_saes(),
    }


def run(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"Layer convention: {info['layer_convention']}\n\nModels:")
    for m in info["models"]:
        offline = "offline: yes" if m["available_offline"] else "offline: no (needs download)"
        print(f"  {m['name']:<24} {m['n_layers']} layers, d_model {m['d_model']}, "
              f"default layer {m['default_layer']}; {offline}\n      {m['notes']}")
    print("  (any Hugging Face chat model id, local folder or .gguf file also loads)")
    if info["saes"]:
        print("\nSAEs:")
        for sae in info["saes"]:
            print(f"  {sae['id']:<55} {sae.get('notes', '')}")
    return 0
