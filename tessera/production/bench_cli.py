"""`tessera bench`: GDNBenchmarkSuite on a seed-002 GDN LM of the given size; tables, plots and the
analyzer's recommendations written to --out."""
from __future__ import annotations


def add_parser(sub):
    b = sub.add_parser("bench", help="benchmark a GDN LM: throughput vs batch, latency, memory, fusion, deltas")
    b.add_argument("--out", required=True, help="folder for results.json, report.md and the plots")
    b.add_argument("--vocab", type=int, default=256)
    b.add_argument("--hidden", type=int, default=64)
    b.add_argument("--layers", type=int, default=4)
    b.add_argument("--heads", type=int, default=4)
    b.add_argument("--intermediate", type=int, default=128)
    b.add_argument("--max-delta", type=int, default=2)
    b.add_argument("--seq", type=int, default=32, help="sequence length")
    b.add_argument("--batch-sizes", default="1,2,4,8")
    b.add_argument("--delta-distances", default="0,1,2")
    b.add_argument("--iters", type=int, default=10)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--policy", choices=["f32", "bf16"], default="f32", help="numerics policy of the variants")
    b.add_argument("--seed", type=int, default=0)
    return b


def _ints(text, flag):
    from ..errors import TesseraError
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise TesseraError(f"{flag} takes comma-separated ints, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise TesseraError(f"{flag} takes comma-separated non-negative ints, got {text!r}")
    return values


def main(args):
    import tessera as ts
    from ..gdn import GDNConfig, ProductionGDNModel, init_params
    from .bench import GDNBenchmarkSuite
    config = GDNConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                       num_attention_heads=args.heads, intermediate_size=args.intermediate,
                       max_delta_distance=args.max_delta, delta_hidden_size=max(8, args.hidden // 4),
                       gating_hidden_size=max(8, args.hidden // 4))
    model = ProductionGDNModel(config).load_gdn_params(init_params(config, seed=args.seed))
    policy = ts.NumericsPolicy.mixed_bf16() if args.policy == "bf16" else None
    suite = GDNBenchmarkSuite(log=print)
    results = suite.run_full_benchmark(model, [{
        "name": f"gdn_{args.layers}x{args.hidden}_seq{args.seq}", "sequence_length": args.seq,
        "batch_sizes": _ints(args.batch_sizes, "--batch-sizes"), "iterations": args.iters, "warmup": args.warmup,
        "delta_distances": _ints(args.delta_distances, "--delta-distances"), "numerics_policy": policy,
        "seed": args.seed}])
    files = suite.write_report(results, args.out)
    for name, recs in results["recommendations"].items():
        print(f"\n{name}:")
        for r in recs:
            print(f"  - {r}")
    print("\nwrote " + ", ".join(files))
    return 0
