#!/usr/bin/env python3
"""Where an engine's time goes: kiln's --exportProfile JSON joined with --exportLayerInfo by layer
name; prints the time per (layer type, tactic) and the slowest layers.
Usage: profile_summary.py PROFILE.json LAYERS.json [--top N]"""
import argparse
import collections
import json


def main():
    p = argparse.ArgumentParser()
    p.add_argument("profile")
    p.add_argument("layers")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    with open(a.profile) as f:
        prof = [e for e in json.load(f) if "name" in e]
    with open(a.layers) as f:
        info = {l["Name"]: l for l in json.load(f)["Layers"]}
    total = sum(e["averageMs"] for e in prof) or 1.0
    groups = collections.defaultdict(lambda: [0.0, 0])
    for e in prof:
        l = info.get(e["name"], {})
        key = (l.get("LayerType", "?"), l.get("TacticName", "?"), l.get("Precision", "?"))
        groups[key][0] += e["averageMs"]
        groups[key][1] += 1
    print(f"{len(prof)} layers, {total:.3f} ms summed per-layer average")
    print(f"{'ms':>8} {'%':>5} {'n':>4}  type / tactic / precision")
    for key, (ms, n) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
        print(f"{ms:8.3f} {100 * ms / total:5.1f} {n:4d}  {' / '.join(map(str, key))}")
    print(f"\nslowest {a.top} layers")
    for e in sorted(prof, key=lambda e: -e["averageMs"])[:a.top]:
        l = info.get(e["name"], {})
        shapes = " ".join(t.get("Name", "") for t in l.get("Inputs", [])[:3])
        print(f"{e['averageMs']:8.4f}  {l.get('LayerType', '?'):>14} {l.get('TacticName', '?'):<28} "
              f"{e['name'][:40]:<40} {shapes[:90]}")


if __name__ == "__main__":
    main()
